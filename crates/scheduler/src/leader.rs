//! Leader election through a coordination.k8s.io Lease (`kube-lease-manager`), with the
//! timings of client-go's leaderelection defaults for kube-scheduler (15 s lease; renewed 5 s
//! before it lapses).

use std::future::Future;

use kube_lease_manager::LeaseManagerBuilder;

/// Lease duration in seconds (`--leader-elect-lease-duration`).
const LEASE_DURATION_SECONDS: u64 = 15;
/// Renew this long before expiry.
const LEASE_GRACE_SECONDS: u64 = 5;

/// A holder identity as client-go builds it: `<hostname>_<uuid>`.
pub fn identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).unwrap_or_else(|_| "rkube".into());
    format!("{host}_{}", uuid::Uuid::new_v4())
}

/// Runs `work` while holding Lease `namespace/name`; stops it when leadership is lost and
/// waits to regain it. Returns when the lease cannot be managed at all.
pub async fn run_as_leader<F, Fut>(client: kube::Client, namespace: &str, name: &str, identity: &str, work: F) -> Result<(), String>
where
    F: Fn() -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let manager = LeaseManagerBuilder::new(client, name)
        .with_namespace(namespace)
        .with_identity(identity)
        .with_duration(LEASE_DURATION_SECONDS)
        .with_grace(LEASE_GRACE_SECONDS)
        .build()
        .await
        .map_err(|e| format!("lease {namespace}/{name}: {e}"))?;
    let (mut leader, _renewer) = manager.watch().await;
    loop {
        while !*leader.borrow_and_update() {
            leader.changed().await.map_err(|_| format!("lease {namespace}/{name}: the lease manager stopped"))?;
        }
        tracing::info!(lease = %format!("{namespace}/{name}"), identity, "became leader");
        let task = tokio::spawn(work());
        let lost = loop {
            if leader.changed().await.is_err() {
                break false;
            }
            if !*leader.borrow_and_update() {
                break true;
            }
        };
        task.abort();
        if !lost {
            return Err(format!("lease {namespace}/{name}: the lease manager stopped"));
        }
        tracing::warn!(lease = %format!("{namespace}/{name}"), "leadership lost");
    }
}
