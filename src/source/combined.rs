//! Two sources as one: `meshd serve --kubernetes --config-dir DIR`, where files add to what
//! the cluster has, as istiod's file config source beside Kubernetes does. Nothing is
//! published until both have published once, so the cluster's first full list still gates
//! readiness. When both hold an object of the same kind, namespace and name (istiod leaves
//! the order undefined), the cluster's is used and the file's is reported as a problem
//! naming both.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::watch;
use tracing::debug;

use super::kinds::KINDS;
use super::{InputSet, SourceObject};
use crate::problem::{ObjectRef, Problem};

type Input = watch::Receiver<Option<Arc<InputSet>>>;

/// Merges `cluster` and `files` into one input; ends when its receivers or both inputs are
/// gone.
pub fn combine(mut cluster: Input, mut files: Input) -> Input {
    let (tx, rx) = watch::channel(None);
    tokio::spawn(async move {
        loop {
            let merged = match (&*cluster.borrow_and_update(), &*files.borrow_and_update()) {
                (Some(cluster), Some(files)) => Some(merge(cluster, files)),
                _ => None,
            };
            if let Some(merged) = merged {
                tx.send_if_modified(|current| {
                    if current.as_deref() == Some(&merged) {
                        return false;
                    }
                    debug!(objects = merged.objects.len(), "combined input changed");
                    *current = Some(Arc::new(merged));
                    true
                });
            }
            let changed = tokio::select! {
                changed = cluster.changed() => changed,
                changed = files.changed() => changed,
                () = tx.closed() => return,
            };
            if changed.is_err() {
                return;
            }
        }
    });
    rx
}

/// `(kind, namespace, name)`, the namespace defaulted as the model defaults it.
type Key = (String, Option<String>, String);

fn key(object: &SourceObject) -> Key {
    let r = object.object.object_ref();
    let namespaced = KINDS.iter().any(|k| k.kind == r.kind && k.namespaced);
    let namespace = match r.namespace {
        None if namespaced => Some("default".to_string()),
        namespace => namespace,
    };
    (r.kind, namespace, r.name)
}

/// The cluster's objects, then the files' that do not clash with one of them.
pub fn merge(cluster: &InputSet, files: &InputSet) -> InputSet {
    let in_cluster: BTreeMap<Key, &SourceObject> =
        cluster.objects.iter().map(|o| (key(o), o)).collect();
    let mut merged = cluster.clone();
    merged.problems.extend(files.problems.iter().cloned());
    for object in &files.objects {
        let (kind, namespace, name) = key(object);
        match in_cluster.get(&(kind.clone(), namespace.clone(), name.clone())) {
            None => merged.objects.push(object.clone()),
            Some(theirs) => merged.problems.push(Problem {
                origin: object.origin.clone(),
                object: Some(ObjectRef {
                    kind,
                    namespace,
                    name,
                }),
                field: None,
                reason: format!(
                    "also in the cluster ({}); the cluster's is used and this file's ignored",
                    theirs.origin.file.display()
                ),
            }),
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::problem::Origin;
    use crate::source::kinds::{lookup, Source};

    fn object(origin: &str, json: &str) -> SourceObject {
        let value: serde_json::Value = serde_json::from_str(json).unwrap();
        let spec = lookup(
            value["apiVersion"].as_str().unwrap(),
            value["kind"].as_str().unwrap(),
        )
        .unwrap();
        SourceObject {
            origin: Origin {
                file: origin.into(),
                ..Origin::default()
            },
            object: Arc::new((spec.decode)(Source::Value(&value)).unwrap()),
        }
    }

    fn service(origin: &str, name: &str, namespace: Option<&str>) -> SourceObject {
        let namespace = namespace.map_or(String::new(), |n| format!(r#","namespace":"{n}""#));
        object(
            origin,
            &format!(
                r#"{{"apiVersion":"v1","kind":"Service","metadata":{{"name":"{name}"{namespace}}}}}"#
            ),
        )
    }

    #[test]
    fn files_add_to_the_cluster_and_the_cluster_wins_a_clash() {
        let cluster = InputSet {
            objects: vec![service(
                "kubernetes:Service/default/web",
                "web",
                Some("default"),
            )],
            problems: vec![],
        };
        let files = InputSet {
            objects: vec![
                // No namespace: `default`, as the model reads it, so it clashes.
                service("files/web.yaml", "web", None),
                service("files/db.yaml", "db", Some("default")),
            ],
            problems: vec![],
        };
        let merged = merge(&cluster, &files);
        let origins: Vec<_> = merged
            .objects
            .iter()
            .map(|o| o.origin.file.display().to_string())
            .collect();
        assert_eq!(origins, ["kubernetes:Service/default/web", "files/db.yaml"]);
        assert_eq!(merged.problems.len(), 1);
        let problem = merged.problems[0].to_string();
        assert!(
            problem.contains("files/web.yaml")
                && problem.contains("Service default/web")
                && problem.contains("kubernetes:Service/default/web"),
            "{problem}"
        );
    }

    #[tokio::test]
    async fn publishes_once_both_have_and_on_each_change() {
        let (cluster_tx, cluster_rx) = watch::channel(None);
        let (files_tx, files_rx) = watch::channel(None);
        let mut combined = combine(cluster_rx, files_rx);
        files_tx.send_replace(Some(Arc::new(InputSet {
            objects: vec![service("files/db.yaml", "db", None)],
            problems: vec![],
        })));
        tokio::task::yield_now().await;
        assert!(
            combined.borrow().is_none(),
            "waits for the cluster's first list"
        );
        cluster_tx.send_replace(Some(Arc::new(InputSet::default())));
        combined.changed().await.unwrap();
        assert_eq!(
            combined.borrow_and_update().as_ref().unwrap().objects.len(),
            1
        );
        files_tx.send_replace(Some(Arc::new(InputSet::default())));
        combined.changed().await.unwrap();
        assert!(combined.borrow().as_ref().unwrap().objects.is_empty());
    }
}
