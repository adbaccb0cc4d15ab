//! Throttled logging of refused streams: a reconnect storm must not flood the log with a
//! line per stream. The first refusal after a quiet interval is logged at once; the ones
//! that follow are gathered and logged in one line when the interval ends, with their
//! count and the first few peer addresses, so nothing is lost and no more than one line
//! per interval is written.

use std::net::SocketAddr;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;
use tracing::warn;

/// At most one refusal line per interval.
pub(crate) const LOG_INTERVAL: Duration = Duration::from_secs(10);
/// Peer addresses named in one line.
pub(crate) const PEERS_PER_LINE: usize = 5;

/// Refusals gathered for the next line.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct LogLine {
    pub(crate) count: u64,
    pub(crate) peers: Vec<SocketAddr>,
    /// The reason of the last refusal gathered.
    pub(crate) reason: &'static str,
}

#[derive(Default)]
pub(crate) struct RefusalLog {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    gathered: LogLine,
    last_line: Option<Instant>,
    /// A flush is scheduled: later refusals only join the line.
    scheduled: bool,
}

impl RefusalLog {
    /// Records a refusal; returns when the line gathering it should be written, if no
    /// write is scheduled yet (the caller then schedules one with `flush`).
    pub(crate) fn record(
        &self,
        peer: Option<SocketAddr>,
        reason: &'static str,
        now: Instant,
    ) -> Option<Instant> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.gathered.count += 1;
        state.gathered.reason = reason;
        if let Some(peer) = peer {
            if state.gathered.peers.len() < PEERS_PER_LINE {
                state.gathered.peers.push(peer);
            }
        }
        if state.scheduled {
            return None;
        }
        state.scheduled = true;
        let at = match state.last_line {
            Some(last) => (last + LOG_INTERVAL).max(now),
            None => now,
        };
        Some(at)
    }

    /// Takes the gathered line (written at `now`).
    pub(crate) fn take(&self, now: Instant) -> LogLine {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.scheduled = false;
        state.last_line = Some(now);
        std::mem::take(&mut state.gathered)
    }

    /// Records a refusal, and writes the line now or schedules it for the end of the
    /// interval. Must run inside the async runtime.
    pub(crate) fn refused(
        self: &std::sync::Arc<Self>,
        peer: Option<SocketAddr>,
        reason: &'static str,
    ) {
        let Some(at) = self.record(peer, reason, Instant::now()) else {
            return;
        };
        let log = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep_until(at).await;
            let line = log.take(Instant::now());
            let peers: Vec<String> = line.peers.iter().map(ToString::to_string).collect();
            warn!(
                refused = line.count,
                peers = %peers.join(","),
                reason = line.reason,
                interval = ?LOG_INTERVAL,
                "refused xds streams (the server is at its admission limit; proxies retry with backoff)"
            );
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(i: u8) -> Option<SocketAddr> {
        Some(SocketAddr::from(([10, 0, 0, i], 40000)))
    }

    #[test]
    fn refusals_are_logged_once_per_interval_with_a_count_and_a_few_peers() {
        let log = RefusalLog::default();
        let t0 = Instant::now();
        // The first refusal is written at once.
        assert_eq!(log.record(peer(1), "full", t0), Some(t0));
        let line = log.take(t0);
        assert_eq!(line.count, 1);
        assert_eq!(line.peers, vec![peer(1).unwrap()]);
        // A storm right after: one line at the end of the interval gathers all of it.
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(log.record(peer(2), "full", t1), Some(t0 + LOG_INTERVAL));
        for i in 3..=100 {
            assert_eq!(log.record(peer(i), "full", t1), None, "one write scheduled");
        }
        let line = log.take(t0 + LOG_INTERVAL);
        assert_eq!(line.count, 99);
        assert_eq!(line.peers.len(), PEERS_PER_LINE);
        assert_eq!(line.peers[0], peer(2).unwrap());
        assert_eq!(line.reason, "full");
        // After a quiet interval, the next refusal is written at once again.
        let t2 = t0 + LOG_INTERVAL * 3;
        assert_eq!(log.record(None, "full", t2), Some(t2));
        let line = log.take(t2);
        assert_eq!(line.count, 1);
        assert!(line.peers.is_empty());
    }
}
