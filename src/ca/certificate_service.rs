//! Istio's CA API, `istio.v1.auth.IstioCertificateService/CreateCertificate`, on the secure
//! port: a PEM CSR in, the chain out (leaf first, root last). The caller is authenticated
//! as xDS callers are (bearer token); the SAN is the caller's SPIFFE identity whatever the
//! CSR asks for, and the requested lifetime is capped at `--workload-cert-ttl`. The messages
//! are hand-written prost structs matching proto/istio/v1/auth/ca.proto.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use envoy_types::pb::google::protobuf::Struct;
use tonic::codegen::{http, BoxFuture, Service, StdError};
use tonic::server::NamedService;
use tonic::{Request, Response, Status};
use tracing::info;

use super::sds::bearer_token;
use super::token::Authenticator;
use super::LiveAuthority;

pub const SERVICE_NAME: &str = "istio.v1.auth.IstioCertificateService";
const CREATE_PATH: &str = "/istio.v1.auth.IstioCertificateService/CreateCertificate";

#[derive(Clone, PartialEq, prost::Message)]
pub struct IstioCertificateRequest {
    #[prost(string, tag = "1")]
    pub csr: String,
    #[prost(int64, tag = "3")]
    pub validity_duration: i64,
    #[prost(message, optional, tag = "4")]
    pub metadata: Option<Struct>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct IstioCertificateResponse {
    #[prost(string, repeated, tag = "1")]
    pub cert_chain: Vec<String>,
}

/// The tonic service; mount it beside ADS on the secure port.
#[derive(Clone)]
pub struct CertificateService {
    inner: Arc<Inner>,
}

struct Inner {
    authority: LiveAuthority,
    authenticator: Arc<dyn Authenticator>,
    trust_domain: String,
    max_ttl: Duration,
}

impl CertificateService {
    pub fn new(
        authority: impl Into<LiveAuthority>,
        authenticator: Arc<dyn Authenticator>,
        trust_domain: String,
        max_ttl: Duration,
    ) -> Self {
        CertificateService {
            inner: Arc::new(Inner {
                authority: authority.into(),
                authenticator,
                trust_domain,
                max_ttl,
            }),
        }
    }

    /// Authenticates the caller and signs its CSR for its own identity.
    pub async fn create_certificate(
        &self,
        request: Request<IstioCertificateRequest>,
    ) -> Result<Response<IstioCertificateResponse>, Status> {
        let headers = request.metadata().clone().into_headers();
        let identity = self
            .inner
            .authenticator
            .authenticate(bearer_token(&headers))
            .await
            .map_err(|e| Status::unauthenticated(format!("authentication failed: {e}")))?;
        let request = request.into_inner();
        let requested = u64::try_from(request.validity_duration).unwrap_or(0);
        let ttl = if requested == 0 {
            self.inner.max_ttl
        } else {
            Duration::from_secs(requested).min(self.inner.max_ttl)
        };
        let csr = rcgen::CertificateSigningRequestParams::from_pem(&request.csr).map_err(|e| {
            Status::invalid_argument(format!("csr: not a valid PEM PKCS#10 request: {e}"))
        })?;
        let uri = identity.spiffe(&self.inner.trust_domain);
        let authority = self.inner.authority.current();
        let (u, key) = (uri.clone(), csr.public_key);
        let issued = tokio::task::spawn_blocking(move || authority.sign_key(&u, &key, ttl))
            .await
            .map_err(|e| Status::internal(format!("signing: {e}")))?
            .map_err(|e| Status::internal(e.to_string()))?;
        info!(identity = %uri, ttl = ?ttl, "issued a certificate for a CSR");
        let cert_chain = super::certs_in(&issued.chain_pem)
            .iter()
            .map(|der| super::pem::pem_of(der))
            .collect();
        Ok(Response::new(IstioCertificateResponse { cert_chain }))
    }
}

impl NamedService for CertificateService {
    const NAME: &'static str = SERVICE_NAME;
}

impl<B> Service<http::Request<B>> for CertificateService
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
        if request.uri().path() != CREATE_PATH {
            return Box::pin(async { Ok(Status::unimplemented("no such method").into_http()) });
        }
        let service = self.clone();
        Box::pin(async move {
            let mut grpc = tonic::server::Grpc::new(tonic_prost::ProstCodec::default());
            Ok(grpc.unary(Unary(service), request).await)
        })
    }
}

struct Unary(CertificateService);

impl tonic::server::UnaryService<IstioCertificateRequest> for Unary {
    type Response = IstioCertificateResponse;
    type Future = BoxFuture<Response<IstioCertificateResponse>, Status>;

    fn call(&mut self, request: Request<IstioCertificateRequest>) -> Self::Future {
        let service = self.0.clone();
        Box::pin(async move { service.create_certificate(request).await })
    }
}
