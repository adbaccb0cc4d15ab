//! Translation: pure functions from the mesh model and a proxy to Envoy resources. No I/O,
//! no clocks, deterministic order. Parts that do not depend on the individual proxy are built
//! and encoded once and shared.

pub mod bootstrap;
pub mod node;

use std::sync::Arc;

use crate::mesh::{MeshModel, ProxyId};
use crate::xds::ProxyResources;

/// Translates one generation of the mesh model for any number of proxies.
pub struct Translator {
    model: Arc<MeshModel>,
}

impl Translator {
    pub fn new(model: Arc<MeshModel>) -> Self {
        Translator { model }
    }

    pub fn model(&self) -> &Arc<MeshModel> {
        &self.model
    }

    /// Everything `proxy` should hold.
    pub fn proxy_resources(&self, proxy: &ProxyId) -> ProxyResources {
        let _ = proxy;
        ProxyResources::default()
    }
}
