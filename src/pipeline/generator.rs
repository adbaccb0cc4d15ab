//! The configuration generator the xDS server asks: the current translator applied to the
//! proxy a node describes. Also remembers what the admin views report about the input.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Instant;

use envoy_types::pb::envoy::config::core::v3::Node;

use crate::envoy::ProxyResources;
use crate::translate::node::proxy_from_node;
use crate::translate::Translator;
use crate::xds::{ConfigGenerator, ProxyContext};

#[derive(Default)]
pub struct MeshGenerator {
    current: RwLock<Current>,
    /// When the input change behind each recent generation was seen, oldest first.
    seen: Mutex<VecDeque<(u64, Instant)>>,
    identity_warnings: super::identity_warnings::IdentityWarnings,
}

/// Generations whose change times are kept: a proxy further behind counts from the oldest.
const SEEN_KEPT: usize = 64;

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

    /// Records that the input change behind `generation` was seen `at`.
    pub fn seen(&self, generation: u64, at: Instant) {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if seen.len() == SEEN_KEPT {
            seen.pop_front();
        }
        seen.push_back((generation, at));
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

    fn generate_cached(
        &self,
        node: &Node,
        context: &ProxyContext,
    ) -> Option<Result<ProxyResources, String>> {
        crate::translate::probe::probe(|| self.generate_for(node, context))
    }

    fn changed_at(&self, generation: u64) -> Option<Instant> {
        let seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        // Generations only grow: the first one at or after `generation` is the earliest
        // change the caller has not received.
        seen.iter()
            .find(|(g, _)| *g >= generation)
            .or(seen.back())
            .map(|(_, at)| *at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn change_times_are_kept_for_recent_generations() {
        let g = MeshGenerator::default();
        assert_eq!(g.changed_at(1), None);
        let t0 = Instant::now();
        for i in 1..=100u64 {
            g.seen(i, t0 + Duration::from_secs(i));
        }
        assert_eq!(g.changed_at(100), Some(t0 + Duration::from_secs(100)));
        assert_eq!(g.changed_at(60), Some(t0 + Duration::from_secs(60)));
        // Older than kept: the oldest kept, a lower bound of the delay.
        assert_eq!(g.changed_at(2), Some(t0 + Duration::from_secs(37)));
    }
}
