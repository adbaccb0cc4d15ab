//! The inbound side: `virtualInbound` on 15006, where iptables sends connections to the
//! pod. The `original_dst` listener filter restores the port the client dialled; one
//! filter chain per served target port (`0.0.0.0_<port>`) sends it to `inbound|<port>||`,
//! through the HTTP connection manager for HTTP ports. Anything else passes through to the
//! application as dialled. Ports whose protocol is not declared get two chains instead, HTTP
//! detected by `http_inspector` and TCP (`sniffing`). Under mTLS each port's chains follow
//! its PeerAuthentication mode (`mtls::inbound`; `mtls::no_identity` for a proxy without a
//! workload certificate). Depends only on the inbound port set, the modes and whether the
//! proxy holds a certificate, so proxies with the same ones share it.

use envoy_types::pb::envoy::config::core::v3::TrafficDirection;
use envoy_types::pb::envoy::config::listener::v3::{FilterChain, FilterChainMatch, Listener};
use envoy_types::pb::google::protobuf::UInt32Value;

use super::{
    listener, listener_filters_without_deadline, max_connections_per_socket_event, tcp_chain,
};
use crate::mesh::peer_authentication::{InboundMtls, MtlsMode};
use crate::mesh::Protocol;
use crate::translate::filter::hcm::{hcm_filter, Routes, Side};
use crate::translate::filter::http_inspector::http_inspector_filter_on_ports;
use crate::translate::filter::original_dst::original_dst_filter;
use crate::translate::filter::tcp_proxy::tcp_proxy_filter;
use crate::translate::filter::tls_inspector::tls_inspector_filter_on_ports;
use crate::translate::inbound_ports::InboundPorts;
use crate::translate::mtls::inbound::{
    downstream_socket, needs_http_inspector, needs_tls_inspector, variants, Variant,
};
use crate::translate::mtls::no_identity;
use crate::translate::naming;
use crate::translate::route::inbound_route_config;

fn chain(port: u16, protocol: Protocol, v: &Variant) -> FilterChain {
    let filter = if v.http {
        hcm_filter(
            Side::Inbound {
                http2: protocol.is_http2(),
            },
            &naming::inbound_stat_prefix(port),
            Routes::Inline(Box::new(inbound_route_config(port, protocol))),
        )
    } else {
        tcp_proxy_filter(&naming::inbound_cluster(port))
    };
    FilterChain {
        name: naming::wildcard_listener(port),
        filter_chain_match: Some(FilterChainMatch {
            destination_port: Some(UInt32Value {
                value: u32::from(port),
            }),
            transport_protocol: v.transport_protocol.to_string(),
            application_protocols: v.application_protocols.clone(),
            ..Default::default()
        }),
        filters: vec![filter],
        transport_socket: v.mtls.then(downstream_socket),
        ..Default::default()
    }
}

/// The chains of one target port under its mTLS mode (`mtls::inbound`).
#[cfg(test)]
fn port_chains(port: u16, protocol: Protocol, mode: MtlsMode) -> Vec<FilterChain> {
    variants(mode, protocol)
        .iter()
        .map(|v| chain(port, protocol, v))
        .collect()
}

/// `virtualInbound` for the target ports `ports`, each accepting what `mtls` says, for a
/// proxy that holds a workload certificate (`identity`) or not.
pub fn virtual_inbound(ports: &InboundPorts, mtls: &InboundMtls, identity: bool) -> Listener {
    let mut filter_chains = vec![tcp_chain(
        &naming::blackhole_chain(naming::VIRTUAL_INBOUND),
        naming::BLACKHOLE_CLUSTER,
        // A connection whose original destination is 15006 itself would loop.
        Some(naming::INBOUND_CAPTURE_PORT),
    )];
    let mut http_inspected = Vec::new();
    let mut tls_inspected = Vec::new();
    for (port, protocol) in ports {
        let vs = if identity {
            variants(mtls.mode(*port), *protocol)
        } else {
            no_identity::variants(mtls.mode(*port), *protocol)
        };
        if needs_http_inspector(&vs) {
            http_inspected.push(*port);
        }
        if needs_tls_inspector(&vs) {
            tls_inspected.push(*port);
        }
        filter_chains.extend(vs.iter().map(|v| {
            let mut c = chain(*port, *protocol, v);
            if v.mtls && !identity {
                no_identity::refuse(&mut c);
            }
            c
        }));
    }
    let mut listener_filters = vec![original_dst_filter()];
    // TLS first: the HTTP inspector leaves connections found to be TLS alone.
    if !tls_inspected.is_empty() {
        listener_filters.push(tls_inspector_filter_on_ports(&tls_inspected));
    }
    if !http_inspected.is_empty() {
        listener_filters.push(http_inspector_filter_on_ports(&http_inspected));
    }
    let mut passthrough = tcp_chain(
        naming::PASSTHROUGH_CHAIN,
        naming::INBOUND_PASSTHROUGH_CLUSTER,
        None,
    );
    // Ports no service declares still take mTLS only when the workload is STRICT.
    if mtls.default == MtlsMode::Strict {
        if identity {
            passthrough.transport_socket = Some(downstream_socket());
        } else {
            no_identity::refuse(&mut passthrough);
        }
    }
    listener_filters_without_deadline(Listener {
        max_connections_to_accept_per_socket_event: max_connections_per_socket_event(),
        listener_filters,
        filter_chains,
        default_filter_chain: Some(passthrough),
        ..listener(
            naming::VIRTUAL_INBOUND.to_string(),
            naming::WILDCARD_ADDRESS,
            naming::INBOUND_CAPTURE_PORT,
            TrafficDirection::Inbound,
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::translate::inbound_ports::InboundPorts;
    use envoy_types::pb::envoy::config::listener::v3::filter::ConfigType;
    use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager;
    use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::TcpProxy;
    use prost::Message;

    fn config(chain: &FilterChain) -> &[u8] {
        match &chain.filters[0].config_type {
            Some(ConfigType::TypedConfig(any)) => &any.value,
            _ => panic!("typed config"),
        }
    }

    #[test]
    fn inbound_stat_prefixes_as_istiod_names_them() {
        let http = HttpConnectionManager::decode(config(
            &port_chains(9080, Protocol::Grpc, MtlsMode::Disable)[0],
        ))
        .unwrap();
        assert_eq!(http.stat_prefix, "inbound_0.0.0.0_9080;");
        assert!(
            http.http2_protocol_options.is_some(),
            "gRPC port speaks HTTP/2"
        );
        let tcp = TcpProxy::decode(config(
            &port_chains(3306, Protocol::Tcp, MtlsMode::Disable)[0],
        ))
        .unwrap();
        assert_eq!(tcp.stat_prefix, "inbound|3306||");
    }

    #[test]
    fn sniffed_ports_get_two_chains_and_the_inspector_only_for_them() {
        let ports = InboundPorts::from([
            (8080, Protocol::Unsupported),
            (9080, Protocol::Http),
            (3306, Protocol::Tcp),
        ]);
        let l = virtual_inbound(&ports, &InboundMtls::uniform(MtlsMode::Disable), false);
        let names: Vec<&str> = l.filter_chains.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "virtualInbound-blackhole",
                "0.0.0.0_3306",
                "0.0.0.0_8080",
                "0.0.0.0_8080",
                "0.0.0.0_9080"
            ]
        );
        let filters: Vec<&str> = l.listener_filters.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            filters,
            [
                crate::translate::filter::original_dst::NAME,
                crate::translate::filter::http_inspector::NAME
            ]
        );
        assert!(l.listener_filters[1].filter_disabled.is_some());
        // Without sniffed ports, nothing reads ahead.
        let declared = virtual_inbound(
            &InboundPorts::from([(9080, Protocol::Http)]),
            &InboundMtls::uniform(MtlsMode::Disable),
            false,
        );
        assert_eq!(declared.listener_filters.len(), 1);
    }
}
