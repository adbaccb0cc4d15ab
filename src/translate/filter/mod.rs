//! Builders for the network, listener and HTTP filter configs meshd puts into listeners,
//! one file per filter. Only stock Envoy filters (ISTIO-COMPAT.md, "Stock Envoy only").

pub mod cors;
pub mod fault;
pub mod grpc_stats;
pub mod hcm;
pub mod original_dst;
pub mod router;
pub mod tcp_proxy;

use envoy_types::pb::google::protobuf::Any;
use prost::{Message, Name};

/// Packs a message into an `Any` with Envoy's type URL.
pub fn any<M: Message + Name>(message: &M) -> Any {
    Any {
        type_url: M::type_url(),
        value: message.encode_to_vec(),
    }
}
