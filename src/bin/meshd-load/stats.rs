//! What every simulated proxy records (lock-free counters, one set per proxy) and the run's
//! shared clock: when it started and when the change was applied.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

const UNSET: u64 = u64::MAX;

/// State shared by the run and all proxy tasks.
pub struct Run {
    pub start: Instant,
    /// Nanoseconds after `start` at which the change was applied, `UNSET` before.
    change_at: AtomicU64,
    pub synced: AtomicUsize,
    pub changed: AtomicUsize,
    /// Woken whenever a proxy syncs or receives the change.
    pub progress: Notify,
}

impl Run {
    pub fn new() -> Run {
        Run {
            start: Instant::now(),
            change_at: AtomicU64::new(UNSET),
            synced: AtomicUsize::new(0),
            changed: AtomicUsize::new(0),
            progress: Notify::new(),
        }
    }

    fn now(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    /// Marks this moment as the one the change was applied at.
    pub fn arm_change(&self) {
        self.change_at.store(self.now(), Ordering::SeqCst);
    }
}

/// One proxy's figures.
#[derive(Default)]
pub struct ProxyStats {
    /// Nanoseconds after the run's start at which the proxy first had ACKed every type.
    synced_at: AtomicU64Opt,
    /// Nanoseconds from the change to the first response bringing a new version.
    change_delay: AtomicU64Opt,
    pub bytes: AtomicU64,
    pub responses: AtomicU64,
    /// Streams opened (1 when no reconnect was needed).
    pub streams: AtomicU64,
    /// Streams that ended in an error (refused, reset, closed by the server).
    pub stream_errors: AtomicU64,
}

/// An `AtomicU64` whose `u64::MAX` means "not yet".
pub struct AtomicU64Opt(AtomicU64);

impl Default for AtomicU64Opt {
    fn default() -> Self {
        AtomicU64Opt(AtomicU64::new(UNSET))
    }
}

impl AtomicU64Opt {
    pub fn get(&self) -> Option<Duration> {
        match self.0.load(Ordering::SeqCst) {
            UNSET => None,
            n => Some(Duration::from_nanos(n)),
        }
    }

    /// Sets the value if unset; true if this call set it.
    fn set_once(&self, nanos: u64) -> bool {
        self.0
            .compare_exchange(UNSET, nanos, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    }
}

impl ProxyStats {
    pub fn synced_at(&self) -> Option<Duration> {
        self.synced_at.get()
    }

    pub fn change_delay(&self) -> Option<Duration> {
        self.change_delay.get()
    }

    pub fn on_response(&self, bytes: usize) {
        self.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
        self.responses.fetch_add(1, Ordering::Relaxed);
    }

    /// The proxy has ACKed every type it subscribes to.
    pub fn on_synced(&self, run: &Run) {
        if self.synced_at.set_once(run.now()) {
            run.synced.fetch_add(1, Ordering::SeqCst);
            run.progress.notify_waiters();
        }
    }

    /// The proxy received a response with a new version; counts once after the change.
    pub fn on_new_version(&self, run: &Run) {
        let armed = run.change_at.load(Ordering::SeqCst);
        if armed == UNSET {
            return;
        }
        let now = run.now();
        if self.change_delay.set_once(now.saturating_sub(armed)) {
            run.changed.fetch_add(1, Ordering::SeqCst);
            run.progress.notify_waiters();
        }
    }
}
