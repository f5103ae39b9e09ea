//! End-to-end tests: the real kubectl (and kube-rs) against the `rkube` binary, each test on its
//! own server with its own data directory on a free loopback port.

mod admission;
mod agent;
mod agent_join;
mod agent_lifecycle;
mod agent_managed;
mod agent_metrics;
mod agent_registry;
mod agent_static_pods;
mod agent_streaming;
mod agent_volumes;
mod api_discovery;
mod apply;
mod audit;
mod authn;
mod autoscaling;
mod controllers;
mod crash;
mod crd;
mod crud;
mod csr;
mod dry_run;
mod encryption;
mod field_validation;
mod iam;
mod kube_client;
mod kubectl_verbs;
mod node_auth;
mod node_ipam;
mod lists;
mod metrics;
mod old_kubectl;
mod openapi;
mod quick_start;
mod rbac;
mod scale;
mod scheduling;
mod storage;
mod tables;
mod versions;
mod watch;
mod webhooks;
mod workloads;

use rkube_testkit::TestCluster;

/// Starts a cluster or fails the test with the reason.
pub fn cluster() -> TestCluster {
    match TestCluster::start() {
        Ok(c) => c,
        Err(e) => panic!("starting rkube: {e:#}"),
    }
}

/// Starts an API server without controllers, scheduler or node lifecycle: objects stay exactly
/// as the test writes them (for checks of stored fields and printed tables). Without the
/// serviceaccount controller no `default` ServiceAccount exists, so the ServiceAccount admission
/// plugin is off too (as upstream clusters without kube-controller-manager must do).
pub fn api_only_cluster() -> TestCluster {
    match TestCluster::start_with(&["--disable=controller-manager,scheduler,node-lifecycle", "--disable-admission-plugins=ServiceAccount"]) {
        Ok(c) => c,
        Err(e) => panic!("starting rkube: {e:#}"),
    }
}
