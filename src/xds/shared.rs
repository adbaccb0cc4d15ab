//! State shared by the ADS service and every stream task: the generator and generation
//! watch, options, status registry, push permits, the drain signal, and the admission of
//! new streams (refused before the first configuration load and while draining, fairly
//! rate-limited otherwise).

use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use tokio::sync::{watch, Semaphore};
use tonic::Status;
use tracing::warn;

use super::admission::{NewStreams, Refusal};
use super::generator::{ConfigGenerator, GenerationWatch};
use super::options::XdsOptions;
use super::status::XdsStatus;

/// State shared by the service and every stream task.
pub(crate) struct Shared {
    pub(crate) generator: Arc<dyn ConfigGenerator>,
    pub(crate) generations: GenerationWatch,
    pub(crate) options: XdsOptions,
    pub(crate) status: XdsStatus,
    pub(crate) push_permits: Semaphore,
    new_streams: NewStreams,
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
            push_permits: Semaphore::new(options.max_concurrent_pushes.max(1)),
            new_streams: NewStreams::new(
                options.new_stream_rate,
                options.new_stream_burst,
                options.new_stream_peer_share,
            ),
            options,
            status: XdsStatus::default(),
            next_stream_id: AtomicU64::new(1),
            draining: watch::Sender::new(false),
        }
    }

    /// Refuses a new stream before the first configuration load, while shutting down, or
    /// when streams arrive faster than the rate limit allows (overall or from `peer`).
    pub(crate) async fn admit(&self, peer: Option<SocketAddr>) -> Result<(), Status> {
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
        if let Err(refusal) = self
            .new_streams
            .acquire(peer.map(|p| p.ip()), max_wait)
            .await
        {
            self.status
                .metrics()
                .refused_rate_limited
                .fetch_add(1, Relaxed);
            let reason = match refusal {
                Refusal::Peer => "this peer opens streams too fast",
                Refusal::Global => "too many new streams",
            };
            // One line per interval: a reconnect storm must not flood the log.
            if let Some(line) = self.new_streams.refusal_log() {
                let peer = peer.map(|p| p.to_string()).unwrap_or_default();
                warn!(%peer, reason, earlier_refusals_not_logged = line.suppressed, "refusing an xds stream");
            }
            return Err(Status::resource_exhausted(format!("{reason}, retry later")));
        }
        Ok(())
    }
}
