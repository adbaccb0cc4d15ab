//! The seam between the xDS server and whoever authenticates callers on the secure port.
//! The server knows nothing of tokens or certificates: it hands a stream's request
//! metadata to a `CallerAuth`, refuses the stream (UNAUTHENTICATED) when that fails, and
//! otherwise serves the secrets the caller's watch holds, pushing them again whenever the
//! watch changes (a renewed certificate).

use std::sync::Arc;

use futures::future::BoxFuture;
use tokio::sync::watch;
use tonic::codegen::http::HeaderMap;
use tonic::Status;

use crate::envoy::resource::ResourceMap;

/// An authenticated caller of the secure port.
pub struct Caller {
    /// Who it is (its SPIFFE id): for logs, and the identity the generator is told of
    /// (`ProxyContext`). Never a secret.
    pub name: String,
    /// The secrets that belong to this caller, by name; updated when they are renewed.
    pub secrets: watch::Receiver<Arc<ResourceMap>>,
}

/// Authenticates the caller of a stream from its request metadata.
pub trait CallerAuth: Send + Sync + 'static {
    fn authenticate<'a>(&'a self, metadata: &'a HeaderMap)
        -> BoxFuture<'a, Result<Caller, Status>>;
}
