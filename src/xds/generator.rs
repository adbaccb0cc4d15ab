//! The seam between the xDS server and whatever produces configuration. The server knows
//! nothing of Istio or the mesh: it asks a generator for a proxy's resources whenever the
//! configuration generation changes, and pushes what differs.

use std::sync::Arc;

use envoy_types::pb::envoy::config::core::v3::Node;

use crate::envoy::resource::ProxyResources;

/// What the server knows of a proxy besides its node: facts of its stream, never claims of
/// the proxy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxyContext {
    /// The identity the stream's caller proved on the secure port (`Caller::name`); `None`
    /// on the plaintext port, whose proxies can hold no workload certificate.
    pub identity: Option<Arc<str>>,
}

/// Produces the full set of resources a proxy should hold in the current generation.
pub trait ConfigGenerator: Send + Sync + 'static {
    /// `Err` carries a message for the proxy (for example an unparseable node id); the
    /// server refuses the stream with it.
    fn generate(&self, node: &Node) -> Result<ProxyResources, String>;

    /// When the input change behind `generation` was first seen (for
    /// `pilot_proxy_convergence_time`); `None` when unknown, then the server counts from
    /// the moment it picked the generation up.
    fn changed_at(&self, generation: u64) -> Option<std::time::Instant> {
        let _ = generation;
        None
    }

    /// `generate` for a proxy whose stream is described by `context`. The server calls this
    /// one; generators whose output does not depend on the stream keep the default.
    fn generate_for(&self, node: &Node, context: &ProxyContext) -> Result<ProxyResources, String> {
        let _ = context;
        self.generate(node)
    }

    /// `generate_for` when it is quick (everything it needs is built already); `None` when
    /// it would have to build, and the server then calls `generate_for` on a blocking
    /// thread. Called on the server's async workers, so it must not block.
    fn generate_cached(
        &self,
        node: &Node,
        context: &ProxyContext,
    ) -> Option<Result<ProxyResources, String>> {
        let _ = (node, context);
        None
    }
}

/// Sent by the application each time a new configuration generation is in place.
/// Generation 0 means "not loaded yet": the server refuses streams until it moves.
pub type GenerationWatch = tokio::sync::watch::Receiver<u64>;
