//! The seam between the xDS server and whatever produces configuration. The server knows
//! nothing of Istio or the mesh: it asks a generator for a proxy's resources whenever the
//! configuration generation changes, and pushes what differs.

use envoy_types::pb::envoy::config::core::v3::Node;

use crate::envoy::resource::ProxyResources;

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
}

/// Sent by the application each time a new configuration generation is in place.
/// Generation 0 means "not loaded yet": the server refuses streams until it moves.
pub type GenerationWatch = tokio::sync::watch::Receiver<u64>;
