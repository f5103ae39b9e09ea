//! Tests for the built-in resource table: exact rows and table-wide invariants.

use super::*;
use std::collections::{BTreeMap, BTreeSet};

fn find<'a>(
    table: &'a [ResourceInfo],
    group: &str,
    version: &str,
    plural: &str,
) -> &'a ResourceInfo {
    match table
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
    {
        Some(r) => r,
        None => panic!("{group}/{version} {plural} missing"),
    }
}

fn sub_names(r: &ResourceInfo) -> Vec<&str> {
    r.subresources.iter().map(|s| s.name.as_str()).collect()
}

#[test]
fn pods_row() {
    let t = builtin_resources();
    let pods = find(&t, "", "v1", "pods");
    assert_eq!(pods.singular, "pod");
    assert_eq!(pods.kind, "Pod");
    assert!(pods.namespaced());
    assert_eq!(pods.verbs, strings(CRUD));
    assert_eq!(pods.short_names, vec!["po"]);
    assert_eq!(pods.categories, vec!["all"]);
    assert_eq!(
        sub_names(pods),
        vec![
            "attach",
            "binding",
            "ephemeralcontainers",
            "eviction",
            "exec",
            "log",
            "portforward",
            "proxy",
            "resize",
            "status"
        ]
    );
    let eviction = pods.subresource("eviction").unwrap();
    assert_eq!(
        (
            eviction.kind.as_str(),
            eviction.group.as_str(),
            eviction.version.as_str()
        ),
        ("Eviction", "policy", "v1")
    );
    assert_eq!(eviction.verbs, vec!["create"]);
    let exec = pods.subresource("exec").unwrap();
    assert_eq!(exec.kind, "PodExecOptions");
    assert_eq!(exec.verbs, vec!["create", "get"]);
    let log = pods.subresource("log").unwrap();
    assert_eq!(
        (log.kind.as_str(), log.verbs.clone()),
        ("Pod", vec!["get".to_owned()])
    );
    let binding = pods.subresource("binding").unwrap();
    assert_eq!(
        (binding.kind.as_str(), binding.verbs.clone()),
        ("Binding", vec!["create".to_owned()])
    );
    let status = pods.subresource("status").unwrap();
    assert_eq!(status.kind, "Pod");
    assert!(status.group.is_empty() && status.version.is_empty());
    assert_eq!(status.verbs, vec!["get", "patch", "update"]);
    assert!(pods.storage_version);
}

#[test]
fn deployments_row() {
    let t = builtin_resources();
    let d = find(&t, "apps", "v1", "deployments");
    assert_eq!(
        (d.singular.as_str(), d.kind.as_str()),
        ("deployment", "Deployment")
    );
    assert_eq!(d.scope, Scope::Namespaced);
    assert_eq!(d.verbs, strings(CRUD));
    assert_eq!(d.short_names, vec!["deploy"]);
    assert_eq!(d.categories, vec!["all"]);
    assert_eq!(sub_names(d), vec!["scale", "status"]);
    let scale = d.subresource("scale").unwrap();
    assert_eq!(
        (
            scale.kind.as_str(),
            scale.group.as_str(),
            scale.version.as_str()
        ),
        ("Scale", "autoscaling", "v1")
    );
    assert_eq!(scale.verbs, vec!["get", "patch", "update"]);
    assert_eq!(d.api_version(), "apps/v1");
}

#[test]
fn services_and_namespaces_rows() {
    let t = builtin_resources();
    let s = find(&t, "", "v1", "services");
    assert_eq!(s.verbs, strings(CRUD));
    assert_eq!(s.short_names, vec!["svc"]);
    assert_eq!(s.categories, vec!["all"]);
    assert_eq!(sub_names(s), vec!["proxy", "status"]);
    assert_eq!(
        s.subresource("proxy").unwrap().verbs,
        vec!["create", "delete", "get", "patch", "update"]
    );
    let ns = find(&t, "", "v1", "namespaces");
    assert!(!ns.namespaced());
    assert!(!ns.allows("deletecollection"));
    assert_eq!(sub_names(ns), vec!["finalize", "status"]);
    assert_eq!(ns.subresource("finalize").unwrap().verbs, vec!["update"]);
    let ep = find(&t, "", "v1", "endpoints");
    assert_eq!(ep.singular, "endpoints");
    let cs = find(&t, "", "v1", "componentstatuses");
    assert_eq!(
        (cs.singular.as_str(), cs.verbs.clone()),
        ("componentstatus", vec!["get".to_owned(), "list".to_owned()])
    );
    let token = find(&t, "", "v1", "serviceaccounts")
        .subresource("token")
        .unwrap();
    assert_eq!(
        (
            token.kind.as_str(),
            token.group.as_str(),
            token.version.as_str()
        ),
        ("TokenRequest", "authentication.k8s.io", "v1")
    );
}

#[test]
fn crd_row() {
    let t = builtin_resources();
    let crd = find(
        &t,
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
    );
    assert_eq!(crd.singular, "customresourcedefinition");
    assert_eq!(crd.kind, "CustomResourceDefinition");
    assert!(!crd.namespaced());
    assert_eq!(crd.short_names, vec!["crd", "crds"]);
    assert_eq!(crd.categories, vec!["api-extensions"]);
    assert_eq!(sub_names(crd), vec!["status"]);
}

#[test]
fn hpa_in_both_versions() {
    let t = builtin_resources();
    let v2 = find(&t, "autoscaling", "v2", "horizontalpodautoscalers");
    let v1 = find(&t, "autoscaling", "v1", "horizontalpodautoscalers");
    for hpa in [v1, v2] {
        assert_eq!(hpa.kind, "HorizontalPodAutoscaler");
        assert_eq!(hpa.singular, "horizontalpodautoscaler");
        assert_eq!(hpa.short_names, vec!["hpa"]);
        assert_eq!(hpa.categories, vec!["all"]);
        assert_eq!(hpa.verbs, strings(CRUD));
        assert_eq!(sub_names(hpa), vec!["status"]);
        assert!(hpa.namespaced());
    }
    assert!(v2.storage_version);
    assert!(!v1.storage_version);
    // v2 is preferred, so it comes first, as in discovery.
    let pos = |v: &str| {
        t.iter()
            .position(|r| r.group == "autoscaling" && r.version == v)
    };
    assert!(pos("v2") < pos("v1"));
}

#[test]
fn review_resources_are_create_only() {
    let t = builtin_resources();
    for (group, plural, namespaced) in [
        ("authentication.k8s.io", "tokenreviews", false),
        ("authentication.k8s.io", "selfsubjectreviews", false),
        ("authorization.k8s.io", "subjectaccessreviews", false),
        ("authorization.k8s.io", "selfsubjectaccessreviews", false),
        ("authorization.k8s.io", "selfsubjectrulesreviews", false),
        ("authorization.k8s.io", "localsubjectaccessreviews", true),
    ] {
        let r = find(&t, group, "v1", plural);
        assert_eq!(r.verbs, vec!["create"], "{plural}");
        assert_eq!(r.namespaced(), namespaced, "{plural}");
    }
}

#[test]
fn only_ga_versions_are_served() {
    let t = builtin_resources();
    for r in &t {
        assert!(
            !r.version.contains("alpha") && !r.version.contains("beta"),
            "{}/{}",
            r.api_version(),
            r.plural
        );
    }
    let plurals: BTreeSet<&str> = t.iter().map(|r| r.plural.as_str()).collect();
    for absent in [
        "volumeattributesclasses",
        "mutatingadmissionpolicies",
        "clustertrustbundles",
        "leasecandidates",
    ] {
        assert!(!plurals.contains(absent), "{absent} is not GA in 1.33");
    }
    for present in [
        "servicecidrs",
        "ipaddresses",
        "validatingadmissionpolicies",
        "validatingadmissionpolicybindings",
    ] {
        assert!(plurals.contains(present), "{present} is GA in 1.33");
    }
}

#[test]
fn no_duplicate_plural_within_a_group_version() {
    let t = builtin_resources();
    let mut seen = BTreeSet::new();
    for r in &t {
        assert!(
            seen.insert((r.group.as_str(), r.version.as_str(), r.plural.as_str())),
            "duplicate {}/{}",
            r.api_version(),
            r.plural
        );
    }
}

/// Upstream reuses a short name only for the same plural (`ev` for core and events.k8s.io
/// events, `hpa` in both autoscaling versions); otherwise each short name names one resource.
#[test]
fn short_names_are_unique_per_resource() {
    let t = builtin_resources();
    let mut owner: BTreeMap<&str, &str> = BTreeMap::new();
    let plurals: BTreeSet<&str> = t.iter().map(|r| r.plural.as_str()).collect();
    for r in &t {
        for s in &r.short_names {
            let prev = owner.insert(s.as_str(), r.plural.as_str());
            assert!(
                prev.is_none() || prev == Some(r.plural.as_str()),
                "short name {s} used by {prev:?} and {}",
                r.plural
            );
            assert!(
                !plurals.contains(s.as_str()),
                "short name {s} shadows a plural"
            );
        }
        let mut in_row = BTreeSet::new();
        assert!(
            r.short_names.iter().all(|s| in_row.insert(s)),
            "{} repeats a short name",
            r.plural
        );
    }
    // Within one group-version a short name must be unique outright.
    let mut per_gv = BTreeSet::new();
    for r in &t {
        for s in &r.short_names {
            assert!(per_gv.insert((r.group.as_str(), r.version.as_str(), s.as_str())));
        }
    }
}

#[test]
fn verbs_and_subresources_are_in_discovery_order() {
    for r in builtin_resources() {
        let mut sorted = r.verbs.clone();
        sorted.sort();
        assert_eq!(r.verbs, sorted, "{}", r.plural);
        let names: Vec<&str> = sub_names(&r);
        let mut sorted_names = names.clone();
        sorted_names.sort_unstable();
        assert_eq!(names, sorted_names, "{}", r.plural);
        for s in &r.subresources {
            let mut v = s.verbs.clone();
            v.sort();
            assert_eq!(s.verbs, v, "{}/{}", r.plural, s.name);
            assert!(!s.verbs.is_empty());
        }
        assert_eq!(r.singular, r.kind.to_lowercase());
        assert!(r.storage_version || (r.group == "autoscaling" && r.version == "v1"));
    }
}

#[test]
fn scope_of_every_resource() {
    let namespaced: BTreeSet<&str> = [
        "bindings",
        "configmaps",
        "endpoints",
        "events",
        "limitranges",
        "persistentvolumeclaims",
        "pods",
        "podtemplates",
        "replicationcontrollers",
        "resourcequotas",
        "secrets",
        "serviceaccounts",
        "services",
        "controllerrevisions",
        "daemonsets",
        "deployments",
        "replicasets",
        "statefulsets",
        "localsubjectaccessreviews",
        "horizontalpodautoscalers",
        "cronjobs",
        "jobs",
        "ingresses",
        "networkpolicies",
        "poddisruptionbudgets",
        "rolebindings",
        "roles",
        "csistoragecapacities",
        "leases",
        "endpointslices",
    ]
    .into_iter()
    .collect();
    let t = builtin_resources();
    for r in &t {
        assert_eq!(
            r.namespaced(),
            namespaced.contains(r.plural.as_str()),
            "{}/{}",
            r.api_version(),
            r.plural
        );
    }
    let all: BTreeSet<&str> = t
        .iter()
        .filter(|r| r.categories.iter().any(|c| c == "all"))
        .map(|r| r.plural.as_str())
        .collect();
    let expected: BTreeSet<&str> = [
        "pods",
        "services",
        "replicationcontrollers",
        "daemonsets",
        "deployments",
        "replicasets",
        "statefulsets",
        "horizontalpodautoscalers",
        "cronjobs",
        "jobs",
    ]
    .into_iter()
    .collect();
    assert_eq!(all, expected);
    let ext: BTreeSet<&str> = t
        .iter()
        .filter(|r| r.categories.iter().any(|c| c == "api-extensions"))
        .map(|r| r.plural.as_str())
        .collect();
    let expected_ext: BTreeSet<&str> = [
        "apiservices",
        "customresourcedefinitions",
        "mutatingwebhookconfigurations",
        "validatingadmissionpolicies",
        "validatingadmissionpolicybindings",
        "validatingwebhookconfigurations",
    ]
    .into_iter()
    .collect();
    assert_eq!(ext, expected_ext);
}
