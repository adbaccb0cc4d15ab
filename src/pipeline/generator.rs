//! The configuration generator the xDS server asks: the current translator applied to the
//! proxy a node describes. Also remembers what the admin views report about the input.

use std::sync::{Arc, RwLock};

use envoy_types::pb::envoy::config::core::v3::Node;

use crate::envoy::ProxyResources;
use crate::translate::node::proxy_from_node;
use crate::translate::Translator;
use crate::xds::{ConfigGenerator, ProxyContext};

#[derive(Default)]
pub struct MeshGenerator {
    current: RwLock<Current>,
    identity_warnings: super::identity_warnings::IdentityWarnings,
}

#[derive(Default)]
struct Current {
    translator: Option<(u64, Arc<Translator>)>,
    problems: Arc<Vec<String>>,
}

/// A summary of the configuration in use, for metrics and debug views.
#[derive(Debug, Clone, Default)]
pub struct GeneratorStatus {
    pub generation: u64,
    pub services: usize,
    pub problem_messages: Arc<Vec<String>>,
}

impl MeshGenerator {
    /// Makes `translator` the one every following `generate` uses; `problems` are the
    /// input problems of this generation, kept for the debug views.
    pub fn install(&self, translator: Translator, generation: u64, problems: Vec<String>) {
        let mut current = self.current.write().expect("generator lock");
        current.translator = Some((generation, Arc::new(translator)));
        current.problems = Arc::new(problems);
    }

    /// The translator in use and its generation, if any has been installed.
    pub fn current(&self) -> Option<(u64, Arc<Translator>)> {
        self.current
            .read()
            .expect("generator lock")
            .translator
            .clone()
    }

    pub fn status(&self) -> GeneratorStatus {
        let current = self.current.read().expect("generator lock");
        let (generation, services) = current
            .translator
            .as_ref()
            .map(|(g, t)| (*g, t.model().services.len()))
            .unwrap_or_default();
        GeneratorStatus {
            generation,
            services,
            problem_messages: current.problems.clone(),
        }
    }
}

impl ConfigGenerator for MeshGenerator {
    fn generate(&self, node: &Node) -> Result<ProxyResources, String> {
        self.generate_for(node, &ProxyContext::default())
    }

    fn generate_for(&self, node: &Node, context: &ProxyContext) -> Result<ProxyResources, String> {
        let mut proxy = proxy_from_node(node).map_err(|e| e.to_string())?;
        proxy.identity = context.identity.as_deref().map(str::to_string);
        let (_, translator) = self
            .current()
            .ok_or_else(|| "configuration not loaded yet".to_string())?;
        self.identity_warnings.check(&translator, &proxy);
        Ok(translator.proxy_resources(&proxy))
    }
}
