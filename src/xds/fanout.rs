//! `meshd_xds_push_fanout_time`: per generation, from the moment the first stream started
//! pushing it to the moment the last proxy acknowledged it. Streams join the round of the
//! generation they push and leave it when their proxy converged (with that moment) or
//! dropped out (rejected it, was superseded, went away). The round is observed when its
//! last member leaves, or when the next generation starts (then up to the last
//! acknowledgement seen so far). Rounds in which no proxy converged are not observed.

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
    /// A stream starts pushing `generation`.
    pub(crate) fn joined(&self, generation: u64, now: Instant) -> Option<Duration> {
        let mut round = self.round.lock().unwrap_or_else(PoisonError::into_inner);
        match round.as_mut() {
            Some(r) if r.generation == generation => {
                if !r.done {
                    r.members += 1;
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
        if r.members == 0 {
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
        assert_eq!(f.joined(2, t0), None);
        f.joined(2, t0 + Duration::from_millis(10));
        f.joined(2, t0 + Duration::from_millis(20));
        assert_eq!(f.left(2, Some(t0 + Duration::from_millis(100))), None);
        assert_eq!(f.left(2, None), None);
        assert_eq!(
            f.left(2, Some(t0 + Duration::from_millis(250))),
            Some(Duration::from_millis(250))
        );
        // A straggler of the same generation starts nothing new.
        assert_eq!(f.joined(2, t0 + Duration::from_secs(1)), None);
        assert_eq!(f.left(2, Some(t0 + Duration::from_secs(2))), None);
    }

    #[test]
    fn the_next_generation_closes_the_round() {
        let f = FanOut::default();
        let t0 = Instant::now();
        f.joined(2, t0);
        f.joined(2, t0);
        f.left(2, Some(t0 + Duration::from_millis(40)));
        assert_eq!(
            f.joined(3, t0 + Duration::from_millis(50)),
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
        f.joined(5, t0);
        assert_eq!(f.left(5, None), None);
    }
}
