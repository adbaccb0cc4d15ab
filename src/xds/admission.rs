//! Admission and pacing of xDS work. The rate limit on new streams is fair between
//! sources: a global token bucket, and within it a smaller bucket per peer IP, so one proxy
//! reconnecting in a loop (or one host opening many streams) spends at most its share of
//! the global budget and others still get in. The per-peer map is bounded: buckets that
//! have refilled carry no information and are pruned when the map grows. Refusals are
//! logged at most once per interval, with a count. The jittered connection age spreads
//! reconnects across replicas.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

/// Peers tracked before refilled buckets are pruned. A peer with a full bucket is the same
/// as an unknown one, so pruning loses nothing; if every tracked peer is still busy the map
/// is cleared (a moment of lost fairness rather than unbounded memory).
const MAX_PEERS: usize = 16 * 1024;
/// At most one refusal log line per interval; the others are counted into the next line.
const LOG_INTERVAL: Duration = Duration::from_secs(10);

/// A token bucket's state: `rate` tokens per second, up to `burst`. Tokens may go negative:
/// each waiter reserves its place in line.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn full(burst: f64, now: Instant) -> Self {
        Bucket {
            tokens: burst,
            at: now,
        }
    }

    fn refill(&mut self, rate: f64, burst: f64, now: Instant) {
        let refill = now.duration_since(self.at).as_secs_f64() * rate;
        self.tokens = (self.tokens + refill).min(burst);
        self.at = now;
    }

    /// How long until a token is available.
    fn wait(&self, rate: f64) -> Duration {
        if self.tokens >= 1.0 {
            Duration::ZERO
        } else {
            // Saturates instead of panicking on an absurdly small rate.
            Duration::try_from_secs_f64((1.0 - self.tokens) / rate).unwrap_or(Duration::MAX)
        }
    }
}

/// Why a stream was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The peer used up its own share.
    Peer,
    /// All peers together exceed the global rate.
    Global,
}

/// A refusal to log now, with the number of refusals not logged since the last line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LogLine {
    pub(crate) suppressed: u64,
}

/// The new-stream limiter.
pub(crate) struct NewStreams {
    rate: f64,
    burst: f64,
    peer_rate: f64,
    peer_burst: f64,
    state: Mutex<State>,
}

struct State {
    global: Bucket,
    peers: HashMap<IpAddr, Bucket>,
    last_log: Option<Instant>,
    unlogged: u64,
}

impl NewStreams {
    /// `rate` streams per second with `burst` saved; each peer gets `peer_share` (0..=1) of
    /// both, at least one stream of burst. A `rate` of zero or less disables the limit.
    pub(crate) fn new(rate: f64, burst: u32, peer_share: f64) -> Self {
        let burst = f64::from(burst.max(1));
        let share = peer_share.clamp(0.0, 1.0);
        let now = Instant::now();
        NewStreams {
            rate,
            burst,
            peer_rate: rate * share,
            peer_burst: (burst * share).max(1.0),
            state: Mutex::new(State {
                global: Bucket::full(burst, now),
                peers: HashMap::new(),
                last_log: None,
                unlogged: 0,
            }),
        }
    }

    /// Takes a token from `peer`'s bucket and the global one, waiting for them up to
    /// `max_wait`. On refusal nothing is taken.
    pub(crate) async fn acquire(
        &self,
        peer: Option<IpAddr>,
        max_wait: Duration,
    ) -> Result<(), Refusal> {
        if self.rate <= 0.0 {
            return Ok(());
        }
        let wait = self.reserve(peer, max_wait, Instant::now())?;
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        Ok(())
    }

    /// The bookkeeping of `acquire`: the wait for both tokens, both reserved, or a refusal.
    fn reserve(
        &self,
        peer: Option<IpAddr>,
        max_wait: Duration,
        now: Instant,
    ) -> Result<Duration, Refusal> {
        // A panic elsewhere while holding the lock leaves consistent numbers: keep going.
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.global.refill(self.rate, self.burst, now);
        let mut wait = Duration::ZERO;
        if let Some(ip) = peer {
            if self.peer_rate > 0.0 {
                if !state.peers.contains_key(&ip) && state.peers.len() >= MAX_PEERS {
                    self.prune(&mut state.peers, now);
                }
                let bucket = state
                    .peers
                    .entry(ip)
                    .or_insert_with(|| Bucket::full(self.peer_burst, now));
                bucket.refill(self.peer_rate, self.peer_burst, now);
                wait = bucket.wait(self.peer_rate);
                if wait > max_wait {
                    return Err(Refusal::Peer);
                }
            }
        }
        let global_wait = state.global.wait(self.rate);
        if global_wait > max_wait {
            return Err(Refusal::Global);
        }
        state.global.tokens -= 1.0;
        if let Some(bucket) = peer.and_then(|ip| state.peers.get_mut(&ip)) {
            bucket.tokens -= 1.0;
        }
        Ok(wait.max(global_wait))
    }

    /// Drops the buckets that have refilled (as good as unknown); clears the map when every
    /// peer is still busy.
    fn prune(&self, peers: &mut HashMap<IpAddr, Bucket>, now: Instant) {
        peers.retain(|_, b| {
            b.refill(self.peer_rate, self.peer_burst, now);
            b.tokens < self.peer_burst
        });
        if peers.len() >= MAX_PEERS {
            peers.clear();
        }
    }

    /// Counts a refusal; returns a line to log when the last one is an interval old.
    pub(crate) fn refusal_log(&self) -> Option<LogLine> {
        self.refusal_log_at(Instant::now())
    }

    fn refusal_log_at(&self, now: Instant) -> Option<LogLine> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state
            .last_log
            .is_some_and(|last| now.duration_since(last) < LOG_INTERVAL)
        {
            state.unlogged += 1;
            return None;
        }
        state.last_log = Some(now);
        Some(LogLine {
            suppressed: std::mem::take(&mut state.unlogged),
        })
    }

    #[cfg(test)]
    fn tracked_peers(&self) -> usize {
        self.state.lock().unwrap().peers.len()
    }
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

    #[tokio::test(start_paused = true)]
    async fn global_bucket_allows_a_burst_then_paces() {
        let limiter = NewStreams::new(10.0, 3, 1.0);
        let start = Instant::now();
        for _ in 0..3 {
            assert_eq!(limiter.acquire(None, Duration::ZERO).await, Ok(()));
        }
        assert_eq!(
            limiter.acquire(None, Duration::from_millis(50)).await,
            Err(Refusal::Global)
        );
        assert_eq!(
            limiter.acquire(None, Duration::from_millis(200)).await,
            Ok(())
        );
        assert_eq!(start.elapsed(), Duration::from_millis(100));
    }

    #[tokio::test(start_paused = true)]
    async fn a_noisy_peer_does_not_starve_the_others() {
        // 100 streams of burst, 10 per peer.
        let limiter = NewStreams::new(100.0, 100, 0.1);
        let mut admitted = 0;
        for _ in 0..1000 {
            if limiter.acquire(ip(1), Duration::ZERO).await.is_ok() {
                admitted += 1;
            }
        }
        assert_eq!(admitted, 10, "the noisy peer gets its share only");
        assert_eq!(
            limiter.acquire(ip(1), Duration::ZERO).await,
            Err(Refusal::Peer)
        );
        // Ninety tokens are left for everyone else.
        for peer in 2..=10 {
            for _ in 0..10 {
                assert_eq!(limiter.acquire(ip(peer), Duration::ZERO).await, Ok(()));
            }
        }
        assert_eq!(
            limiter.acquire(ip(11), Duration::ZERO).await,
            Err(Refusal::Global)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_refusal_takes_no_token() {
        let limiter = NewStreams::new(100.0, 2, 0.5);
        assert_eq!(limiter.acquire(ip(1), Duration::ZERO).await, Ok(()));
        assert_eq!(
            limiter.acquire(ip(1), Duration::ZERO).await,
            Err(Refusal::Peer)
        );
        // The refused attempt did not spend the global token the other peer needs.
        assert_eq!(limiter.acquire(ip(2), Duration::ZERO).await, Ok(()));
    }

    #[test]
    fn the_peer_map_is_bounded() {
        let limiter = NewStreams::new(1e9, 1_000_000, 0.001);
        let start = Instant::now();
        let fill = |at| {
            for i in 0..MAX_PEERS as u32 {
                let peer = Some(IpAddr::from(((i + 1) << 8).to_be_bytes()));
                limiter.reserve(peer, Duration::MAX, at).unwrap();
            }
        };
        fill(start);
        assert_eq!(limiter.tracked_peers(), MAX_PEERS);
        // Every bucket has refilled a moment later: a new peer prunes them all.
        let later = start + Duration::from_secs(60);
        limiter.reserve(ip(1), Duration::ZERO, later).unwrap();
        assert_eq!(limiter.tracked_peers(), 1);
        // When every tracked peer is still busy, the map is cleared instead: the last of
        // these new peers finds it full of busy ones.
        fill(later);
        assert_eq!(limiter.tracked_peers(), 1);
    }

    #[test]
    fn refusals_are_logged_once_per_interval_with_a_count() {
        let limiter = NewStreams::new(1.0, 1, 1.0);
        let t0 = Instant::now();
        assert_eq!(limiter.refusal_log_at(t0), Some(LogLine { suppressed: 0 }));
        for i in 1..=5 {
            assert_eq!(limiter.refusal_log_at(t0 + Duration::from_secs(i)), None);
        }
        assert_eq!(
            limiter.refusal_log_at(t0 + LOG_INTERVAL),
            Some(LogLine { suppressed: 5 })
        );
    }

    #[test]
    fn a_poisoned_lock_is_recovered() {
        let limiter = std::sync::Arc::new(NewStreams::new(10.0, 5, 1.0));
        let l = limiter.clone();
        let _ = std::thread::spawn(move || {
            let _guard = l.state.lock().unwrap();
            panic!("poison the lock");
        })
        .join();
        assert!(limiter.state.is_poisoned());
        assert!(limiter
            .reserve(ip(1), Duration::ZERO, Instant::now())
            .is_ok());
    }
}
