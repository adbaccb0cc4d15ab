//! The ADS gRPC service, written by hand in place of the generated one so that responses
//! go through our codec (`wire`), which writes the shared resource bytes straight into
//! tonic's output buffer. It routes the two ADS methods to `stream::run` with the SotW or
//! Delta protocol state, with the server's message size limits both ways.

use std::convert::Infallible;
use std::marker::PhantomData;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::codegen::{http, BoxFuture, Service, StdError};
use tonic::server::{Grpc, NamedService, StreamingService};
use tonic::{Request, Response, Status, Streaming};

use super::server::Shared;
use super::wire::{WireCodec, WireMessage};
use super::{delta, sotw, stream};

const SERVICE_NAME: &str = "envoy.service.discovery.v3.AggregatedDiscoveryService";
const SOTW_PATH: &str =
    "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources";
const DELTA_PATH: &str =
    "/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources";

/// Responses waiting for the transport: kept tiny, so that a response is built from the
/// latest state only when the stream can take it (latest wins).
const OUTBOX: usize = 1;

/// The tonic service; build it with `XdsServer::into_service`.
#[derive(Clone)]
pub struct AdsService {
    shared: Arc<Shared>,
}

impl AdsService {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        AdsService { shared }
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
        match request.uri().path() {
            SOTW_PATH => Box::pin(serve::<sotw::SotwState, B>(shared, request)),
            DELTA_PATH => Box::pin(serve::<delta::DeltaState, B>(shared, request)),
            _ => Box::pin(async { Ok(unimplemented()) }),
        }
    }
}

/// Runs one ADS call of protocol `P` through tonic's streaming machinery.
async fn serve<P, B>(
    shared: Arc<Shared>,
    request: http::Request<B>,
) -> Result<http::Response<tonic::body::Body>, Infallible>
where
    P: stream::StreamProtocol + Send + 'static,
    P::Request: prost::Message + Default,
    P::Response: WireMessage,
    B: tonic::codegen::Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    let limit = Some(shared.options.max_message_size);
    let mut grpc = Grpc::new(WireCodec::<P::Response, P::Request>::default())
        .apply_max_message_size_config(limit, limit);
    let method = Method::<P> {
        shared,
        protocol: PhantomData,
    };
    Ok(grpc.streaming(method, request).await)
}

/// One ADS method: admits the stream and runs it in its own task.
struct Method<P> {
    shared: Arc<Shared>,
    protocol: PhantomData<fn() -> P>,
}

impl<P> StreamingService<P::Request> for Method<P>
where
    P: stream::StreamProtocol + Send + 'static,
{
    type Response = P::Response;
    type ResponseStream = ReceiverStream<Result<P::Response, Status>>;
    type Future = BoxFuture<Response<Self::ResponseStream>, Status>;

    fn call(&mut self, request: Request<Streaming<P::Request>>) -> Self::Future {
        let shared = self.shared.clone();
        Box::pin(async move {
            shared.admit().await?;
            let (tx, rx) = mpsc::channel(OUTBOX);
            tokio::spawn(stream::run::<P>(shared, request.into_inner(), tx));
            Ok(Response::new(ReceiverStream::new(rx)))
        })
    }
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
