//! The ADS gRPC server (SotW and Delta): the tonic server around the service. The gRPC
//! service itself is in `service`, its options in `options`, the state every stream shares
//! and the admission of new streams in `shared`; each accepted stream runs in its own task
//! (`stream::run`).

use std::sync::Arc;
use std::time::Duration;

use super::generator::{ConfigGenerator, GenerationWatch};
pub use super::options::XdsOptions;
pub use super::service::AdsService;
use super::shared::Shared;
use super::status::XdsStatus;

pub struct XdsServer {
    shared: Arc<Shared>,
}

impl XdsServer {
    pub fn new(
        generator: Arc<dyn ConfigGenerator>,
        generations: GenerationWatch,
        options: XdsOptions,
    ) -> Self {
        let shared = Shared::new(generator, generations, options);
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
