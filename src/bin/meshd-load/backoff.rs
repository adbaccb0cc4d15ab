//! Envoy's reconnect backoff for xDS streams: jittered exponential, a random wait in
//! [0, min(base * 2^n, max)) with base 500 ms and max 30 s (Envoy's defaults for the ADS
//! gRPC stream), reset once a stream has received a response.

use std::time::Duration;

pub struct Backoff {
    base: Duration,
    max: Duration,
    attempts: u32,
    rng: u64,
}

impl Backoff {
    pub fn new(seed: u64) -> Backoff {
        Backoff {
            base: Duration::from_millis(500),
            max: Duration::from_secs(30),
            attempts: 0,
            // xorshift must not start at 0.
            rng: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
        }
    }

    fn next_random(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    /// The wait before the next attempt.
    pub fn next_wait(&mut self) -> Duration {
        let ceiling = self
            .base
            .saturating_mul(1u32 << self.attempts.min(16))
            .min(self.max);
        self.attempts += 1;
        let millis = ceiling.as_millis().max(1) as u64;
        Duration::from_millis(self.next_random() % millis)
    }

    pub fn reset(&mut self) {
        self.attempts = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_grow_up_to_the_cap_and_reset() {
        let mut backoff = Backoff::new(7);
        for attempt in 0..20u32 {
            let ceiling =
                Duration::from_millis(500 * (1u64 << attempt.min(16))).min(Duration::from_secs(30));
            assert!(backoff.next_wait() < ceiling);
        }
        backoff.reset();
        assert!(backoff.next_wait() < Duration::from_millis(500));
    }
}
