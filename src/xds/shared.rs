//! State shared by the ADS service and every stream task: the generator and generation
//! watch, options, status registry, push permits, the fan-out round, the drain signal, and
//! the admission of new streams (refused before the first configuration load and while
//! draining, admitted by load otherwise: see `admission`).

use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use tokio::sync::watch;
use tonic::Status;

use super::admission::{Admission, Ticket};
use super::fanout::FanOut;
use super::generator::{ConfigGenerator, GenerationWatch};
use super::options::XdsOptions;
use super::push_permits::PushPermits;
use super::refusals::RefusalLog;
use super::status::XdsStatus;

/// State shared by the service and every stream task.
pub(crate) struct Shared {
    pub(crate) generator: Arc<dyn ConfigGenerator>,
    pub(crate) generations: GenerationWatch,
    pub(crate) options: XdsOptions,
    pub(crate) status: XdsStatus,
    pub(crate) push_permits: PushPermits,
    pub(crate) fanout: FanOut,
    admission: Admission,
    refusals: Arc<RefusalLog>,
    pub(crate) next_stream_id: AtomicU64,
    /// Set once on shutdown: streams end gracefully and new ones are refused.
    pub(crate) draining: watch::Sender<bool>,
}

impl Shared {
    pub(crate) fn new(
        generator: Arc<dyn ConfigGenerator>,
        generations: GenerationWatch,
        options: XdsOptions,
    ) -> Self {
        Shared {
            generator,
            generations,
            push_permits: PushPermits::new(options.max_concurrent_pushes),
            fanout: FanOut::default(),
            admission: Admission::new(
                options.new_streams_in_progress,
                options.new_stream_queue,
                options.new_stream_peer_share,
            ),
            refusals: Arc::default(),
            options,
            status: XdsStatus::default(),
            next_stream_id: AtomicU64::new(1),
            draining: watch::Sender::new(false),
        }
    }

    /// Refuses a new stream before the first configuration load or while shutting down;
    /// otherwise admits it when the server has room (see `admission`), or refuses it when
    /// the admission queue is full. The ticket is held until the stream's first
    /// configuration is queued.
    pub(crate) async fn admit(&self, peer: Option<SocketAddr>) -> Result<Ticket, Status> {
        use std::sync::atomic::Ordering::Relaxed;
        if *self.draining.borrow() {
            return Err(Status::unavailable("server shutting down"));
        }
        if *self.generations.borrow() == 0 {
            self.status
                .metrics()
                .refused_not_ready
                .fetch_add(1, Relaxed);
            return Err(Status::unavailable("configuration not loaded yet"));
        }
        let max_wait = self.options.new_stream_max_wait;
        match self.admission.admit(peer.map(|p| p.ip()), max_wait).await {
            Ok(ticket) => Ok(ticket),
            Err(refusal) => {
                self.status
                    .metrics()
                    .refused_rate_limited
                    .fetch_add(1, Relaxed);
                // One line per interval: a reconnect storm must not flood the log.
                self.refusals.refused(peer, refusal.reason());
                Err(Status::resource_exhausted(format!(
                    "{}, retry later",
                    refusal.reason()
                )))
            }
        }
    }
}
