//! State shared by the ADS service and every stream task: the generator and generation
//! watch, options, status registry, push permits, and the admission of new streams (refused
//! before the first configuration load, rate-limited after).

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use tokio::sync::Semaphore;
use tonic::Status;
use tracing::warn;

use super::admission::TokenBucket;
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
    new_streams: TokenBucket,
    pub(crate) next_stream_id: AtomicU64,
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
            new_streams: TokenBucket::new(options.new_stream_rate, options.new_stream_burst),
            options,
            status: XdsStatus::default(),
            next_stream_id: AtomicU64::new(1),
        }
    }

    /// Refuses a new stream before the first configuration load, or when streams arrive
    /// faster than the rate limit allows.
    pub(crate) async fn admit(&self) -> Result<(), Status> {
        use std::sync::atomic::Ordering::Relaxed;
        if *self.generations.borrow() == 0 {
            self.status
                .metrics()
                .refused_not_ready
                .fetch_add(1, Relaxed);
            return Err(Status::unavailable("configuration not loaded yet"));
        }
        if !self
            .new_streams
            .acquire(self.options.new_stream_max_wait)
            .await
        {
            self.status
                .metrics()
                .refused_rate_limited
                .fetch_add(1, Relaxed);
            warn!("refusing an xds stream: too many new streams");
            return Err(Status::resource_exhausted(
                "too many new xds streams, retry",
            ));
        }
        Ok(())
    }
}
