//! Builders for the network, listener and HTTP filter configs meshd puts into listeners,
//! one file per filter. Only stock Envoy filters (ISTIO-COMPAT.md, "Stock Envoy only").

pub mod cors;
pub mod fault;
pub mod grpc_stats;
pub mod hcm;
pub mod http_inspector;
pub mod original_dst;
pub mod router;
pub mod tcp_proxy;
pub mod tls_inspector;

use envoy_types::pb::google::protobuf::Any;
use prost::{Message, Name};

use crate::envoy::canonical;

/// Packs a message into an `Any` with Envoy's type URL, encoded in canonical form (map
/// entries sorted by key) so that the resource holding it encodes the same in every process.
pub fn any<M: Message + Name>(message: &M) -> Any {
    let type_url = M::type_url();
    let value = canonical::encode(&type_url, message);
    Any { type_url, value }
}

#[cfg(test)]
mod tests {
    use envoy_types::pb::envoy::extensions::filters::http::rbac::v3::Rbac;

    use super::any;
    use crate::envoy::canonical::tests::{raw_any, rbac_rules, two_orders};

    #[test]
    fn any_packs_canonically() {
        let (a, b) = two_orders(|| Rbac {
            rules: Some(rbac_rules()),
            ..Default::default()
        });
        assert_eq!(any(&a), any(&b));
        assert_ne!(
            raw_any(&a),
            raw_any(&b),
            "prost alone orders them differently"
        );
    }
}
