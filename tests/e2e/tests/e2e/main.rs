//! End-to-end tests: the real kubectl (and kube-rs) against the `rkube` binary, each test on its
//! own server with its own data directory on a free loopback port.

mod api_discovery;
mod apply;
mod crash;
mod controllers;
mod crud;
mod kube_client;
mod lists;
mod old_kubectl;
mod watch;

use rkube_testkit::TestCluster;

/// Starts a cluster or fails the test with the reason.
pub fn cluster() -> TestCluster {
    match TestCluster::start() {
        Ok(c) => c,
        Err(e) => panic!("starting rkube: {e:#}"),
    }
}
