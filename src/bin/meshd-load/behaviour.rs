//! How a simulated proxy misbehaves (`--nack-fraction`, `--slow-fraction`,
//! `--never-ack-fraction`): which proxies are bad, spread evenly over the run, and what
//! each kind does differently from a healthy Envoy. The protocol loops (`proxy::sotw`,
//! `proxy::delta`) ask this module rather than knowing the kinds themselves.

use std::time::Duration;

use envoy_types::pb::google::rpc::Status as RpcStatus;
use serde::Serialize;
use tonic::transport::Endpoint;

/// What a proxy does with the responses it receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Behaviour {
    /// ACKs everything, as a healthy Envoy.
    Healthy,
    /// Rejects every response (as Envoy does with configuration it cannot load), and keeps
    /// subscribing to what the clusters and listeners name, as Envoy does after a partial
    /// rejection.
    Nack,
    /// ACKs everything, but through a small HTTP/2 window and with a pause before reading
    /// each response, as an overloaded Envoy or a slow network.
    Slow,
    /// Reads every response and never answers one: after its first request of each type it
    /// sends nothing more (Delta: still subscribes to new names, which carry no nonce).
    NeverAck,
}

/// The rejection message a NACKing proxy sends.
pub const NACK_MESSAGE: &str = "meshd-load: rejected by --nack-fraction";
/// The HTTP/2 stream and connection window of a slow proxy (HTTP/2's initial default).
pub const SLOW_WINDOW: u32 = 65_535;

/// The fractions of the proxies that misbehave, each kind spread evenly over the indices.
#[derive(Debug, Clone, Copy, Default)]
pub struct Mix {
    pub nack: f64,
    pub slow: f64,
    pub never_ack: f64,
}

impl Mix {
    pub fn check(&self) -> Result<(), String> {
        let sum = self.nack + self.slow + self.never_ack;
        if sum > 1.0 + 1e-9 {
            return Err(format!(
                "--nack-fraction, --slow-fraction and --never-ack-fraction add up to {sum}, more than 1"
            ));
        }
        Ok(())
    }

    /// The behaviour of each of `total` proxies: every kind gets its share (rounded), on
    /// indices drawn from a fixed-seed shuffle, so that the bad proxies are spread over the
    /// run, the namespaces (round-robin by index) and SotW and Delta (evenly spaced by
    /// index), and the same options pick the same proxies in every run.
    pub fn assign(&self, total: usize) -> Vec<Behaviour> {
        let mut order: Vec<usize> = (0..total).collect();
        let mut rng: u64 = 0x9E37_79B9_7F4A_7C15;
        for i in (1..total).rev() {
            // xorshift64: enough to scatter indices, no cryptographic need.
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            order.swap(i, (rng % (i as u64 + 1)) as usize);
        }
        let mut out = vec![Behaviour::Healthy; total];
        let mut next = order.into_iter();
        for (fraction, kind) in [
            (self.nack, Behaviour::Nack),
            (self.slow, Behaviour::Slow),
            (self.never_ack, Behaviour::NeverAck),
        ] {
            let count = (total as f64 * fraction).round() as usize;
            for index in next.by_ref().take(count) {
                out[index] = kind;
            }
        }
        out
    }
}

impl Behaviour {
    /// The name in the report (as in the JSON line).
    pub fn name(self) -> &'static str {
        match self {
            Behaviour::Healthy => "healthy",
            Behaviour::Nack => "nack",
            Behaviour::Slow => "slow",
            Behaviour::NeverAck => "never_ack",
        }
    }

    /// Whether the proxy answers responses with ACKs (and so can be synced).
    pub fn acks(self) -> bool {
        matches!(self, Behaviour::Healthy | Behaviour::Slow)
    }

    /// The rejection a NACKing proxy puts on every answer; `None` for the others.
    pub fn rejection(self) -> Option<RpcStatus> {
        (self == Behaviour::Nack).then(|| RpcStatus {
            code: tonic::Code::InvalidArgument as i32,
            message: NACK_MESSAGE.to_string(),
            details: Vec::new(),
        })
    }

    /// The pause before reading the next response.
    pub fn read_delay(self, slow_delay: Duration) -> Option<Duration> {
        (self == Behaviour::Slow && !slow_delay.is_zero()).then_some(slow_delay)
    }

    /// The connection settings of this kind of proxy.
    pub fn endpoint(self, endpoint: Endpoint) -> Endpoint {
        match self {
            Behaviour::Slow => endpoint
                .initial_stream_window_size(SLOW_WINDOW)
                .initial_connection_window_size(SLOW_WINDOW),
            _ => endpoint,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_gets_its_share_spread_over_the_run() {
        let mix = Mix {
            nack: 0.1,
            slow: 0.05,
            never_ack: 0.1,
        };
        assert!(mix.check().is_ok());
        let all = mix.assign(200);
        let count = |b| all.iter().filter(|&&x| x == b).count();
        assert_eq!(count(Behaviour::Nack), 20);
        assert_eq!(count(Behaviour::Slow), 10);
        assert_eq!(count(Behaviour::NeverAck), 20);
        assert_eq!(count(Behaviour::Healthy), 150);
        // Spread: each half of the run (and the odd and even indices, which alternate
        // between SotW and Delta at --delta-fraction 0.5) has some of each kind.
        for kind in [Behaviour::Nack, Behaviour::Slow, Behaviour::NeverAck] {
            let first_half = all[..100].iter().filter(|&&x| x == kind).count();
            let odd = all
                .iter()
                .skip(1)
                .step_by(2)
                .filter(|&&x| x == kind)
                .count();
            let whole = count(kind);
            assert!(
                first_half > 0 && first_half < whole,
                "{kind:?} {first_half}"
            );
            assert!(odd > 0 && odd < whole, "{kind:?} {odd}");
        }
        assert_eq!(all, mix.assign(200), "the same proxies every run");
        assert!(Mix::default()
            .assign(5)
            .iter()
            .all(|b| *b == Behaviour::Healthy));
    }

    #[test]
    fn fractions_over_one_are_refused_and_rounding_never_overflows() {
        let too_much = Mix {
            nack: 0.6,
            slow: 0.5,
            never_ack: 0.0,
        };
        assert!(too_much.check().unwrap_err().contains("more than 1"));
        let all = Mix {
            nack: 0.5,
            slow: 0.5,
            never_ack: 0.0,
        }
        .assign(3);
        assert_eq!(all.len(), 3);
        assert!(all.iter().all(|b| *b != Behaviour::Healthy));
    }
}
