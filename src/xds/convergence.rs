//! `pilot_proxy_convergence_time`, measured honestly: per stream, from the moment the
//! build pipeline saw the input change behind a generation (`ConfigGenerator::changed_at`)
//! until the proxy has acknowledged every response the change caused. Generations that
//! arrive before the proxy converged merge into one measurement that keeps the earliest
//! change (as Istio merges pushes). A change the proxy rejects (NACK), one that sends the
//! proxy nothing, and a stream's first configuration are not counted. Each stream also
//! reports to the server's fan-out round (`fanout`) when it converges or drops out.

use std::time::Duration;

use tokio::time::Instant;

use super::metrics::type_index;
use super::status::TypeView;
use super::stream::Conn;

/// Per-stream convergence state: the change being converged on, and what the proxy holds
/// per type (in push order).
#[derive(Default)]
pub(crate) struct Clock {
    /// The last generation generated for the stream (0 before its first).
    generation: u64,
    open: Option<Open>,
    /// Per type (a bit each): a response sent and not yet acknowledged.
    in_flight: u8,
    /// Per type: the latest response was rejected.
    nacked: u8,
    /// Per type: responses sent so far.
    responses: [u64; 5],
}

/// A change the proxy has not converged on yet.
#[derive(Debug, Clone, Copy)]
struct Open {
    generation: u64,
    seen: Instant,
    /// Every response due since the change has been built.
    built: bool,
    /// A response was sent since the change.
    carried: bool,
}

/// What a step of the clock ended.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Ended {
    /// The proxy acknowledged everything up to `generation`; the change was seen `elapsed`
    /// ago.
    Converged { generation: u64, elapsed: Duration },
    /// The measurement of `generation` ends uncounted (rejected, nothing sent, superseded
    /// or the stream gone).
    Dropped { generation: u64 },
}

impl Clock {
    /// The stream generated `generation`; `changed_at` tells when the input change behind a
    /// generation was seen. Returns the measurement superseded by this one, if any.
    pub(crate) fn generated(
        &mut self,
        generation: u64,
        changed_at: impl FnOnce(u64) -> Option<Instant>,
    ) -> Option<Ended> {
        let previous = self.generation;
        self.generation = generation.max(previous);
        // The first configuration of a stream is a connection, not a change.
        if previous == 0 || generation <= previous {
            return None;
        }
        match &mut self.open {
            Some(open) => {
                let superseded = open.generation;
                open.generation = generation;
                open.built = false;
                Some(Ended::Dropped {
                    generation: superseded,
                })
            }
            None => {
                // The oldest change this proxy has not received yet.
                self.open = changed_at(previous + 1).map(|seen| Open {
                    generation,
                    seen,
                    built: false,
                    carried: false,
                });
                None
            }
        }
    }

    /// The generation being converged on, if any.
    pub(crate) fn converging(&self) -> Option<u64> {
        self.open.map(|o| o.generation)
    }

    /// Every due response has been built.
    pub(crate) fn built(&mut self, now: Instant) -> Option<Ended> {
        self.open.as_mut()?.built = true;
        self.settle(now)
    }

    /// A type's sync state changed (a response sent, acknowledged or rejected).
    pub(crate) fn published(
        &mut self,
        index: usize,
        view: &TypeView,
        now: Instant,
    ) -> Option<Ended> {
        let bit = 1u8 << index;
        let sent = view.responses > self.responses[index];
        self.responses[index] = view.responses;
        set_bit(
            &mut self.in_flight,
            bit,
            view.nonce_sent != view.nonce_acked,
        );
        let newly_nacked = view.nacked && self.nacked & bit == 0;
        set_bit(&mut self.nacked, bit, view.nacked);
        let open = self.open.as_mut()?;
        if sent {
            open.carried = true;
        }
        if newly_nacked {
            let generation = open.generation;
            self.open = None;
            return Some(Ended::Dropped { generation });
        }
        self.settle(now)
    }

    /// The stream ends: an open measurement is dropped.
    pub(crate) fn gone(&mut self) -> Option<Ended> {
        self.open.take().map(|o| Ended::Dropped {
            generation: o.generation,
        })
    }

    fn settle(&mut self, now: Instant) -> Option<Ended> {
        let open = self.open?;
        if !open.built || self.in_flight != 0 {
            return None;
        }
        self.open = None;
        Some(if open.carried {
            Ended::Converged {
                generation: open.generation,
                elapsed: now.saturating_duration_since(open.seen),
            }
        } else {
            Ended::Dropped {
                generation: open.generation,
            }
        })
    }
}

fn set_bit(mask: &mut u8, bit: u8, on: bool) {
    if on {
        *mask |= bit;
    } else {
        *mask &= !bit;
    }
}

impl Conn {
    /// Called with each generation generated for the stream.
    pub(crate) fn converge_generated(&mut self, generation: u64) {
        let generator = self.shared.generator.clone();
        // A generator that does not know when its changes were seen: from now on.
        let superseded = self.convergence.generated(generation, |g| {
            Some(
                generator
                    .changed_at(g)
                    .map_or_else(Instant::now, Instant::from_std),
            )
        });
        self.converge_report(superseded);
        if let Some(generation) = self.convergence.converging() {
            let connected = self.shared.status.connected();
            let closed = self
                .shared
                .fanout
                .joined(generation, Instant::now(), connected);
            self.observe_fanout(closed);
        }
    }

    /// Called when every due response has been built.
    pub(crate) fn converge_built(&mut self) {
        let ended = self.convergence.built(Instant::now());
        self.converge_report(ended);
    }

    /// Called with each published type view.
    pub(crate) fn converge_published(&mut self, type_url: &str, view: &TypeView) {
        let Some(index) = type_index(type_url) else {
            return;
        };
        let ended = self.convergence.published(index, view, Instant::now());
        self.converge_report(ended);
    }

    /// Called when the stream ends.
    pub(crate) fn converge_gone(&mut self) {
        let ended = self.convergence.gone();
        self.converge_report(ended);
    }

    fn converge_report(&self, ended: Option<Ended>) {
        let closed = match ended {
            None => None,
            Some(Ended::Converged {
                generation,
                elapsed,
            }) => {
                self.shared.status.metrics().converged(elapsed);
                self.shared.fanout.left(generation, Some(Instant::now()))
            }
            Some(Ended::Dropped { generation }) => self.shared.fanout.left(generation, None),
        };
        self.observe_fanout(closed);
    }

    fn observe_fanout(&self, closed: Option<Duration>) {
        if let Some(d) = closed {
            self.shared.status.metrics().fanned_out(d);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(nonce_sent: &str, nonce_acked: &str, nacked: bool, responses: u64) -> TypeView {
        TypeView {
            nonce_sent: nonce_sent.into(),
            nonce_acked: nonce_acked.into(),
            nacked,
            responses,
            ..TypeView::default()
        }
    }

    /// A clock past the stream's first configuration (generation 1, all acknowledged).
    fn connected(t0: Instant) -> Clock {
        let mut c = Clock::default();
        assert_eq!(c.generated(1, |_| Some(t0)), None);
        assert_eq!(c.converging(), None, "a connection is not a change");
        c.published(0, &view("1", "", false, 1), t0);
        c.built(t0);
        c.published(0, &view("1", "1", false, 1), t0);
        c
    }

    #[test]
    fn counts_from_the_change_to_the_last_ack() {
        let t0 = Instant::now();
        let mut c = connected(t0);
        let seen = t0 + Duration::from_secs(1);
        c.generated(2, |g| (g == 2).then_some(seen));
        assert_eq!(c.converging(), Some(2));
        let sent = seen + Duration::from_millis(300);
        assert_eq!(c.published(0, &view("2", "1", false, 2), sent), None);
        assert_eq!(c.published(1, &view("3", "", false, 1), sent), None);
        assert_eq!(c.built(sent), None, "not acknowledged yet");
        assert_eq!(c.published(0, &view("2", "2", false, 2), sent), None);
        let acked = seen + Duration::from_millis(700);
        assert_eq!(
            c.published(1, &view("3", "3", false, 1), acked),
            Some(Ended::Converged {
                generation: 2,
                elapsed: Duration::from_millis(700)
            })
        );
        assert_eq!(c.converging(), None);
    }

    #[test]
    fn a_nack_is_not_counted() {
        let t0 = Instant::now();
        let mut c = connected(t0);
        c.generated(2, |_| Some(t0));
        c.published(0, &view("2", "1", false, 2), t0);
        c.built(t0);
        assert_eq!(
            c.published(0, &view("2", "1", true, 2), t0),
            Some(Ended::Dropped { generation: 2 })
        );
        // A later acknowledgement does not count it either.
        assert_eq!(c.published(0, &view("2", "2", false, 2), t0), None);
    }

    #[test]
    fn merged_generations_keep_the_earliest_change() {
        let t0 = Instant::now();
        let mut c = connected(t0);
        let first = t0 + Duration::from_secs(1);
        c.generated(2, |g| (g == 2).then_some(first));
        c.published(0, &view("2", "1", false, 2), first);
        // Generations 3 and 4 arrive before the proxy acknowledged 2.
        assert_eq!(
            c.generated(4, |_| Some(first + Duration::from_secs(9))),
            Some(Ended::Dropped { generation: 2 })
        );
        c.published(0, &view("4", "1", false, 3), first);
        c.built(first);
        let end = first + Duration::from_secs(2);
        assert_eq!(
            c.published(0, &view("4", "4", false, 3), end),
            Some(Ended::Converged {
                generation: 4,
                elapsed: Duration::from_secs(2)
            })
        );
    }

    #[test]
    fn a_change_that_sends_nothing_is_not_counted() {
        let t0 = Instant::now();
        let mut c = connected(t0);
        c.generated(2, |_| Some(t0));
        assert_eq!(c.built(t0), Some(Ended::Dropped { generation: 2 }));
    }

    #[test]
    fn a_skipped_generation_counts_from_its_own_change() {
        let t0 = Instant::now();
        let mut c = connected(t0);
        // The stream goes from 1 to 3: the change behind 2 is the one it waited for.
        c.generated(3, |g| Some(t0 + Duration::from_secs(g)));
        c.published(0, &view("2", "1", false, 2), t0);
        c.built(t0);
        let end = t0 + Duration::from_secs(5);
        assert_eq!(
            c.published(0, &view("2", "2", false, 2), end),
            Some(Ended::Converged {
                generation: 3,
                elapsed: Duration::from_secs(3)
            })
        );
    }

    #[test]
    fn a_stream_gone_drops_its_measurement() {
        let t0 = Instant::now();
        let mut c = connected(t0);
        c.generated(2, |_| Some(t0));
        assert_eq!(c.gone(), Some(Ended::Dropped { generation: 2 }));
        assert_eq!(c.gone(), None);
    }
}
