//! The authority in use, replaceable while meshd runs: everything that signs or hands out
//! the trust bundle (SDS renewals, the CA API, the serving certificate) reads the current
//! one at each use and can wait for the next. The reloader (`reload`) holds the sending
//! side; an authority that never changes is a handle whose sender is gone.

use std::sync::Arc;

use tokio::sync::watch;

use super::Authority;

/// A shared, replaceable `Authority`.
#[derive(Clone)]
pub struct LiveAuthority {
    rx: watch::Receiver<Arc<Authority>>,
}

impl LiveAuthority {
    /// A handle on `authority` and the sender that replaces it.
    pub fn new(authority: Arc<Authority>) -> (LiveAuthority, watch::Sender<Arc<Authority>>) {
        let (tx, rx) = watch::channel(authority);
        (LiveAuthority { rx }, tx)
    }

    /// The authority in use now.
    pub fn current(&self) -> Arc<Authority> {
        self.rx.borrow().clone()
    }

    /// A receiver that wakes when the authority is replaced (never, for a fixed one: its
    /// `changed()` then fails, which callers treat as "no more changes").
    pub fn watch(&self) -> watch::Receiver<Arc<Authority>> {
        self.rx.clone()
    }
}

impl From<Arc<Authority>> for LiveAuthority {
    /// An authority that is never replaced.
    fn from(authority: Arc<Authority>) -> Self {
        LiveAuthority::new(authority).0
    }
}

impl From<Authority> for LiveAuthority {
    fn from(authority: Authority) -> Self {
        Arc::new(authority).into()
    }
}

/// Waits for the next replacement of the authority; never resolves once no sender is
/// left, so it can sit in a `select!` beside timers.
pub async fn next_change(rx: &mut watch::Receiver<Arc<Authority>>) -> Arc<Authority> {
    if rx.changed().await.is_err() {
        std::future::pending::<()>().await;
    }
    rx.borrow_and_update().clone()
}
