//! Stabilization and scaling-rate limits of upstream's `horizontal.go`
//! (`stabilizeRecommendation[WithBehaviors]`, `convertDesiredReplicasWith{Rules,BehaviorRate}`,
//! `calculateScale{Up,Down}Limit…`, `storeScaleEvent`), kept per HPA in memory as upstream does.

use k8s_openapi::api::autoscaling::v2::{HPAScalingRules, HorizontalPodAutoscalerBehavior};

/// `--horizontal-pod-autoscaler-downscale-stabilization` (5 min), the scale-down window when
/// `behavior` leaves it unset.
pub const DOWNSCALE_STABILIZATION_SECONDS: i32 = 300;

/// A recommendation and when it was made.
#[derive(Debug, Clone, Copy)]
struct Recommendation {
    at_ms: i64,
    replicas: i32,
}

/// A change of the target's replicas made by the controller.
#[derive(Debug, Clone, Copy)]
struct ScaleEvent {
    at_ms: i64,
    change: i32,
}

/// One HPA's history.
#[derive(Debug, Default)]
pub struct History {
    recommendations: Vec<Recommendation>,
    scale_up_events: Vec<ScaleEvent>,
    scale_down_events: Vec<ScaleEvent>,
}

/// The outcome of normalizing a recommendation: replicas and the AbleToScale / ScalingLimited
/// reasons and messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Normalized {
    /// Replicas to scale to.
    pub replicas: i32,
    /// AbleToScale (True) reason and message.
    pub able_to_scale: (&'static str, &'static str),
    /// ScalingLimited status, reason and message.
    pub limited: (bool, &'static str, &'static str),
}

const READY_FOR_NEW_SCALE: (&str, &str) = ("ReadyForNewScale", "recommended size matches current size");
const SCALE_DOWN_STABILIZED: (&str, &str) =
    ("ScaleDownStabilized", "recent recommendations were higher than current one, applying the highest recent recommendation");
const SCALE_UP_STABILIZED: (&str, &str) =
    ("ScaleUpStabilized", "recent recommendations were lower than current one, applying the lowest recent recommendation");
const WITHIN_RANGE: (&str, &str) = ("DesiredWithinRange", "the desired count is within the acceptable range");
const SCALE_UP_LIMIT: (&str, &str) = ("ScaleUpLimit", "the desired replica count is increasing faster than the maximum scale rate");
const TOO_MANY: (&str, &str) = ("TooManyReplicas", "the desired replica count is more than the maximum replica count");
const SCALE_DOWN_LIMIT: (&str, &str) = ("ScaleDownLimit", "the desired replica count is decreasing faster than the maximum scale rate");
const TOO_FEW: (&str, &str) = ("TooFewReplicas", "the desired replica count is less than the minimum replica count");

/// The bounds a recommendation is brought within.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// `spec.minReplicas`.
    pub min: i32,
    /// `spec.maxReplicas`.
    pub max: i32,
    /// The target's current replicas.
    pub current: i32,
}

fn limited(replicas: i32, stabilized: i32, (reason, message): (&'static str, &'static str)) -> (bool, &'static str, &'static str) {
    (replicas != stabilized, reason, message)
}

/// Upstream's default rules (`GenerateHPAScaleUpRules` / `GenerateHPAScaleDownRules`) filled
/// into what `behavior` leaves unset; the scale-down window defaults to the controller's flag.
pub fn effective_rules(behavior: &HorizontalPodAutoscalerBehavior) -> (HPAScalingRules, HPAScalingRules) {
    use k8s_openapi::api::autoscaling::v2::HPAScalingPolicy;
    let policy = |type_: &str, value: i32| HPAScalingPolicy { type_: type_.into(), value, period_seconds: 15 };
    let mut up = behavior.scale_up.clone().unwrap_or_default();
    if up.policies.as_ref().is_none_or(Vec::is_empty) {
        up.policies = Some(vec![policy("Pods", 4), policy("Percent", 100)]);
    }
    up.select_policy.get_or_insert_with(|| "Max".into());
    up.stabilization_window_seconds.get_or_insert(0);
    let mut down = behavior.scale_down.clone().unwrap_or_default();
    if down.policies.as_ref().is_none_or(Vec::is_empty) {
        down.policies = Some(vec![policy("Percent", 100)]);
    }
    down.select_policy.get_or_insert_with(|| "Max".into());
    down.stabilization_window_seconds.get_or_insert(DOWNSCALE_STABILIZATION_SECONDS);
    (up, down)
}

impl History {
    /// Without `behavior`: the highest recommendation of the downscale window, then at most
    /// max(2×current, 4) and within min/max (upstream `normalizeDesiredReplicas`).
    pub fn normalize(&mut self, now_ms: i64, desired: i32, b: Bounds) -> Normalized {
        let cutoff = now_ms - i64::from(DOWNSCALE_STABILIZATION_SECONDS) * 1000;
        let mut stabilized = desired;
        let mut old = None;
        for (i, r) in self.recommendations.iter().enumerate() {
            if r.at_ms < cutoff {
                old = Some(i);
            } else if r.replicas > stabilized {
                stabilized = r.replicas;
            }
        }
        self.record(old, now_ms, desired);
        let able_to_scale = if stabilized != desired { SCALE_DOWN_STABILIZED } else { READY_FOR_NEW_SCALE };
        let scale_up_limit = (2 * b.current).max(4);
        let (maximum, max_reason) = if b.max > scale_up_limit { (scale_up_limit, SCALE_UP_LIMIT) } else { (b.max, TOO_MANY) };
        let (replicas, reason) = if stabilized < b.min {
            (b.min, TOO_FEW)
        } else if stabilized > maximum {
            (maximum, max_reason)
        } else {
            (stabilized, WITHIN_RANGE)
        };
        Normalized { replicas, able_to_scale, limited: limited(replicas, stabilized, reason) }
    }

    fn record(&mut self, old: Option<usize>, now_ms: i64, replicas: i32) {
        let r = Recommendation { at_ms: now_ms, replicas };
        match old {
            Some(i) => self.recommendations[i] = r,
            None => self.recommendations.push(r),
        }
    }

    /// With `behavior` (upstream `normalizeDesiredReplicasWithBehaviors`).
    pub fn normalize_with_behavior(&mut self, now_ms: i64, desired: i32, b: Bounds, up: &HPAScalingRules, down: &HPAScalingRules) -> Normalized {
        let up_cutoff = now_ms - i64::from(up.stabilization_window_seconds.unwrap_or(0)) * 1000;
        let down_cutoff = now_ms - i64::from(down.stabilization_window_seconds.unwrap_or(DOWNSCALE_STABILIZATION_SECONDS)) * 1000;
        let (mut up_rec, mut down_rec) = (desired, desired);
        let mut old = None;
        for (i, r) in self.recommendations.iter().enumerate() {
            if r.at_ms > up_cutoff {
                up_rec = up_rec.min(r.replicas);
            }
            if r.at_ms > down_cutoff {
                down_rec = down_rec.max(r.replicas);
            }
            if r.at_ms < up_cutoff && r.at_ms < down_cutoff {
                old = Some(i);
            }
        }
        let stabilized = b.current.max(up_rec).min(down_rec);
        self.record(old, now_ms, desired);
        let able_to_scale = if stabilized == desired {
            READY_FOR_NEW_SCALE
        } else if desired >= b.current {
            SCALE_UP_STABILIZED
        } else {
            SCALE_DOWN_STABILIZED
        };
        let (replicas, reason) = self.rate_limit(now_ms, stabilized, b, up, down);
        Normalized { replicas, able_to_scale, limited: limited(replicas, stabilized, reason) }
    }

    fn rate_limit(&self, now_ms: i64, desired: i32, b: Bounds, up: &HPAScalingRules, down: &HPAScalingRules) -> (i32, (&'static str, &'static str)) {
        if desired > b.current {
            let limit = self.scale_limit(now_ms, b.current, up, true).max(b.current);
            let (maximum, reason) = if b.max > limit { (limit, SCALE_UP_LIMIT) } else { (b.max, TOO_MANY) };
            if desired > maximum {
                return (maximum, reason);
            }
        } else if desired < b.current {
            let limit = self.scale_limit(now_ms, b.current, down, false).min(b.current);
            let (minimum, reason) = if b.min < limit { (limit, SCALE_DOWN_LIMIT) } else { (b.min, TOO_FEW) };
            if desired < minimum {
                return (minimum, reason);
            }
        }
        (desired, WITHIN_RANGE)
    }

    fn changed_within(events: &[ScaleEvent], now_ms: i64, period_seconds: i32) -> i32 {
        let cutoff = now_ms - i64::from(period_seconds) * 1000;
        events.iter().filter(|e| e.at_ms > cutoff).map(|e| e.change).sum()
    }

    /// The furthest the policies let replicas move from where each period started.
    fn scale_limit(&self, now_ms: i64, current: i32, rules: &HPAScalingRules, scaling_up: bool) -> i32 {
        let select = rules.select_policy.as_deref().unwrap_or("Max");
        if select == "Disabled" {
            return current;
        }
        // "Max" picks the policy allowing the largest change: the highest limit up, the lowest down.
        let pick_highest = (select == "Max") == scaling_up;
        let mut result: Option<i32> = None;
        for p in rules.policies.iter().flatten() {
            let added = Self::changed_within(&self.scale_up_events, now_ms, p.period_seconds);
            let deleted = Self::changed_within(&self.scale_down_events, now_ms, p.period_seconds);
            let start = current - added + deleted;
            let proposed = match (p.type_.as_str(), scaling_up) {
                ("Pods", true) => start + p.value,
                ("Pods", false) => start - p.value,
                (_, true) => (f64::from(start) * (1.0 + f64::from(p.value) / 100.0)).ceil() as i32,
                (_, false) => (f64::from(start) * (1.0 - f64::from(p.value) / 100.0)) as i32,
            };
            result = Some(match result {
                None => proposed,
                Some(r) if pick_highest => r.max(proposed),
                Some(r) => r.min(proposed),
            });
        }
        result.unwrap_or(current)
    }

    /// Remembers a rescale for the rate limits (only HPAs with `behavior` use them); events
    /// older than the longest policy period are dropped.
    pub fn store_scale_event(&mut self, now_ms: i64, behavior: Option<&HorizontalPodAutoscalerBehavior>, previous: i32, new: i32) {
        let Some(behavior) = behavior else { return };
        let (up, down) = effective_rules(behavior);
        let longest = |r: &HPAScalingRules| r.policies.iter().flatten().map(|p| p.period_seconds).max().unwrap_or(0);
        let keep = |events: &mut Vec<ScaleEvent>, period: i32| events.retain(|e| e.at_ms > now_ms - i64::from(period) * 1000);
        keep(&mut self.scale_up_events, longest(&up));
        keep(&mut self.scale_down_events, longest(&down));
        if new > previous {
            self.scale_up_events.push(ScaleEvent { at_ms: now_ms, change: new - previous });
        } else if new < previous {
            self.scale_down_events.push(ScaleEvent { at_ms: now_ms, change: previous - new });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn behavior(v: serde_json::Value) -> HorizontalPodAutoscalerBehavior {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn without_behavior_scale_down_waits_for_the_window_and_scale_up_is_capped() {
        let mut h = History::default();
        let b = Bounds { min: 1, max: 10, current: 4 };
        let n = h.normalize(0, 4, b);
        assert_eq!(n.replicas, 4);
        let n = h.normalize(15_000, 2, b);
        assert_eq!((n.replicas, n.able_to_scale.0), (4, "ScaleDownStabilized"));
        let n = h.normalize(301_000, 2, b);
        assert_eq!(n.replicas, 2);
        let n = h.normalize(302_000, 20, Bounds { current: 2, ..b });
        assert_eq!((n.replicas, n.limited), (4, (true, SCALE_UP_LIMIT.0, SCALE_UP_LIMIT.1)));
        let n = h.normalize(303_000, 20, Bounds { current: 8, ..b });
        assert_eq!((n.replicas, n.limited.1), (10, "TooManyReplicas"));
    }

    #[test]
    fn behavior_policies_limit_the_rate() {
        let bh = behavior(json!({"scaleUp": {"policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}]},
            "scaleDown": {"stabilizationWindowSeconds": 0, "policies": [{"type": "Percent", "value": 50, "periodSeconds": 60}]}}));
        let (up, down) = effective_rules(&bh);
        let mut h = History::default();
        let b = Bounds { min: 1, max: 10, current: 2 };
        let n = h.normalize_with_behavior(0, 6, b, &up, &down);
        assert_eq!((n.replicas, n.limited.1), (3, "ScaleUpLimit"));
        h.store_scale_event(0, Some(&bh), 2, 3);
        // Within the period the one pod is used up.
        let n = h.normalize_with_behavior(10_000, 6, Bounds { current: 3, ..b }, &up, &down);
        assert_eq!(n.replicas, 3);
        let n = h.normalize_with_behavior(61_000, 6, Bounds { current: 3, ..b }, &up, &down);
        assert_eq!(n.replicas, 4);
        // Down: at most half per minute, no stabilization window.
        let n = h.normalize_with_behavior(200_000, 1, Bounds { current: 8, ..b }, &up, &down);
        assert_eq!((n.replicas, n.limited.1), (4, "ScaleDownLimit"));
    }

    #[test]
    fn default_rules_and_scale_down_stabilization() {
        let (up, down) = effective_rules(&behavior(json!({"scaleDown": {"stabilizationWindowSeconds": 5}})));
        assert_eq!(up.stabilization_window_seconds, Some(0));
        assert_eq!(up.policies.as_ref().unwrap().len(), 2);
        assert_eq!(down.policies.as_ref().unwrap()[0].value, 100);
        let mut h = History::default();
        let b = Bounds { min: 1, max: 10, current: 4 };
        assert_eq!(h.normalize_with_behavior(0, 4, b, &up, &down).replicas, 4);
        let n = h.normalize_with_behavior(2_000, 1, b, &up, &down);
        assert_eq!((n.replicas, n.able_to_scale.0), (4, "ScaleDownStabilized"));
        assert_eq!(h.normalize_with_behavior(6_000, 1, b, &up, &down).replicas, 1);
    }
}
