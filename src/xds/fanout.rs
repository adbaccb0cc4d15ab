//! `meshd_xds_push_fanout_time`: per generation, from the moment the first stream started
//! pushing it to the moment the last proxy acknowledged it. Streams join the round of the
//! generation they push (as soon as they see it, before waiting for a push slot) and leave
//! it when their proxy converged (with that moment) or dropped out (rejected it, was
//! superseded, went away). The round is observed once as many streams joined as were
//! connected when it started and all of them left, or when the next generation starts
//! (then up to the last acknowledgement seen so far). Rounds in which no proxy converged
//! are not observed.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

/// The current round; each call returns the duration of a round it closed, to observe.
#[derive(Default)]
pub(crate) struct FanOut {
    round: Mutex<Option<Round>>,
}

#[derive(Debug)]
struct Round {
    generation: u64,
    first: Instant,
    last: Option<Instant>,
    members: usize,
    /// Streams that joined, and how many are expected to (connected at the start).
    joined: usize,
    expected: usize,
    /// Observed already: late members of the same generation are ignored.
    done: bool,
}

impl Round {
    fn close(&mut self) -> Option<Duration> {
        if self.done {
            return None;
        }
        self.done = true;
        self.last
            .map(|last| last.saturating_duration_since(self.first))
    }
}

impl FanOut {
    /// A stream starts pushing `generation`; `connected` streams are connected now.
    pub(crate) fn joined(
        &self,
        generation: u64,
        now: Instant,
        connected: usize,
    ) -> Option<Duration> {
        let mut round = self.round.lock().unwrap_or_else(PoisonError::into_inner);
        match round.as_mut() {
            Some(r) if r.generation == generation => {
                if !r.done {
                    r.members += 1;
                    r.joined += 1;
                }
                None
            }
            Some(r) if r.generation > generation => None,
            _ => {
                let closed = round.as_mut().and_then(Round::close);
                *round = Some(Round {
                    generation,
                    first: now,
                    last: None,
                    members: 1,
                    joined: 1,
                    expected: connected,
                    done: false,
                });
                closed
            }
        }
    }

    /// A stream leaves the round of `generation`: converged at `at`, or dropped out.
    pub(crate) fn left(&self, generation: u64, at: Option<Instant>) -> Option<Duration> {
        let mut round = self.round.lock().unwrap_or_else(PoisonError::into_inner);
        let r = round
            .as_mut()
            .filter(|r| r.generation == generation && !r.done)?;
        r.members = r.members.saturating_sub(1);
        if let Some(at) = at {
            r.last = Some(r.last.map_or(at, |l| l.max(at)));
        }
        if r.members == 0 && r.joined >= r.expected {
            r.close()
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_round_ends_with_its_last_member() {
        let f = FanOut::default();
        let t0 = Instant::now();
        assert_eq!(f.joined(2, t0, 3), None);
        f.joined(2, t0 + Duration::from_millis(10), 3);
        f.joined(2, t0 + Duration::from_millis(20), 3);
        assert_eq!(f.left(2, Some(t0 + Duration::from_millis(100))), None);
        assert_eq!(f.left(2, None), None);
        assert_eq!(
            f.left(2, Some(t0 + Duration::from_millis(250))),
            Some(Duration::from_millis(250))
        );
        // A straggler of the same generation starts nothing new.
        assert_eq!(f.joined(2, t0 + Duration::from_secs(1), 3), None);
        assert_eq!(f.left(2, Some(t0 + Duration::from_secs(2))), None);
    }

    #[test]
    fn a_round_waits_for_every_connected_stream_to_join() {
        let f = FanOut::default();
        let t0 = Instant::now();
        // Three connected; the first converges before the others even joined.
        f.joined(2, t0, 3);
        assert_eq!(f.left(2, Some(t0 + Duration::from_millis(5))), None);
        f.joined(2, t0 + Duration::from_millis(6), 3);
        f.joined(2, t0 + Duration::from_millis(7), 3);
        f.left(2, Some(t0 + Duration::from_millis(300)));
        assert_eq!(
            f.left(2, Some(t0 + Duration::from_millis(900))),
            Some(Duration::from_millis(900))
        );
    }

    #[test]
    fn the_next_generation_closes_the_round() {
        let f = FanOut::default();
        let t0 = Instant::now();
        f.joined(2, t0, 2);
        f.joined(2, t0, 2);
        f.left(2, Some(t0 + Duration::from_millis(40)));
        assert_eq!(
            f.joined(3, t0 + Duration::from_millis(50), 2),
            Some(Duration::from_millis(40))
        );
        assert_eq!(
            f.left(2, Some(t0 + Duration::from_secs(1))),
            None,
            "generation 2 is closed"
        );
    }

    #[test]
    fn a_round_without_any_convergence_is_not_observed() {
        let f = FanOut::default();
        let t0 = Instant::now();
        f.joined(5, t0, 1);
        assert_eq!(f.left(5, None), None);
    }
}
