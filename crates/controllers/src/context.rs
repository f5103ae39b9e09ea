//! What every controller gets: an API client, an event recorder per component, the cluster's CA
//! bundle, and helpers to run kube-rs controllers with upstream-like error handling.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::Client;
use kube::runtime::controller::Action;

use crate::error::Error;
use crate::events::EventRecorder;

/// Shared by the controllers of one manager.
#[derive(Clone)]
pub struct Context {
    /// Client of the API server (the controller manager's identity).
    pub client: Client,
    /// Identity of this manager instance (`<host>_<random>`), reported on events.
    pub identity: String,
    /// PEM bundle published as `kube-root-ca.crt`.
    pub root_ca_pem: String,
    /// The CA the CSR signer issues with, when configured.
    pub csr_signing: Option<Arc<crate::csr_signing::CsrSigning>>,
}

impl Context {
    /// An event recorder for `component` (e.g. `deployment-controller`).
    pub fn recorder(&self, component: &str) -> EventRecorder {
        EventRecorder::new(self.client.clone(), component, &self.identity)
    }
}

/// Requeue delay after a failed reconcile (upstream work queues back off from 5ms to 1000s; a
/// flat short delay keeps tests fast and the load low).
pub const ERROR_REQUEUE: Duration = Duration::from_secs(2);

/// The error policy of every kube-rs controller here: log, then try again shortly.
pub fn requeue_on_error<K, C>(_obj: Arc<K>, err: &Error, _ctx: Arc<C>) -> Action {
    if err.is_status(409) {
        tracing::debug!(error = %err, "conflict; requeueing");
    } else {
        tracing::warn!(error = %err, "reconcile failed; requeueing");
    }
    Action::requeue(ERROR_REQUEUE)
}

/// Drives a kube-rs controller's output stream until it ends, logging reconcile failures that
/// are not already reported by the error policy.
pub async fn drain<S, T, E>(name: &str, stream: S)
where
    S: futures::Stream<Item = Result<T, E>>,
    E: std::fmt::Display,
{
    futures::pin_mut!(stream);
    while let Some(item) = stream.next().await {
        if let Err(e) = item {
            tracing::debug!(controller = name, error = %e, "controller event");
        }
    }
}
