//! The ADS gRPC service, written by hand in place of the generated one so that responses
//! go out through our own HTTP body (`body`), which sends the shared resource bytes
//! without copying them into a per-stream buffer. It routes the two ADS methods to
//! `stream::run` with the SotW or Delta protocol state, with the server's message size
//! limits both ways.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::sync::mpsc;
use tonic::codegen::{http, BoxFuture, Service, StdError};
use tonic::metadata::MetadataValue;
use tonic::server::NamedService;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
use tonic::Status;

use super::body::AdsBody;
use super::caller::CallerAuth;
use super::requests::Requests;
use super::shared::Shared;
use super::wire::WireMessage;
use super::{delta, sotw, stream};

const ENCODING_HEADER: &str = "grpc-encoding";
const ACCEPT_ENCODING_HEADER: &str = "grpc-accept-encoding";
const SERVICE_NAME: &str = "envoy.service.discovery.v3.AggregatedDiscoveryService";
const SOTW_PATH: &str =
    "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources";
const DELTA_PATH: &str =
    "/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources";

/// Responses waiting for the transport: kept tiny, so that a response is built from the
/// latest state only when the stream can take it (latest wins). Two slots keep the depth
/// tonic's encoder had (one response handed whole to HTTP/2, one more held by hyper, one in
/// a one-slot outbox): our body hands a response to HTTP/2 a chunk at a time, so the one
/// it is sending stays in the body, and both others wait here.
const OUTBOX: usize = 2;

/// The tonic service; build it with `XdsServer::into_service`.
#[derive(Clone)]
pub struct AdsService {
    shared: Arc<Shared>,
    /// On the secure port: every stream is authenticated by it before it is served.
    auth: Option<Arc<dyn CallerAuth>>,
}

impl AdsService {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        AdsService { shared, auth: None }
    }

    pub(crate) fn with_auth(mut self, auth: Arc<dyn CallerAuth>) -> Self {
        self.auth = Some(auth);
        self
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }
}

impl NamedService for AdsService {
    const NAME: &'static str = SERVICE_NAME;
}

impl<B> Service<http::Request<B>> for AdsService
where
    B: tonic::codegen::Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let shared = self.shared.clone();
        let auth = self.auth.clone();
        match request.uri().path() {
            SOTW_PATH => Box::pin(serve::<sotw::SotwState, B>(shared, auth, request)),
            DELTA_PATH => Box::pin(serve::<delta::DeltaState, B>(shared, auth, request)),
            _ => Box::pin(async { Ok(unimplemented()) }),
        }
    }
}

/// Runs one ADS call of protocol `P`: requests are decoded by `requests::Requests` and the
/// response body is ours (`body::AdsBody`), so that no stream keeps a buffer the size of
/// its largest message. Headers, trailers and refusals are the ones tonic's `Grpc` gives.
async fn serve<P, B>(
    shared: Arc<Shared>,
    auth: Option<Arc<dyn CallerAuth>>,
    request: http::Request<B>,
) -> Result<http::Response<tonic::body::Body>, Infallible>
where
    P: stream::StreamProtocol + Send + 'static,
    P::Request: prost::Message + Default,
    P::Response: WireMessage + Unpin,
    B: tonic::codegen::Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    if let Err(status) = check_encoding(request.headers()) {
        return Ok(status.into_http());
    }
    let peer = peer_of(&request);
    // Before anything else: an unauthenticated caller learns nothing, not even whether
    // the configuration is loaded.
    let caller = match &auth {
        None => None,
        Some(auth) => match auth.authenticate(request.headers()).await {
            Ok(caller) => Some(caller),
            Err(status) => {
                tracing::info!(peer = ?peer, reason = status.message(), "refusing an unauthenticated xds stream");
                return Ok(status.into_http());
            }
        },
    };
    let requests = Requests::new(request.into_body(), shared.options.max_request_message_size);
    let admitted = match shared.admit(peer).await {
        Ok(ticket) => ticket,
        Err(status) => return Ok(status.into_http()),
    };
    let limit = shared.options.max_response_message_size;
    let (tx, rx) = mpsc::channel(OUTBOX);
    tokio::spawn(stream::run::<P>(
        shared, peer, caller, requests, tx, admitted,
    ));
    let mut response = http::Response::new(tonic::body::Body::new(AdsBody::new(rx, limit)));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        tonic::metadata::GRPC_CONTENT_TYPE,
    );
    Ok(response)
}

/// The peer's address, over plain TCP or TLS.
fn peer_of<B>(request: &http::Request<B>) -> Option<std::net::SocketAddr> {
    let extensions = request.extensions();
    extensions
        .get::<TcpConnectInfo>()
        .and_then(TcpConnectInfo::remote_addr)
        .or_else(|| {
            extensions
                .get::<TlsConnectInfo<TcpConnectInfo>>()
                .and_then(|info| info.get_ref().remote_addr())
        })
}

/// Refuses compressed requests as tonic does when no compression is enabled.
fn check_encoding(headers: &http::HeaderMap) -> Result<(), Status> {
    let Some(value) = headers.get(ENCODING_HEADER) else {
        return Ok(());
    };
    if value.as_bytes() == b"identity" {
        return Ok(());
    }
    let encoding = match std::str::from_utf8(value.as_bytes()) {
        Ok(s) => s.to_string(),
        Err(_) => format!("{:?}", value.as_bytes()),
    };
    let mut status = Status::unimplemented(format!(
        "Content is compressed with `{encoding}` which isn't supported"
    ));
    status.metadata_mut().insert(
        ACCEPT_ENCODING_HEADER,
        MetadataValue::from_static("identity"),
    );
    Err(status)
}

/// The answer to a path this service does not have, as tonic's generated services give.
fn unimplemented() -> http::Response<tonic::body::Body> {
    let mut response = http::Response::new(tonic::body::Body::default());
    let headers = response.headers_mut();
    headers.insert(
        Status::GRPC_STATUS,
        (tonic::Code::Unimplemented as i32).into(),
    );
    headers.insert(
        http::header::CONTENT_TYPE,
        tonic::metadata::GRPC_CONTENT_TYPE,
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compressed_requests_are_refused_as_tonic_does() {
        let mut headers = http::HeaderMap::new();
        assert!(check_encoding(&headers).is_ok());
        headers.insert(ENCODING_HEADER, "identity".parse().unwrap());
        assert!(check_encoding(&headers).is_ok());
        headers.insert(ENCODING_HEADER, "gzip".parse().unwrap());
        let status = check_encoding(&headers).unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unimplemented);
        assert_eq!(
            status.message(),
            "Content is compressed with `gzip` which isn't supported"
        );
        assert_eq!(
            status.metadata().get(ACCEPT_ENCODING_HEADER).unwrap(),
            "identity"
        );
    }
}
