//! Leader election through the Lease `kube-system/kube-controller-manager` (kube-lease-manager),
//! with upstream's default timings: 15 s lease, renewed well before it expires.

use kube_lease_manager::{LeaseManagerBuilder, LeaseManagerError};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::error::Result;

/// Upstream `--leader-elect-lease-duration`.
const LEASE_DURATION_SECONDS: u64 = 15;
/// Renew this long before expiry (upstream renews every 2 s with a 10 s deadline).
const GRACE_SECONDS: u64 = 5;

/// This manager's holder identity: `<hostname>_<random>` like upstream's `<hostname>_<uuid>`.
pub fn identity() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let host = if host.is_empty() {
        "rkube".to_string()
    } else {
        host
    };
    format!("{host}_{:016x}", rand::random::<u64>())
}

/// A running election.
pub struct Leading {
    state: watch::Receiver<bool>,
    task: JoinHandle<std::result::Result<kube_lease_manager::LeaseManager, LeaseManagerError>>,
}

/// Joins the election (creating the Lease when missing).
pub async fn elect(client: kube::Client, identity: &str) -> Result<Leading> {
    let manager = LeaseManagerBuilder::new(client, "kube-controller-manager")
        .with_namespace("kube-system")
        .with_identity(identity)
        .with_duration(LEASE_DURATION_SECONDS)
        .with_grace(GRACE_SECONDS)
        .with_field_manager("kube-controller-manager")
        .build()
        .await?;
    let (state, task) = manager.watch().await;
    Ok(Leading { state, task })
}

impl Leading {
    /// Resolves once this manager holds the lease.
    pub async fn acquired(&mut self) {
        while !*self.state.borrow_and_update() {
            if self.state.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    /// Resolves once this manager no longer holds the lease.
    pub async fn lost(&mut self) {
        while *self.state.borrow_and_update() {
            if self.state.changed().await.is_err() {
                return;
            }
        }
    }

    /// Gives the lease up so another manager can take over at once.
    pub async fn release(self) {
        drop(self.state);
        match self.task.await {
            Ok(Ok(_)) => tracing::info!("released the kube-controller-manager lease"),
            Ok(Err(e)) => tracing::warn!(error = %e, "releasing the lease failed"),
            Err(e) => tracing::warn!(error = %e, "lease task failed"),
        }
    }
}
