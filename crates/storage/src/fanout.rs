//! In-process watch fan-out shared by the backends that publish their own commits (memory,
//! SQLite): each committed event is sent once into a bounded broadcast ring; every watcher reads
//! it at its own pace and a watcher that falls a whole ring behind ends with
//! [`StorageError::WatchLagged`]. A slow watcher therefore never blocks a writer or other watchers
//! (the upstream cacher closes slow watchers for the same reason, `cacher/cache_watcher.go`).
//!
//! Replay-then-live without gaps or duplicates: a watch first [`Fanout::subscribe`]s, then reads
//! history up to some revision `H` it knows is complete, and [`watch_stream`] drops live events at
//! or below `H`. Every event committed after the subscription is in the ring; every event committed
//! before it is in the history the backend reads afterwards; the overlap is removed by revision.
//! This needs publishers to publish in revision order, which both backends do (one writer).

use std::sync::Arc;

use futures::StreamExt;
use futures::stream::{self, BoxStream};
use tokio::sync::broadcast;

use crate::{Event, Revision, StorageError, WatchStream};

/// How many events a watcher may fall behind before it is dropped, unless a backend says otherwise.
pub const DEFAULT_WATCH_CAPACITY: usize = 4096;

/// The sending side of the watch fan-out. Dropping every clone ends all watch streams.
#[derive(Debug, Clone)]
pub struct Fanout {
    tx: broadcast::Sender<Arc<Event>>,
}

/// A watcher's place in the fan-out, taken before the backend reads its history.
#[derive(Debug)]
pub struct Subscription {
    rx: broadcast::Receiver<Arc<Event>>,
}

impl Fanout {
    /// A fan-out where each watcher may lag `capacity` events (at least 1) before being dropped.
    pub fn new(capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(capacity.max(1));
        Fanout { tx }
    }

    /// Sends a committed event to every current watcher. Never blocks; having no watchers is fine.
    pub fn publish(&self, event: Event) {
        // An error only means nobody is subscribed right now, which is not a failure.
        let _ = self.tx.send(Arc::new(event));
    }

    /// Starts receiving every event published from now on.
    pub fn subscribe(&self) -> Subscription {
        Subscription { rx: self.tx.subscribe() }
    }

    /// How many watchers are subscribed (for metrics and tests).
    pub fn watcher_count(&self) -> usize {
        self.tx.receiver_count()
    }
}

/// Joins a backend's history `replay` (events for `prefix` with revisions up to `replayed_to`, in
/// order, already filtered) and the live events of `subscription` into one watch stream. Live
/// events at or below `replayed_to` are dropped as duplicates; live events outside `prefix` are
/// skipped. The stream ends after the first error of `replay`, on lag, or when the store is gone.
pub fn watch_stream(
    prefix: String,
    replay: BoxStream<'static, crate::Result<Event>>,
    replayed_to: Revision,
    subscription: Subscription,
) -> WatchStream {
    stream::unfold(State::Replay(replay, subscription.rx), move |mut state| {
        let prefix = prefix.clone();
        async move {
            loop {
                state = match state {
                    State::Replay(mut replay, rx) => match replay.next().await {
                        Some(Ok(event)) => return Some((Ok(event), State::Replay(replay, rx))),
                        // Going live after a failed replay would hide a hole in the history.
                        Some(Err(err)) => return Some((Err(err), State::Done)),
                        None => State::Live(rx),
                    },
                    State::Live(mut rx) => match rx.recv().await {
                        Ok(event) => {
                            if event.revision() > replayed_to && event.key().starts_with(&prefix) {
                                return Some((Ok(Event::clone(&event)), State::Live(rx)));
                            }
                            State::Live(rx)
                        }
                        Err(broadcast::error::RecvError::Lagged(_)) => {
                            return Some((Err(StorageError::WatchLagged), State::Done));
                        }
                        Err(broadcast::error::RecvError::Closed) => State::Done,
                    },
                    State::Done => return None,
                }
            }
        }
    })
    .boxed()
}

/// Where a watch stream is: replaying history, following the ring, or finished.
enum State {
    Replay(BoxStream<'static, crate::Result<Event>>, broadcast::Receiver<Arc<Event>>),
    Live(broadcast::Receiver<Arc<Event>>),
    Done,
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::KeyValue;

    fn put(key: &str, rev: Revision) -> Event {
        Event::Put {
            kv: KeyValue { key: key.into(), value: vec![], create_revision: rev, mod_revision: rev },
            prev: None,
        }
    }

    #[tokio::test]
    async fn replay_then_live_drops_duplicates_and_other_prefixes() {
        let fanout = Fanout::new(16);
        let sub = fanout.subscribe();
        fanout.publish(put("/a/1", 1)); // also in the replay
        fanout.publish(put("/b/1", 2));
        fanout.publish(put("/a/2", 3));
        let replay = stream::iter(vec![Ok(put("/a/1", 1))]).boxed();
        let mut watch = watch_stream("/a/".into(), replay, 1, sub);
        assert_eq!(watch.next().await.unwrap().unwrap().revision(), 1);
        assert_eq!(watch.next().await.unwrap().unwrap().revision(), 3);
        drop(fanout);
        assert!(watch.next().await.is_none());
    }

    #[tokio::test]
    async fn lagging_watcher_ends_with_error_and_never_blocks_publisher() {
        let fanout = Fanout::new(2);
        let sub = fanout.subscribe();
        for rev in 1..=10 {
            fanout.publish(put("/a", rev));
        }
        let mut watch = watch_stream(String::new(), stream::empty().boxed(), 0, sub);
        assert_eq!(watch.next().await.unwrap(), Err(StorageError::WatchLagged));
        assert!(watch.next().await.is_none());
    }

    #[tokio::test]
    async fn replay_error_ends_the_stream() {
        let fanout = Fanout::new(4);
        let sub = fanout.subscribe();
        fanout.publish(put("/a", 5));
        let replay = stream::iter(vec![Err(StorageError::Backend("boom".into()))]).boxed();
        let mut watch = watch_stream(String::new(), replay, 0, sub);
        assert!(watch.next().await.unwrap().is_err());
        assert!(watch.next().await.is_none());
    }
}
