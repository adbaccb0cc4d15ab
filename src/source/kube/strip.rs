//! What of an object from the API server is dropped before it is decoded and stored: fields
//! meshd never reads, which are most of a Pod and, through `managedFields` and kubectl's
//! `last-applied-configuration` annotation, often most of any object. The typed objects
//! keep only what their structs declare, but annotations are a free-form map they keep
//! whole, so they are cut here to the keys the model reads.

use kube::api::DynamicObject;
use serde_json::{Map, Value};

/// Annotation keys the model or translation reads. None today: meshd's behaviour depends
/// on no annotation yet; add a key here when code starts reading it.
pub const READ_ANNOTATIONS: &[&str] = &[];

/// Pod fields the model reads (src/mesh/build/workload.rs and objects/core.rs): per
/// top-level section, the keys kept.
const POD_SPEC: &[&str] = &["serviceAccountName", "containers"];
const POD_CONTAINER: &[&str] = &["name", "ports"];
const POD_STATUS: &[&str] = &["phase", "podIP", "podIPs", "conditions"];
const POD_CONDITION: &[&str] = &["type", "status"];

/// Strips `object`, of `kind`, down to what meshd reads.
pub fn strip(kind: &str, object: &mut DynamicObject) {
    let meta = &mut object.metadata;
    meta.managed_fields = None;
    meta.owner_references = None;
    meta.finalizers = None;
    if let Some(annotations) = &mut meta.annotations {
        annotations.retain(|key, _| READ_ANNOTATIONS.contains(&key.as_str()));
        if annotations.is_empty() {
            meta.annotations = None;
        }
    }
    if kind == "Pod" {
        strip_pod(&mut object.data);
    }
}

fn strip_pod(data: &mut Value) {
    let Some(pod) = data.as_object_mut() else {
        return;
    };
    pod.retain(|key, _| key == "spec" || key == "status");
    if let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) {
        keep(spec, POD_SPEC);
        for container in items(spec.get_mut("containers")) {
            keep(container, POD_CONTAINER);
        }
    }
    if let Some(status) = pod.get_mut("status").and_then(Value::as_object_mut) {
        keep(status, POD_STATUS);
        // Only Ready is read (`Pod::is_ready`).
        if let Some(Value::Array(conditions)) = status.get_mut("conditions") {
            conditions.retain(|c| c.get("type").and_then(Value::as_str) == Some("Ready"));
        }
        for condition in items(status.get_mut("conditions")) {
            keep(condition, POD_CONDITION);
        }
    }
}

/// Keeps only `keys` of `map`.
fn keep(map: &mut Map<String, Value>, keys: &[&str]) {
    map.retain(|key, _| keys.contains(&key.as_str()));
}

/// The object items of an array value; nothing when it is not one (the decoder reports it).
fn items(value: Option<&mut Value>) -> impl Iterator<Item = &mut Map<String, Value>> {
    value
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object_mut)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(value: Value) -> DynamicObject {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn keeps_of_a_pod_only_what_the_model_reads() {
        let mut pod = object(json!({
            "metadata": {
                "name": "web-1", "namespace": "shop", "uid": "u1",
                "labels": {"app": "web"},
                "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{...}"},
                "managedFields": [{"manager": "kubelet"}],
                "ownerReferences": [{"kind": "ReplicaSet", "name": "web", "uid": "r", "apiVersion": "apps/v1"}],
            },
            "spec": {
                "serviceAccountName": "web", "nodeName": "n1",
                "volumes": [{"name": "token"}],
                "containers": [{
                    "name": "app", "image": "web:1", "env": [{"name": "A", "value": "b"}],
                    "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
                }],
            },
            "status": {
                "phase": "Running", "podIP": "10.1.0.5", "podIPs": [{"ip": "10.1.0.5"}],
                "hostIP": "192.168.0.1", "containerStatuses": [{"name": "app"}],
                "conditions": [
                    {"type": "PodScheduled", "status": "True"},
                    {"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"},
                ],
            },
        }));
        strip("Pod", &mut pod);
        assert_eq!(pod.metadata.name.as_deref(), Some("web-1"));
        assert_eq!(pod.metadata.uid.as_deref(), Some("u1"));
        assert_eq!(pod.metadata.labels.as_ref().unwrap()["app"], "web");
        assert_eq!(pod.metadata.annotations, None);
        assert_eq!(pod.metadata.managed_fields, None);
        assert_eq!(pod.metadata.owner_references, None);
        assert_eq!(
            pod.data,
            json!({
                "spec": {
                    "serviceAccountName": "web",
                    "containers": [{
                        "name": "app",
                        "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
                    }],
                },
                "status": {
                    "phase": "Running", "podIP": "10.1.0.5", "podIPs": [{"ip": "10.1.0.5"}],
                    "conditions": [{"type": "Ready", "status": "True"}],
                },
            })
        );
    }

    #[test]
    fn leaves_the_spec_of_other_kinds_to_their_decoder() {
        let spec = json!({"hosts": ["reviews"], "http": [{"route": []}]});
        let mut vs = object(json!({
            "metadata": {"name": "r", "annotations": {"a": "b"}},
            "spec": spec.clone(),
        }));
        strip("VirtualService", &mut vs);
        assert_eq!(vs.data["spec"], spec);
        assert_eq!(vs.metadata.annotations, None);
    }

    #[test]
    fn a_pod_of_the_wrong_shape_is_left_for_the_decoder_to_reject() {
        let mut pod = object(json!({"metadata": {"name": "p"}, "spec": {"containers": "x"}}));
        strip("Pod", &mut pod);
        assert_eq!(pod.data["spec"]["containers"], "x");
    }
}
