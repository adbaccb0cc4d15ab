//! The configuration generator the xDS server asks: the current translator applied to the
//! proxy a node describes.

use std::sync::{Arc, RwLock};

use envoy_types::pb::envoy::config::core::v3::Node;

use crate::translate::node::proxy_from_node;
use crate::translate::Translator;
use crate::xds::{ConfigGenerator, ProxyResources};

#[derive(Default)]
pub struct MeshGenerator {
    current: RwLock<Option<(u64, Arc<Translator>)>>,
}

impl MeshGenerator {
    /// Makes `translator` the one every following `generate` uses.
    pub fn install(&self, translator: Translator, generation: u64) {
        *self.current.write().expect("generator lock") = Some((generation, Arc::new(translator)));
    }

    /// The translator in use and its generation, if any has been installed.
    pub fn current(&self) -> Option<(u64, Arc<Translator>)> {
        self.current.read().expect("generator lock").clone()
    }
}

impl ConfigGenerator for MeshGenerator {
    fn generate(&self, node: &Node) -> Result<ProxyResources, String> {
        let proxy = proxy_from_node(node).map_err(|e| e.to_string())?;
        let (_, translator) = self
            .current()
            .ok_or_else(|| "configuration not loaded yet".to_string())?;
        Ok(translator.proxy_resources(&proxy))
    }
}
