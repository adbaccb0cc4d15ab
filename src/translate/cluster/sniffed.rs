//! Upstream HTTP settings of clusters for ports whose protocol is detected (`Unsupported`):
//! speak upstream the HTTP version the downstream spoke, as istiod sets it for sidecars.
//! The sniffed HTTP chain forwards HTTP/1.1 as HTTP/1.1 and h2c as HTTP/2, so an
//! application that only knows HTTP/1.1 never receives HTTP/2 it did not ask for; the TCP
//! chain's tcp_proxy ignores these options.

use std::collections::HashMap;

use envoy_types::pb::envoy::config::core::v3::{Http1ProtocolOptions, Http2ProtocolOptions};
use envoy_types::pb::envoy::extensions::upstreams::http::v3::{
    http_protocol_options::{UpstreamProtocolOptions, UseDownstreamHttpConfig},
    HttpProtocolOptions,
};
use envoy_types::pb::google::protobuf::Any;

use super::HTTP_PROTOCOL_OPTIONS_KEY;
use crate::translate::filter::any;

/// `use_downstream_protocol_config` with default HTTP/1 and HTTP/2 options (istiod's, with
/// no idle timeout unlike `PassthroughCluster`).
pub fn use_downstream_protocol_options() -> HashMap<String, Any> {
    let options = HttpProtocolOptions {
        upstream_protocol_options: Some(use_downstream_protocol()),
        ..Default::default()
    };
    HashMap::from([(HTTP_PROTOCOL_OPTIONS_KEY.to_string(), any(&options))])
}

/// The upstream protocol choice "as the downstream spoke", with default HTTP/1 and HTTP/2
/// options; shared with `PassthroughCluster`.
pub fn use_downstream_protocol() -> UpstreamProtocolOptions {
    UpstreamProtocolOptions::UseDownstreamProtocolConfig(UseDownstreamHttpConfig {
        http_protocol_options: Some(Http1ProtocolOptions::default()),
        http2_protocol_options: Some(Http2ProtocolOptions::default()),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::{ObjectKey, Protocol, Service, ServicePort, TargetPort};
    use crate::translate::cluster::{inbound_cluster, outbound_cluster};
    use prost::Message;

    fn options(c: &envoy_types::pb::envoy::config::cluster::v3::Cluster) -> HttpProtocolOptions {
        let any = &c.typed_extension_protocol_options[HTTP_PROTOCOL_OPTIONS_KEY];
        HttpProtocolOptions::decode(&any.value[..]).unwrap()
    }

    #[test]
    fn sniffed_ports_follow_the_downstream_protocol_both_ways() {
        let port = ServicePort {
            name: String::new(),
            port: 8080,
            target_port: TargetPort::Number(8080),
            protocol: Protocol::Unsupported,
        };
        let service = Service {
            key: ObjectKey {
                namespace: "shop".into(),
                name: "web".into(),
            },
            hostname: "web.shop.svc.cluster.local".into(),
            cluster_ip: Some("10.96.3.1".into()),
            ports: vec![port.clone()],
            selector: None,
            labels: Default::default(),
            origin: crate::mesh::ServiceOrigin::Kubernetes,
        };
        for c in [
            outbound_cluster(&service, &port),
            inbound_cluster(8080, Protocol::Unsupported),
        ] {
            let o = options(&c);
            let Some(UpstreamProtocolOptions::UseDownstreamProtocolConfig(config)) =
                o.upstream_protocol_options
            else {
                panic!("{}: expected use_downstream_protocol_config", c.name);
            };
            assert!(config.http_protocol_options.is_some(), "{}", c.name);
            assert!(config.http2_protocol_options.is_some(), "{}", c.name);
            assert!(o.common_http_protocol_options.is_none(), "{}", c.name);
        }
        // Declared TCP and HTTP/1 ports keep no HTTP options at all.
        assert!(inbound_cluster(8080, Protocol::Tcp)
            .typed_extension_protocol_options
            .is_empty());
        assert!(inbound_cluster(8080, Protocol::Http)
            .typed_extension_protocol_options
            .is_empty());
    }
}
