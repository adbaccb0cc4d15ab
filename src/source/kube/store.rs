//! One kind's objects as the cluster last showed them, decoded through the registry's decode
//! function as the file source decodes them. An object that does not decode is kept as a
//! problem in its place (the model builder keeps its last valid version), so one bad custom
//! resource is rejected alone.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use kube::api::DynamicObject;
use kube::runtime::watcher::Event;
use serde_json::Value;
use tracing::warn;

use crate::problem::{ObjectRef, Origin, Problem};
use crate::source::kinds::{KindSpec, Source};
use crate::source::{InputSet, SourceObject};

/// `(namespace, name)`; the namespace is empty for cluster-scoped kinds.
type Key = (String, String);

/// An object as decoded, or why it could not be.
type Entry = Result<SourceObject, Problem>;

pub struct KindStore {
    spec: &'static KindSpec,
    /// The `apiVersion` the server serves this kind at.
    api_version: String,
    objects: BTreeMap<Key, Entry>,
    /// Objects of a list in progress (between `Init` and `InitDone`); they replace
    /// `objects` at once when it completes, so a relist never shows a half store.
    listing: Option<BTreeMap<Key, Entry>>,
    /// Set once the first list completed.
    listed: bool,
}

impl KindStore {
    pub fn new(spec: &'static KindSpec, api_version: String) -> KindStore {
        KindStore {
            spec,
            api_version,
            objects: BTreeMap::new(),
            listing: None,
            listed: false,
        }
    }

    pub fn kind(&self) -> &'static str {
        self.spec.kind
    }

    pub fn listed(&self) -> bool {
        self.listed
    }

    /// Takes one watcher event; returns whether what the store shows changed (the first
    /// completed list always counts as a change).
    pub fn apply(&mut self, event: Event<DynamicObject>) -> bool {
        match event {
            Event::Init => {
                self.listing = Some(BTreeMap::new());
                false
            }
            Event::InitApply(object) => {
                let (key, entry) = self.decode(object);
                self.listing.get_or_insert_default().insert(key, entry);
                false
            }
            Event::InitDone => {
                let listed = self.listing.take().unwrap_or_default();
                let changed = !self.listed || listed != self.objects;
                self.objects = listed;
                self.listed = true;
                changed
            }
            Event::Apply(object) => {
                let (key, entry) = self.decode(object);
                self.objects.insert(key, entry.clone()) != Some(entry)
            }
            Event::Delete(object) => {
                let key = key_of(&object);
                self.objects.remove(&key).is_some()
            }
        }
    }

    /// Adds this store's objects and problems to `set`.
    pub fn add_to(&self, set: &mut InputSet) {
        for entry in self.objects.values() {
            match entry {
                Ok(object) => set.objects.push(object.clone()),
                Err(problem) => set.problems.push(problem.clone()),
            }
        }
    }

    fn decode(&self, mut object: DynamicObject) -> (Key, Entry) {
        super::strip::strip(self.spec.kind, &mut object);
        let key = key_of(&object);
        let origin = Origin {
            file: PathBuf::from(match key.0.as_str() {
                "" => format!("kubernetes:{}/{}", self.spec.kind, key.1),
                namespace => format!("kubernetes:{}/{namespace}/{}", self.spec.kind, key.1),
            }),
            ..Origin::default()
        };
        let mut value = match serde_json::to_value(&object) {
            Ok(value) => value,
            Err(error) => {
                return (
                    key.clone(),
                    Err(self.problem(origin, &key, None, error.to_string())),
                );
            }
        };
        // List items may come without their type; the decoders expect the full object.
        if let Some(map) = value.as_object_mut() {
            map.insert("apiVersion".into(), Value::String(self.api_version.clone()));
            map.insert("kind".into(), Value::String(self.spec.kind.into()));
        }
        let entry = match (self.spec.decode)(Source::Value(&value)) {
            Ok(decoded) => Ok(SourceObject {
                origin,
                object: Arc::new(decoded),
            }),
            Err(error) => {
                let problem = self.problem(origin, &key, error.field, error.reason);
                warn!(problem = %problem, "rejecting an object from the API server");
                Err(problem)
            }
        };
        (key, entry)
    }

    fn problem(&self, origin: Origin, key: &Key, field: Option<String>, reason: String) -> Problem {
        Problem {
            origin,
            object: Some(ObjectRef {
                kind: self.spec.kind.to_string(),
                namespace: self.spec.namespaced.then(|| key.0.clone()),
                name: key.1.clone(),
            }),
            field,
            reason,
        }
    }
}

fn key_of(object: &DynamicObject) -> Key {
    (
        object.metadata.namespace.clone().unwrap_or_default(),
        object.metadata.name.clone().unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::kinds::lookup;
    use crate::source::KubeObject;

    fn service(name: &str, port: i64) -> DynamicObject {
        serde_json::from_value(serde_json::json!({
            "metadata": {
                "name": name,
                "namespace": "shop",
                "managedFields": [{"manager": "kubectl", "operation": "Apply"}],
            },
            "spec": {"ports": [{"name": "http", "port": port}]},
        }))
        .unwrap()
    }

    fn store() -> KindStore {
        KindStore::new(lookup("v1", "Service").unwrap(), "v1".into())
    }

    fn names(store: &KindStore) -> Vec<String> {
        let mut set = InputSet::default();
        store.add_to(&mut set);
        set.objects
            .iter()
            .map(|o| o.object.object_ref().name)
            .collect()
    }

    #[test]
    fn a_list_shows_only_when_complete_and_a_same_relist_changes_nothing() {
        let mut store = store();
        assert!(!store.apply(Event::Init));
        assert!(!store.apply(Event::InitApply(service("a", 80))));
        assert!(names(&store).is_empty() && !store.listed());
        assert!(store.apply(Event::InitDone));
        assert!(store.listed());
        assert_eq!(names(&store), ["a"]);
        // A relist (after a 410, say) with the same objects is no change.
        store.apply(Event::Init);
        store.apply(Event::InitApply(service("a", 80)));
        assert!(!store.apply(Event::InitDone));
        // One that drops an object removes it.
        store.apply(Event::Init);
        store.apply(Event::InitApply(service("b", 80)));
        assert!(store.apply(Event::InitDone));
        assert_eq!(names(&store), ["b"]);
    }

    #[test]
    fn applies_and_deletes_change_the_store() {
        let mut store = store();
        store.apply(Event::Init);
        store.apply(Event::InitDone);
        assert!(store.apply(Event::Apply(service("a", 80))));
        assert!(!store.apply(Event::Apply(service("a", 80))));
        assert!(store.apply(Event::Apply(service("a", 81))));
        assert!(store.apply(Event::Delete(service("a", 81))));
        assert!(!store.apply(Event::Delete(service("a", 81))));
        assert!(names(&store).is_empty());
    }

    #[test]
    fn decodes_through_the_registry_and_names_the_object_of_a_bad_one() {
        let mut store = store();
        store.apply(Event::Apply(service("good", 80)));
        let mut bad = service("bad", 80);
        bad.data["spec"]["ports"] = serde_json::json!("eighty");
        store.apply(Event::Apply(bad));
        let mut set = InputSet::default();
        store.add_to(&mut set);
        assert_eq!(set.objects.len(), 1);
        let KubeObject::Service(good) = &*set.objects[0].object else {
            panic!("not a service: {:?}", set.objects[0].object);
        };
        assert_eq!(good.metadata.namespace.as_deref(), Some("shop"));
        assert_eq!(good.spec.ports[0].port, Some(80));
        assert_eq!(set.problems.len(), 1);
        let problem = &set.problems[0];
        assert_eq!(problem.object.as_ref().unwrap().name, "bad");
        assert_eq!(problem.field.as_deref(), Some("spec.ports"));
        assert_eq!(
            problem.origin.file,
            PathBuf::from("kubernetes:Service/shop/bad")
        );
    }
}
