//! The arithmetic of Deployments, free of I/O (pkg/controller/deployment/util/deployment_util.go,
//! pkg/controller/controller_utils.go `ComputeHash`, k8s.io/apimachinery/pkg/util/rand
//! `SafeEncodeString`, pkg/controller/deployment/rolling.go).

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// The label that ties a ReplicaSet and its pods to one template.
pub const POD_TEMPLATE_HASH: &str = "pod-template-hash";
/// ReplicaSet and Deployment revision.
pub const REVISION: &str = "deployment.kubernetes.io/revision";
/// Earlier revisions a rolled-back-to ReplicaSet had.
pub const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
/// `spec.replicas` of the Deployment when the ReplicaSet was last scaled.
pub const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
/// `spec.replicas + maxSurge` at that time.
pub const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";

/// Deployment annotations never copied to ReplicaSets (upstream `skipCopyAnnotation`).
const NOT_COPIED: &[&str] = &[
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    REVISION_HISTORY,
    DESIRED_REPLICAS,
    MAX_REPLICAS,
    "deprecated.deployment.rollback.to",
];

/// Characters of upstream's `rand.SafeEncodeString` (no vowels, no look-alikes).
const SAFE_ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// Maps every character of `s` into the safe alphabet, as upstream does for hashes.
pub fn safe_encode(s: &str) -> String {
    s.chars()
        .map(|c| char::from(SAFE_ALPHANUMS[(c as usize) % SAFE_ALPHANUMS.len()]))
        .collect()
}

/// FNV-1a, 32 bits.
fn fnv32a(data: &[u8], mut hash: u32) -> u32 {
    for b in data {
        hash ^= u32::from(*b);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash
}

/// The pod-template-hash of a template: FNV-32a over the template, then the collision count as
/// 8 little-endian bytes when set, printed in decimal and safe-encoded (upstream `ComputeHash`).
/// Upstream hashes Go's `spew` dump of the struct; rkube hashes its canonical JSON, so the
/// values differ from upstream's while keeping their shape and stability.
pub fn compute_hash(template: &PodTemplateSpec, collision_count: Option<i32>) -> String {
    let bytes = serde_json::to_vec(template).unwrap_or_default();
    let mut hash = fnv32a(&bytes, 0x811c_9dc5);
    if let Some(count) = collision_count {
        let mut buf = [0u8; 8];
        buf[..4].copy_from_slice(&count.to_le_bytes());
        hash = fnv32a(&buf, hash);
    }
    safe_encode(&hash.to_string())
}

/// Templates equal apart from the pod-template-hash label (upstream `EqualIgnoreHash`).
pub fn equal_ignore_hash(a: &PodTemplateSpec, b: &PodTemplateSpec) -> bool {
    let strip = |t: &PodTemplateSpec| {
        let mut t = t.clone();
        if let Some(labels) = t.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
            labels.remove(POD_TEMPLATE_HASH);
        }
        let mut v = serde_json::to_value(&t).unwrap_or_default();
        let no_labels = v["metadata"]["labels"]
            .as_object()
            .is_some_and(serde_json::Map::is_empty);
        if let Some(m) = v["metadata"].as_object_mut().filter(|_| no_labels) {
            m.remove("labels");
        }
        v
    };
    strip(a) == strip(b)
}

/// `intstr.GetScaledValueFromIntOrPercent`: an int as is, a percentage of `total` rounded up
/// or down.
pub fn scaled_value(value: Option<&IntOrString>, total: i32, round_up: bool) -> i32 {
    match value {
        None => 0,
        Some(IntOrString::Int(i)) => *i,
        Some(IntOrString::String(s)) => {
            let Some(pct) = s.strip_suffix('%').and_then(|p| p.parse::<i64>().ok()) else {
                return 0;
            };
            let scaled = pct * i64::from(total);
            let v = if round_up {
                (scaled + 99).div_euclid(100)
            } else {
                scaled.div_euclid(100)
            };
            i32::try_from(v).unwrap_or(i32::MAX)
        }
    }
}

/// `spec.replicas` (default 1).
pub fn replicas(d: &Deployment) -> i32 {
    d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

fn is_rolling(d: &Deployment) -> bool {
    d.spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.type_.as_deref())
        .unwrap_or("RollingUpdate")
        == "RollingUpdate"
}

/// (maxSurge, maxUnavailable) resolved against `replicas`; both zero becomes unavailable 1
/// (upstream `ResolveFenceposts`).
pub fn resolve_fenceposts(d: &Deployment) -> (i32, i32) {
    let desired = replicas(d);
    let ru = d
        .spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.rolling_update.as_ref());
    let default = IntOrString::String("25%".into());
    let surge = scaled_value(
        Some(ru.and_then(|r| r.max_surge.as_ref()).unwrap_or(&default)),
        desired,
        true,
    );
    let unavailable = scaled_value(
        Some(
            ru.and_then(|r| r.max_unavailable.as_ref())
                .unwrap_or(&default),
        ),
        desired,
        false,
    );
    if surge == 0 && unavailable == 0 {
        (0, 1)
    } else {
        (surge, unavailable)
    }
}

/// `MaxSurge`: 0 unless RollingUpdate.
pub fn max_surge(d: &Deployment) -> i32 {
    if is_rolling(d) {
        resolve_fenceposts(d).0
    } else {
        0
    }
}

/// `MaxUnavailable`: 0 unless RollingUpdate with replicas; never above replicas.
pub fn max_unavailable(d: &Deployment) -> i32 {
    if !is_rolling(d) || replicas(d) == 0 {
        return 0;
    }
    resolve_fenceposts(d).1.min(replicas(d))
}

/// `spec.replicas` of a ReplicaSet.
pub fn rs_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0)
}

/// `status.availableReplicas` of a ReplicaSet.
pub fn rs_available(rs: &ReplicaSet) -> i32 {
    rs.status
        .as_ref()
        .and_then(|s| s.available_replicas)
        .unwrap_or(0)
}

/// The replica count the new ReplicaSet should have now (upstream `NewRSNewReplicas`).
pub fn new_rs_new_replicas(d: &Deployment, all: &[&ReplicaSet], new_rs_replicas: i32) -> i32 {
    if !is_rolling(d) {
        return replicas(d);
    }
    let current: i32 = all.iter().map(|rs| rs_replicas(rs)).sum();
    let max_total = replicas(d) + max_surge(d);
    if current >= max_total {
        return new_rs_replicas;
    }
    let scale_up = (max_total - current).min(replicas(d) - new_rs_replicas);
    new_rs_replicas + scale_up
}

/// How many old replicas may go now (upstream `reconcileOldReplicaSets` before clean-up):
/// all replicas minus the minimum available minus the new ReplicaSet's unavailable ones.
pub fn max_scaled_down(d: &Deployment, all: &[&ReplicaSet], new_rs: Option<&ReplicaSet>) -> i32 {
    let all_pods: i32 = all.iter().map(|rs| rs_replicas(rs)).sum();
    let min_available = replicas(d) - max_unavailable(d);
    let new_unavailable = new_rs.map_or(0, |rs| rs_replicas(rs) - rs_available(rs));
    all_pods - min_available - new_unavailable
}

/// The revision annotation as a number (0 when missing or bad).
pub fn revision(rs: &ReplicaSet) -> i64 {
    rs.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(REVISION))
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

/// Copies the Deployment's annotations onto the ReplicaSet except the ones upstream skips;
/// true when something changed.
pub fn copy_annotations(d: &Deployment, rs: &mut ReplicaSet) -> bool {
    let mut changed = false;
    let target = rs.metadata.annotations.get_or_insert_with(Default::default);
    for (k, v) in d.metadata.annotations.iter().flatten() {
        if NOT_COPIED.contains(&k.as_str()) {
            continue;
        }
        if target.get(k) != Some(v) {
            target.insert(k.clone(), v.clone());
            changed = true;
        }
    }
    changed
}

/// Sets the new ReplicaSet's revision to `new_revision` when it is behind, remembering the
/// revision it had in `revision-history` (upstream `SetNewReplicaSetAnnotations`); a ReplicaSet
/// about to be created also gets the replica annotations. True when something changed.
pub fn set_new_rs_annotations(
    d: &Deployment,
    rs: &mut ReplicaSet,
    new_revision: i64,
    exists: bool,
) -> bool {
    let mut changed = copy_annotations(d, rs);
    let annotations = rs.metadata.annotations.get_or_insert_with(Default::default);
    let old = annotations.get(REVISION).cloned();
    let old_number = old
        .as_deref()
        .and_then(|o| o.parse::<i64>().ok())
        .unwrap_or(0);
    if old_number < new_revision {
        annotations.insert(REVISION.into(), new_revision.to_string());
        changed = true;
        if let Some(old) = old.filter(|o| !o.is_empty()) {
            let history = match annotations.get(REVISION_HISTORY).filter(|h| !h.is_empty()) {
                Some(h) => format!("{h},{old}"),
                None => old,
            };
            annotations.insert(REVISION_HISTORY.into(), history);
        }
    }
    if !exists {
        changed |= set_replicas_annotations(rs, replicas(d), replicas(d) + max_surge(d));
    }
    changed
}

/// Records desired and max replicas on a ReplicaSet; true when they changed.
pub fn set_replicas_annotations(rs: &mut ReplicaSet, desired: i32, max: i32) -> bool {
    let annotations = rs.metadata.annotations.get_or_insert_with(Default::default);
    let (desired, max) = (desired.to_string(), max.to_string());
    let changed = annotations.get(DESIRED_REPLICAS) != Some(&desired)
        || annotations.get(MAX_REPLICAS) != Some(&max);
    annotations.insert(DESIRED_REPLICAS.into(), desired);
    annotations.insert(MAX_REPLICAS.into(), max);
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(
        replicas: i32,
        surge: serde_json::Value,
        unavailable: serde_json::Value,
    ) -> Deployment {
        serde_json::from_value(json!({
            "metadata": {"name": "web"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}},
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}
        }))
        .unwrap()
    }

    fn rs(replicas: i32, available: i32) -> ReplicaSet {
        serde_json::from_value(
            json!({"metadata": {"name": "rs"}, "spec": {"replicas": replicas, "selector": {}},
            "status": {"replicas": replicas, "availableReplicas": available}}),
        )
        .unwrap()
    }

    #[test]
    fn safe_encoding_maps_digits_into_the_vowel_free_alphabet() {
        // '0' is byte 48: 48 % 27 = 21 → '4'; '1' → 22 → '5'; '6' → 54 % 27 = 0 → 'b'; '9' → 3 → 'f'.
        assert_eq!(safe_encode("0169"), "45bf");
    }

    #[test]
    fn template_hash_is_stable_and_changes_with_template_and_collisions() {
        let d = deployment(3, json!("25%"), json!("25%"));
        let t = d.spec.as_ref().unwrap().template.clone();
        let h = compute_hash(&t, None);
        assert_eq!(h, compute_hash(&t, None));
        assert!(
            h.len() <= 10 && h.chars().all(|c| SAFE_ALPHANUMS.contains(&(c as u8))),
            "{h}"
        );
        assert_ne!(h, compute_hash(&t, Some(1)));
        let mut other = t.clone();
        other.spec.as_mut().unwrap().containers[0].image = Some("nginx:2".into());
        assert_ne!(h, compute_hash(&other, None));
        let mut hashed = t.clone();
        hashed
            .metadata
            .as_mut()
            .unwrap()
            .labels
            .as_mut()
            .unwrap()
            .insert(POD_TEMPLATE_HASH.into(), h);
        assert!(equal_ignore_hash(&hashed, &t));
        assert!(!equal_ignore_hash(&other, &t));
    }

    #[test]
    fn percentages_round_surge_up_and_unavailable_down() {
        let d = deployment(10, json!("25%"), json!("25%"));
        assert_eq!(resolve_fenceposts(&d), (3, 2));
        let d = deployment(1, json!(0), json!(0));
        assert_eq!(
            resolve_fenceposts(&d),
            (0, 1),
            "both zero would deadlock: unavailable becomes 1"
        );
        let d = deployment(2, json!(1), json!(5));
        assert_eq!(max_unavailable(&d), 2, "never above replicas");
    }

    #[test]
    fn rolling_update_scales_the_new_set_up_to_replicas_plus_surge() {
        // 3 replicas, surge 1: old has 3, new has 0 → new may grow to 1 (4 pods in total).
        let d = deployment(3, json!(1), json!(0));
        let (old, new) = (rs(3, 3), rs(0, 0));
        assert_eq!(new_rs_new_replicas(&d, &[&old, &new], 0), 1);
        // Already at the ceiling: no growth.
        let (old, new) = (rs(3, 3), rs(1, 0));
        assert_eq!(new_rs_new_replicas(&d, &[&old, &new], 1), 1);
        // Old scaled down to 2: new may reach 2.
        let (old, new) = (rs(2, 2), rs(1, 0));
        assert_eq!(new_rs_new_replicas(&d, &[&old, &new], 1), 2);
    }

    #[test]
    fn old_sets_shrink_only_as_far_as_availability_allows() {
        // 3 replicas, maxUnavailable 0: 3 old available + 1 new not yet available → nothing may go.
        let d = deployment(3, json!(1), json!(0));
        let (old, new) = (rs(3, 3), rs(1, 0));
        assert_eq!(max_scaled_down(&d, &[&old, &new], Some(&new)), 0);
        // The new pod became available → one old pod may go.
        let new = rs(1, 1);
        assert_eq!(max_scaled_down(&d, &[&old, &new], Some(&new)), 1);
    }

    #[test]
    fn rollback_records_the_previous_revision_in_history() {
        let d = deployment(1, json!(1), json!(0));
        let mut old: ReplicaSet = rs(0, 0);
        old.metadata.annotations = Some([(REVISION.to_string(), "1".to_string())].into());
        assert!(set_new_rs_annotations(&d, &mut old, 3, true));
        let a = old.metadata.annotations.unwrap();
        assert_eq!(a[REVISION], "3");
        assert_eq!(a[REVISION_HISTORY], "1");
    }
}
