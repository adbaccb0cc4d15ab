//! Admission of new xDS streams by load, not by a fixed rate. A stream is "in progress"
//! from its admission until its first configuration is generated and queued (or a short
//! hold time passes): that is where a new stream costs CPU. At most `limit` streams are in
//! progress at once (a few per core); the others wait in a FIFO queue, and a stream is
//! refused only when the queue is full, when its peer IP already holds its share of the
//! queue (so one host reconnecting in a loop cannot fill it), or when it waited longer than
//! the maximum wait. A mass reconnect is thus served as fast as the machine can generate
//! configuration, without a refusal storm. The jittered connection age that spreads
//! reconnects across replicas lives here too.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};

/// How long an admitted stream may count as in progress without finishing its first
/// configuration: Envoy sends its first request as soon as the stream opens, so a stream
/// still silent after this is a slow or idle client, and must not hold a place.
pub(crate) const HOLD_MAX: Duration = Duration::from_secs(5);

/// Why a stream was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The waiting queue is full.
    QueueFull,
    /// The peer already has its share of the queue.
    Peer,
    /// The stream waited `max_wait` without getting in.
    Timeout,
}

impl Refusal {
    pub(crate) fn reason(self) -> &'static str {
        match self {
            Refusal::QueueFull => "too many new streams waiting",
            Refusal::Peer => "this peer has too many new streams waiting",
            Refusal::Timeout => "new stream waited too long for the server",
        }
    }
}

/// The new-stream admission queue.
pub(crate) struct Admission {
    /// Streams in progress; `None` when admission is unlimited.
    in_progress: Option<Arc<Semaphore>>,
    queue_limit: usize,
    peer_limit: usize,
    waiting: Mutex<Waiting>,
}

#[derive(Default)]
struct Waiting {
    total: usize,
    /// Waiting streams per peer IP; entries leave with their last stream, so the map is
    /// bounded by the queue.
    peers: HashMap<IpAddr, usize>,
}

/// An admitted stream's place among those in progress, given back when dropped or when
/// `HOLD_MAX` has passed, whichever comes first.
pub(crate) struct Ticket {
    _release: Option<oneshot::Sender<()>>,
}

impl Admission {
    /// `limit` streams in progress at once (0: no limit, every stream admitted at once), up
    /// to `queue_limit` waiting, of which one peer IP may hold `peer_share` (0 to 1, at
    /// least one).
    pub(crate) fn new(limit: usize, queue_limit: usize, peer_share: f64) -> Self {
        let share = peer_share.clamp(0.0, 1.0);
        Admission {
            in_progress: (limit > 0).then(|| Arc::new(Semaphore::new(limit))),
            queue_limit,
            peer_limit: ((queue_limit as f64 * share) as usize).max(1),
            waiting: Mutex::new(Waiting::default()),
        }
    }

    /// Waits (in arrival order) for a place among the streams in progress, up to
    /// `max_wait`; refuses at once when the queue or the peer's share of it is full.
    pub(crate) async fn admit(
        &self,
        peer: Option<IpAddr>,
        max_wait: Duration,
    ) -> Result<Ticket, Refusal> {
        let Some(semaphore) = &self.in_progress else {
            return Ok(Ticket { _release: None });
        };
        // The fast path, when nobody waits: no queue bookkeeping.
        if let Ok(permit) = semaphore.clone().try_acquire_owned() {
            return Ok(hold(permit));
        }
        let _place = self.enqueue(peer)?;
        match tokio::time::timeout(max_wait, semaphore.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(hold(permit)),
            // The semaphore is never closed; a timeout is a refusal.
            Ok(Err(_)) | Err(_) => Err(Refusal::Timeout),
        }
    }

    /// Takes a place in the queue, given back when the returned guard is dropped.
    fn enqueue(&self, peer: Option<IpAddr>) -> Result<Place<'_>, Refusal> {
        // A panic elsewhere while holding the lock leaves consistent numbers: keep going.
        let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        if waiting.total >= self.queue_limit {
            return Err(Refusal::QueueFull);
        }
        if let Some(ip) = peer {
            let count = waiting.peers.entry(ip).or_default();
            if *count >= self.peer_limit {
                return Err(Refusal::Peer);
            }
            *count += 1;
        }
        waiting.total += 1;
        Ok(Place {
            admission: self,
            peer,
        })
    }

    /// Streams waiting now.
    #[cfg(test)]
    fn waiting(&self) -> usize {
        self.waiting
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .total
    }
}

/// A place in the queue.
struct Place<'a> {
    admission: &'a Admission,
    peer: Option<IpAddr>,
}

impl Drop for Place<'_> {
    fn drop(&mut self) {
        let mut waiting = self
            .admission
            .waiting
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        waiting.total -= 1;
        if let Some(ip) = self.peer {
            if let Some(count) = waiting.peers.get_mut(&ip) {
                *count -= 1;
                if *count == 0 {
                    waiting.peers.remove(&ip);
                }
            }
        }
    }
}

/// Holds `permit` until the ticket is dropped or `HOLD_MAX` has passed.
fn hold(permit: OwnedSemaphorePermit) -> Ticket {
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = tokio::time::timeout(HOLD_MAX, rx).await;
        drop(permit);
    });
    Ticket { _release: Some(tx) }
}

/// `age` stretched by up to `jitter` (a fraction) chosen from `seed`, so that proxies
/// connected at the same moment do not all reconnect at the same moment.
pub(crate) fn jittered(age: Duration, jitter: f64, seed: u64) -> Duration {
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    hasher.update(&seed.to_le_bytes());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos();
    hasher.update(&nanos.to_le_bytes());
    let unit = (hasher.digest() % 10_000) as f64 / 10_000.0;
    age.mul_f64(1.0 + jitter.clamp(0.0, 1.0) * unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_in_range() {
        for seed in 0..100 {
            let d = jittered(Duration::from_secs(100), 0.1, seed);
            assert!(d >= Duration::from_secs(100) && d <= Duration::from_secs(110));
        }
    }

    fn ip(last: u8) -> Option<IpAddr> {
        Some(IpAddr::from([10, 0, 0, last]))
    }

    const LONG: Duration = Duration::from_secs(60);

    #[tokio::test(start_paused = true)]
    async fn streams_beyond_the_limit_wait_and_get_in_as_places_free_up() {
        let admission = Arc::new(Admission::new(2, 10, 1.0));
        let first = admission.admit(ip(1), LONG).await.unwrap();
        let _second = admission.admit(ip(2), LONG).await.unwrap();
        let a = admission.clone();
        let third = tokio::spawn(async move { a.admit(ip(3), LONG).await.is_ok() });
        tokio::task::yield_now().await;
        assert_eq!(admission.waiting(), 1);
        assert!(!third.is_finished());
        drop(first);
        assert!(third.await.unwrap(), "admitted once a place was free");
        assert_eq!(admission.waiting(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_queue_refuses_at_once() {
        let admission = Arc::new(Admission::new(1, 3, 1.0));
        let _held = admission.admit(ip(1), LONG).await.unwrap();
        let mut waiters = Vec::new();
        for i in 0..3 {
            let a = admission.clone();
            waiters.push(tokio::spawn(async move { a.admit(ip(10 + i), LONG).await }));
        }
        tokio::task::yield_now().await;
        assert_eq!(admission.waiting(), 3);
        assert_eq!(
            admission.admit(ip(20), LONG).await.err(),
            Some(Refusal::QueueFull)
        );
        // The refused stream took no place.
        assert_eq!(admission.waiting(), 3);
        for w in waiters {
            w.abort();
        }
    }

    #[tokio::test(start_paused = true)]
    async fn one_peer_holds_only_its_share_of_the_queue() {
        // A queue of 10, a peer may hold a fifth of it.
        let admission = Arc::new(Admission::new(1, 10, 0.2));
        let _held = admission.admit(ip(1), LONG).await.unwrap();
        let mut waiters = Vec::new();
        for _ in 0..2 {
            let a = admission.clone();
            waiters.push(tokio::spawn(async move { a.admit(ip(1), LONG).await }));
        }
        tokio::task::yield_now().await;
        assert_eq!(
            admission.admit(ip(1), LONG).await.err(),
            Some(Refusal::Peer)
        );
        // Another peer still gets a place in the queue.
        let a = admission.clone();
        waiters.push(tokio::spawn(async move { a.admit(ip(2), LONG).await }));
        tokio::task::yield_now().await;
        assert_eq!(admission.waiting(), 3);
        for w in waiters {
            w.abort();
        }
        tokio::task::yield_now().await;
        assert_eq!(
            admission.waiting(),
            0,
            "aborted waiters give their place back"
        );
        assert!(admission.waiting.lock().unwrap().peers.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn waiting_too_long_is_a_refusal() {
        let admission = Admission::new(1, 10, 1.0);
        let _held = admission.admit(ip(1), LONG).await.unwrap();
        let start = tokio::time::Instant::now();
        assert_eq!(
            admission.admit(ip(2), Duration::from_secs(3)).await.err(),
            Some(Refusal::Timeout)
        );
        assert_eq!(start.elapsed(), Duration::from_secs(3));
        assert_eq!(admission.waiting(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_admitted_stream_gives_its_place_back_after_the_hold_time() {
        let admission = Admission::new(1, 10, 1.0);
        let _idle = admission.admit(ip(1), LONG).await.unwrap();
        let start = tokio::time::Instant::now();
        assert!(admission.admit(ip(2), LONG).await.is_ok());
        assert_eq!(start.elapsed(), HOLD_MAX);
    }

    #[tokio::test]
    async fn no_limit_admits_everyone_at_once() {
        let admission = Admission::new(0, 0, 0.0);
        let mut tickets = Vec::new();
        for _ in 0..1000 {
            tickets.push(admission.admit(ip(1), Duration::ZERO).await.unwrap());
        }
        assert_eq!(tickets.len(), 1000);
    }

    #[test]
    fn a_poisoned_lock_is_recovered() {
        let admission = Arc::new(Admission::new(1, 10, 1.0));
        let a = admission.clone();
        let _ = std::thread::spawn(move || {
            let _guard = a.waiting.lock().unwrap();
            panic!("poison the lock");
        })
        .join();
        assert!(admission.waiting.is_poisoned());
        assert!(admission.enqueue(ip(1)).is_ok());
    }
}
