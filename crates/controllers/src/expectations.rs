//! Controller expectations (pkg/controller/controller_utils.go `ControllerExpectations`): after a
//! replica controller creates or deletes pods it does not act on the same owner again until its
//! pod cache has seen those changes, so a stale cache never makes it create or delete twice.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Upstream's `ExpectationsTimeout`: give up waiting after five minutes.
const TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Default)]
struct Pending {
    created: HashSet<String>,
    deleted: HashSet<String>,
    since: Option<Instant>,
}

/// Pods an owner (key `namespace/name`) is waiting to see created (by name) or gone (by name).
#[derive(Default)]
pub struct Expectations {
    pending: Mutex<HashMap<String, Pending>>,
}

impl Expectations {
    /// Nothing here can be left half-updated by a panic, so a poisoned lock is still usable.
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Pending>> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records pods just created and deleted for `key`.
    pub fn expect(
        &self,
        key: &str,
        created: impl IntoIterator<Item = String>,
        deleted: impl IntoIterator<Item = String>,
    ) {
        let mut map = self.lock();
        let entry = map.entry(key.to_string()).or_default();
        entry.created.extend(created);
        entry.deleted.extend(deleted);
        entry.since = Some(Instant::now());
    }

    /// True when nothing is pending for `key` any more: `seen(name)` tells whether the cache
    /// holds an active pod of that name. Satisfied entries are dropped.
    pub fn satisfied(&self, key: &str, seen: impl Fn(&str) -> bool) -> bool {
        let mut map = self.lock();
        let Some(entry) = map.get_mut(key) else {
            return true;
        };
        entry.created.retain(|n| !seen(n));
        entry.deleted.retain(|n| seen(n));
        let expired = entry.since.is_some_and(|s| s.elapsed() > TIMEOUT);
        if expired || (entry.created.is_empty() && entry.deleted.is_empty()) {
            map.remove(key);
            return true;
        }
        false
    }

    /// Forgets `key` (its owner is gone).
    pub fn forget(&self, key: &str) {
        self.lock().remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_until_creations_and_deletions_are_observed() {
        let e = Expectations::default();
        assert!(e.satisfied("ns/rs", |_| false));
        e.expect("ns/rs", ["a".to_string()], ["b".to_string()]);
        assert!(
            !e.satisfied("ns/rs", |n| n == "b"),
            "a not seen yet, b still there"
        );
        assert!(
            !e.satisfied("ns/rs", |n| n == "a" || n == "b"),
            "b still there"
        );
        assert!(e.satisfied("ns/rs", |n| n == "a"));
    }
}
