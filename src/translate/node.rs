//! Envoy's `Node` (id and metadata) as a mesh `ProxyId`.

use envoy_types::pb::envoy::config::core::v3::Node;

use crate::mesh::{MeshError, ProxyId};

pub fn proxy_from_node(node: &Node) -> Result<ProxyId, MeshError> {
    ProxyId::parse(&node.id)
}
