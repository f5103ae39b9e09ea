//! The user of the request being served, carried like upstream's request context so that the
//! registry's RBAC write checks know who writes. Writes made by the server itself (bootstrap,
//! controllers) run without one and are not checked, as upstream's privileged loopback client.

use std::future::Future;

use crate::user::UserInfo;

tokio::task_local! {
    static REQUEST_USER: UserInfo;
}

/// Runs `f` as a request by `user`.
pub async fn with_user<F: Future>(user: UserInfo, f: F) -> F::Output {
    REQUEST_USER.scope(user, f).await
}

/// The user of the current request, if any.
pub fn current_user() -> Option<UserInfo> {
    REQUEST_USER.try_with(Clone::clone).ok()
}
