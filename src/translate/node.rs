//! Envoy's `Node` (id and metadata) as a mesh `ProxyId`. The metadata only helps select
//! configuration; it is never proof of identity.

use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::google::protobuf::{value::Kind, Struct, Value};

use crate::mesh::{MeshError, ProxyId};

/// Plain string metadata keys meshd keeps (Istio's names).
pub const STRING_KEYS: &[&str] = &[
    "NAMESPACE",
    "INSTANCE_IPS",
    "SERVICE_ACCOUNT",
    "WORKLOAD_NAME",
    "CLUSTER_ID",
    "INTERCEPTION_MODE",
    "ISTIO_VERSION",
];

/// The map-valued key, flattened into `LABELS.<key>` entries.
pub const LABELS_KEY: &str = "LABELS";

fn as_string(value: &Value) -> Option<String> {
    match value.kind.as_ref()? {
        Kind::StringValue(s) => Some(s.clone()),
        Kind::BoolValue(b) => Some(b.to_string()),
        Kind::NumberValue(n) => Some(n.to_string()),
        _ => None,
    }
}

pub fn proxy_from_node(node: &Node) -> Result<ProxyId, MeshError> {
    let mut proxy = ProxyId::parse(&node.id)?;
    let Some(Struct { fields }) = node.metadata.as_ref() else {
        return Ok(proxy);
    };
    for key in STRING_KEYS {
        if let Some(value) = fields.get(*key).and_then(as_string) {
            proxy.metadata.insert(key.to_string(), value);
        }
    }
    if let Some(Kind::StructValue(labels)) = fields.get(LABELS_KEY).and_then(|v| v.kind.as_ref()) {
        for (k, v) in &labels.fields {
            if let Some(v) = as_string(v) {
                proxy.metadata.insert(format!("{LABELS_KEY}.{k}"), v);
            }
        }
    }
    Ok(proxy)
}
