//! Errors of the controller manager and its controllers.

/// Why a reconcile or the manager failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An API call failed.
    #[error("API request failed: {0}")]
    Kube(#[from] kube::Error),
    /// Leader election failed.
    #[error("leader election: {0}")]
    Lease(#[from] kube_lease_manager::LeaseManagerError),
    /// The kubeconfig could not be used.
    #[error("kubeconfig: {0}")]
    Config(String),
    /// An object did not have the shape the controller needs.
    #[error("{0}")]
    Invalid(String),
    /// JSON (de)serialisation of an object failed.
    #[error("encoding: {0}")]
    Json(#[from] serde_json::Error),
}

impl Error {
    /// True when the API answered with `code`.
    pub fn is_status(&self, code: u16) -> bool {
        matches!(self, Error::Kube(kube::Error::Api(s)) if s.code == code)
    }
}

/// Result of controller operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;
