//! The mesh config from the cluster: ConfigMap `istio` in istiod's namespace, watched alone
//! (a field selector on its name, not every ConfigMap). Its first list gates the first
//! publish like a kind's. A bad mesh config is reported as a problem on the ConfigMap and
//! the last valid one stays in force; a ConfigMap absent or deleted means the flags alone.

use std::path::PathBuf;

use kube::api::{Api, ApiResource, DynamicObject};
use kube::runtime::watcher::{self, Event};
use tracing::warn;

use crate::problem::{ObjectRef, Origin, Problem};
use crate::source::mesh_config::{MeshConfig, CONFIG_MAP, MESH_KEY};

/// The watch of the one ConfigMap, in `namespace`.
pub fn api(client: kube::Client, namespace: &str) -> (Api<DynamicObject>, watcher::Config) {
    let resource = ApiResource {
        group: String::new(),
        version: "v1".into(),
        api_version: "v1".into(),
        kind: "ConfigMap".into(),
        plural: "configmaps".into(),
    };
    let api = Api::namespaced_with(client, namespace, &resource);
    let config = watcher::Config::default().fields(&format!("metadata.name={CONFIG_MAP}"));
    (api, config)
}

pub struct MeshStore {
    namespace: String,
    /// The last valid config (the default until one is read).
    config: MeshConfig,
    problem: Option<Problem>,
    /// The ConfigMap of a list in progress, if the list has it.
    listing: Option<Option<DynamicObject>>,
    listed: bool,
}

impl MeshStore {
    pub fn new(namespace: &str) -> MeshStore {
        MeshStore {
            namespace: namespace.to_string(),
            config: MeshConfig::default(),
            problem: None,
            listing: None,
            listed: false,
        }
    }

    pub fn listed(&self) -> bool {
        self.listed
    }

    pub fn config(&self) -> &MeshConfig {
        &self.config
    }

    pub fn problem(&self) -> Option<&Problem> {
        self.problem.as_ref()
    }

    /// Takes one watcher event; returns whether the config or its problem changed (the first
    /// completed list always counts).
    pub fn apply(&mut self, event: Event<DynamicObject>) -> bool {
        let before = (self.config.clone(), self.problem.clone());
        match event {
            Event::Init => {
                self.listing = Some(None);
                return false;
            }
            Event::InitApply(object) => {
                self.listing = Some(Some(object));
                return false;
            }
            Event::InitDone => {
                let object = self.listing.take().flatten();
                self.read(object.as_ref());
                let first = !std::mem::replace(&mut self.listed, true);
                return first || before != (self.config.clone(), self.problem.clone());
            }
            Event::Apply(object) => self.read(Some(&object)),
            Event::Delete(_) => self.read(None),
        }
        before != (self.config.clone(), self.problem.clone())
    }

    fn read(&mut self, object: Option<&DynamicObject>) {
        let text = object
            .and_then(|o| o.data.get("data"))
            .and_then(|d| d.get(MESH_KEY))
            .and_then(|m| m.as_str())
            .unwrap_or_default();
        match MeshConfig::parse(text) {
            Ok(config) => {
                self.config = config;
                self.problem = None;
            }
            Err(error) => {
                let problem = Problem {
                    origin: Origin {
                        file: PathBuf::from(format!(
                            "kubernetes:ConfigMap/{}/{CONFIG_MAP}",
                            self.namespace
                        )),
                        ..Origin::default()
                    },
                    object: Some(ObjectRef {
                        kind: "ConfigMap".into(),
                        namespace: Some(self.namespace.clone()),
                        name: CONFIG_MAP.into(),
                    }),
                    field: Some(match error.field {
                        Some(field) => format!("data.{MESH_KEY}.{field}"),
                        None => format!("data.{MESH_KEY}"),
                    }),
                    reason: format!(
                        "{}; the last valid mesh config stays in force",
                        error.reason
                    ),
                };
                warn!(%problem, "rejecting the mesh config");
                self.problem = Some(problem);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::traffic::OutboundPolicy;

    fn config_map(mesh: &str) -> DynamicObject {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "istio", "namespace": "istio-system"},
            "data": {"mesh": mesh},
        }))
        .unwrap()
    }

    #[test]
    fn reads_lists_updates_and_deletes_and_keeps_the_last_valid_config() {
        let mut store = MeshStore::new("istio-system");
        store.apply(Event::Init);
        assert!(
            store.apply(Event::InitDone),
            "the first list counts, even empty"
        );
        assert_eq!(store.config(), &MeshConfig::default());
        let registry_only = "outboundTrafficPolicy: {mode: REGISTRY_ONLY}";
        assert!(store.apply(Event::Apply(config_map(registry_only))));
        assert_eq!(
            store.config().outbound_traffic_policy,
            Some(OutboundPolicy::RegistryOnly)
        );
        assert!(!store.apply(Event::Apply(config_map(registry_only))));
        assert!(store.apply(Event::Apply(config_map(
            "outboundTrafficPolicy: {mode: NO}"
        ))));
        assert_eq!(
            store.config().outbound_traffic_policy,
            Some(OutboundPolicy::RegistryOnly)
        );
        let problem = store.problem().unwrap().to_string();
        assert!(
            problem.contains("ConfigMap istio-system/istio")
                && problem.contains("data.mesh.outboundTrafficPolicy.mode"),
            "{problem}"
        );
        assert!(store.apply(Event::Delete(config_map(""))));
        assert_eq!(store.config(), &MeshConfig::default());
        assert!(store.problem().is_none());
    }
}
