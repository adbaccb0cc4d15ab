//! Admission and pacing of xDS work: the token bucket that rate-limits new streams, and the
//! jittered connection age that spreads reconnects across replicas.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// A token bucket: `rate` tokens per second, up to `burst` saved.
pub(crate) struct TokenBucket {
    rate: f64,
    burst: f64,
    state: Mutex<(f64, Instant)>,
}

impl TokenBucket {
    /// A `rate` of zero or less disables the limit.
    pub(crate) fn new(rate: f64, burst: u32) -> Self {
        let burst = f64::from(burst.max(1));
        TokenBucket {
            rate,
            burst,
            state: Mutex::new((burst, Instant::now())),
        }
    }

    /// Takes a token, waiting for it up to `max_wait`. `false` when the wait would be longer
    /// (nothing is taken then).
    pub(crate) async fn acquire(&self, max_wait: Duration) -> bool {
        if self.rate <= 0.0 {
            return true;
        }
        let wait = {
            let mut state = self.state.lock().expect("token bucket lock");
            let now = Instant::now();
            let refill = now.duration_since(state.1).as_secs_f64() * self.rate;
            state.0 = (state.0 + refill).min(self.burst);
            state.1 = now;
            // Tokens may go negative: each waiter reserves its place in line.
            let wait = if state.0 >= 1.0 {
                Duration::ZERO
            } else {
                Duration::from_secs_f64((1.0 - state.0) / self.rate)
            };
            if wait > max_wait {
                return false;
            }
            state.0 -= 1.0;
            wait
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        true
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

    #[tokio::test(start_paused = true)]
    async fn bucket_allows_a_burst_then_paces() {
        let bucket = TokenBucket::new(10.0, 3);
        let start = Instant::now();
        for _ in 0..3 {
            assert!(bucket.acquire(Duration::ZERO).await);
        }
        assert!(!bucket.acquire(Duration::from_millis(50)).await);
        assert!(bucket.acquire(Duration::from_millis(200)).await);
        assert_eq!(start.elapsed(), Duration::from_millis(100));
    }

    #[test]
    fn jitter_stays_in_range() {
        for seed in 0..100 {
            let d = jittered(Duration::from_secs(100), 0.1, seed);
            assert!(d >= Duration::from_secs(100) && d <= Duration::from_secs(110));
        }
    }
}
