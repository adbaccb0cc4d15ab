//! The ADS gRPC service (SotW and Delta): options, admission of new streams (loaded
//! configuration, rate limit) and the tonic server. The gRPC service itself is in
//! `service`; each accepted stream runs in its own task (`stream::run`).

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tonic::Status;
use tracing::warn;

use super::generator::{ConfigGenerator, GenerationWatch};
use super::push::TokenBucket;
pub use super::service::AdsService;
use super::status::XdsStatus;

#[derive(Debug, Clone)]
pub struct XdsOptions {
    /// Streams regenerating their configuration at the same time.
    pub max_concurrent_pushes: usize,
    /// New streams accepted per second (0 disables the limit) and the burst allowed.
    pub new_stream_rate: f64,
    pub new_stream_burst: u32,
    /// How long a new stream may wait for the rate limit before it is refused.
    pub new_stream_max_wait: Duration,
    /// A stream is closed (gracefully, so the proxy reconnects, possibly to another
    /// replica) after this age, stretched by up to `max_connection_age_jitter` (a fraction).
    pub max_connection_age: Option<Duration>,
    pub max_connection_age_jitter: f64,
    /// gRPC message size limit, both ways (tonic's default of 4 MiB is too small for
    /// large meshes).
    pub max_message_size: usize,
    pub http2_keepalive_interval: Duration,
    pub http2_keepalive_timeout: Duration,
    /// Serve secrets on streams whose peer is not authenticated. Off by default: private
    /// keys only go to a verified workload over an encrypted stream, and the server does
    /// not authenticate peers yet, so secrets are withheld. Tests turn it on.
    pub allow_unauthenticated_secrets: bool,
}

impl Default for XdsOptions {
    fn default() -> Self {
        XdsOptions {
            max_concurrent_pushes: 100,
            new_stream_rate: 100.0,
            new_stream_burst: 100,
            new_stream_max_wait: Duration::from_secs(1),
            max_connection_age: Some(Duration::from_secs(30 * 60)),
            max_connection_age_jitter: 0.1,
            max_message_size: 256 * 1024 * 1024,
            http2_keepalive_interval: Duration::from_secs(30),
            http2_keepalive_timeout: Duration::from_secs(10),
            allow_unauthenticated_secrets: false,
        }
    }
}

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

pub struct XdsServer {
    shared: Arc<Shared>,
}

impl XdsServer {
    pub fn new(
        generator: Arc<dyn ConfigGenerator>,
        generations: GenerationWatch,
        options: XdsOptions,
    ) -> Self {
        let shared = Shared {
            generator,
            generations,
            push_permits: Semaphore::new(options.max_concurrent_pushes.max(1)),
            new_streams: TokenBucket::new(options.new_stream_rate, options.new_stream_burst),
            options,
            status: XdsStatus::default(),
            next_stream_id: AtomicU64::new(1),
        };
        XdsServer {
            shared: Arc::new(shared),
        }
    }

    pub fn status(&self) -> XdsStatus {
        self.shared.status.clone()
    }

    /// The ADS service with its message limits, to mount on any tonic server.
    pub fn into_service(self) -> AdsService {
        AdsService::new(self.shared)
    }

    /// Serves ADS on `listener` until the server fails.
    pub async fn serve(self, listener: tokio::net::TcpListener) -> anyhow::Result<()> {
        let options = self.shared.options.clone();
        let incoming = tonic::transport::server::TcpIncoming::from(listener)
            .with_nodelay(Some(true))
            .with_keepalive(Some(Duration::from_secs(60)));
        let mut builder = tonic::transport::Server::builder()
            .http2_keepalive_interval(Some(options.http2_keepalive_interval))
            .http2_keepalive_timeout(Some(options.http2_keepalive_timeout));
        if let Some(age) = options.max_connection_age {
            // The connection is told to go away (GOAWAY) at `age`, so the proxy's next
            // stream opens a new connection, maybe to another replica; its current stream
            // is ended gracefully a jittered moment later (see `Conn`), within the grace.
            let jitter = age.mul_f64(options.max_connection_age_jitter.clamp(0.0, 1.0));
            builder = builder
                .max_connection_age(age)
                .max_connection_age_grace(jitter + Duration::from_secs(10));
        }
        builder
            .add_service(self.into_service())
            .serve_with_incoming(incoming)
            .await?;
        Ok(())
    }
}
