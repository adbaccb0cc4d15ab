//! The ADS gRPC server (SotW and Delta): the tonic server around the service, and its
//! graceful shutdown (drain). The gRPC
//! service itself is in `service`, its options in `options`, the state every stream shares
//! and the admission of new streams in `shared`; each accepted stream runs in its own task
//! (`stream::run`).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tracing::{info, warn};

use super::caller::CallerAuth;
use super::generator::{ConfigGenerator, GenerationWatch};
pub use super::options::{cores, XdsOptions};
pub use super::service::AdsService;
use super::shared::Shared;
use super::status::XdsStatus;

#[derive(Clone)]
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
        self.serve_until(listener, std::future::pending()).await
    }

    /// Serves ADS on `listener` until `shutdown` resolves, then drains: no new connection
    /// or stream is accepted, every connection is told to go away (HTTP/2 GOAWAY) and every
    /// stream ends with an OK status, spread over the first half of `drain_duration`, so
    /// that proxies reconnect to another replica without a thundering herd. Returns when
    /// every connection has closed, or at `drain_duration` (the rest are dropped).
    pub async fn serve_until(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send,
    ) -> anyhow::Result<()> {
        let incoming = tonic::transport::server::TcpIncoming::from(listener)
            .with_nodelay(Some(true))
            .with_keepalive(Some(Duration::from_secs(60)));
        let service = self.into_service();
        let routes = tonic::service::Routes::new(service.clone());
        serve_incoming(service, routes, incoming, shutdown).await
    }

    /// Serves ADS over TLS on `listener` until `shutdown` resolves, as `serve_until` does,
    /// with every stream authenticated by `auth` and served only its caller's secrets.
    /// `extra` adds other gRPC services to the same port (Istio's CA service).
    pub async fn serve_tls_until(
        self,
        listener: tokio::net::TcpListener,
        tls: Arc<tokio_rustls::rustls::ServerConfig>,
        auth: Arc<dyn CallerAuth>,
        extra: impl FnOnce(tonic::service::Routes) -> tonic::service::Routes,
        shutdown: impl Future<Output = ()> + Send,
    ) -> anyhow::Result<()> {
        let service = AdsService::new(self.shared).with_auth(auth);
        let routes = extra(tonic::service::Routes::new(service.clone()));
        let incoming = super::tls::incoming(listener, tls);
        serve_incoming(service, routes, incoming, shutdown).await
    }
}

/// Serves `routes` (ADS `service` and any other) on the connections of `incoming` until
/// `shutdown`, then drains.
async fn serve_incoming<I, IO, IE>(
    service: AdsService,
    routes: tonic::service::Routes,
    incoming: I,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()>
where
    I: futures::Stream<Item = Result<IO, IE>>,
    IO: tokio::io::AsyncRead
        + tokio::io::AsyncWrite
        + tonic::transport::server::Connected
        + Unpin
        + Send
        + 'static,
    IO::ConnectInfo: Clone + Send + Sync + 'static,
    IE: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let shared = service.shared().clone();
    let options = shared.options.clone();
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
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = builder
        .add_routes(routes)
        .serve_with_incoming_shutdown(incoming, async {
            let _ = stop_rx.await;
        });
    tokio::pin!(server);
    tokio::select! {
        result = &mut server => return Ok(result?),
        () = shutdown => {}
    }
    info!(
        connected = shared.status.connected(),
        drain = ?options.drain_duration,
        "xds server draining: closing streams, accepting none"
    );
    shared.draining.send_replace(true);
    let _ = stop_tx.send(());
    match tokio::time::timeout(options.drain_duration, &mut server).await {
        Ok(result) => {
            info!("xds server drained");
            Ok(result?)
        }
        Err(_) => {
            warn!(
                connected = shared.status.connected(),
                "xds drain duration reached, dropping the remaining connections"
            );
            Ok(())
        }
    }
}
