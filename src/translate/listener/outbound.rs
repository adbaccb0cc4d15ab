//! The outbound side: `virtualOutbound` on 15001 catches redirected connections and hands
//! each to the listener matching its original destination: `<VIP>_<port>` for TCP and
//! sniffed service ports (an exact address match wins over the wildcard, as in Istio; see
//! `service_port`), `0.0.0.0_<port>` for HTTP ports (routes over RDS, config `"<port>"`).
//! Unknown destinations pass through, and so do HTTP ports the sidecar owns
//! (`naming::is_proxy_port`).
//! They depend on what the proxy's scope sees (its Sidecar, its outbound policy, the
//! VirtualServices whose TCP and TLS routes apply to it, its DestinationRules).

use std::collections::BTreeMap;

use envoy_types::pb::envoy::config::core::v3::TrafficDirection;
use envoy_types::pb::envoy::config::listener::v3::{FilterChain, Listener};
use envoy_types::pb::google::protobuf::{BoolValue, Duration};

use super::l4_routes::l4_rules;
use super::outbound_by_name::{listeners_by_name, tcp_addresses, TcpAddresses};
use super::service_port::service_port_listener;
use super::{
    listener, listener_filters_without_deadline, max_connections_per_socket_event, tcp_chain,
};
use crate::mesh::traffic::OutboundPolicy;
use crate::mesh::MeshModel;
use crate::translate::filter::hcm::{hcm_filter, Routes, Side};
use crate::translate::naming;
use crate::translate::route::http_ports;
use crate::translate::scope::Scope;

/// istiod's limit on TLS (or other transport) negotiation of outbound chains; plaintext
/// chains are established at once, but the field is set on every chain alike.
pub const TRANSPORT_SOCKET_CONNECT_TIMEOUT_SECS: i64 = 15;

/// Where outbound connections no filter chain takes go.
pub fn catch_all_cluster(policy: &OutboundPolicy) -> &'static str {
    match policy {
        OutboundPolicy::AllowAny => naming::PASSTHROUGH_CLUSTER,
        OutboundPolicy::RegistryOnly => naming::BLACKHOLE_CLUSTER,
    }
}

/// `virtualOutbound`: connections to a destination no other listener takes pass through,
/// or, under REGISTRY_ONLY, go to the blackhole.
pub fn virtual_outbound(policy: &OutboundPolicy) -> Listener {
    // The chain keeps its name either way, as in istiod.
    let cluster = catch_all_cluster(policy);
    Listener {
        use_original_dst: Some(BoolValue { value: true }),
        max_connections_to_accept_per_socket_event: max_connections_per_socket_event(),
        filter_chains: vec![tcp_chain(
            &naming::blackhole_chain(naming::VIRTUAL_OUTBOUND),
            naming::BLACKHOLE_CLUSTER,
            // A connection whose original destination is 15001 itself would loop.
            Some(naming::OUTBOUND_CAPTURE_PORT),
        )],
        default_filter_chain: Some(tcp_chain(naming::PASSTHROUGH_CHAIN, cluster, None)),
        ..listener(
            naming::VIRTUAL_OUTBOUND.to_string(),
            naming::WILDCARD_ADDRESS,
            naming::OUTBOUND_CAPTURE_PORT,
            TrafficDirection::Outbound,
        )
    }
}

/// A per-port listener reached only through `virtualOutbound`.
fn handed_off(name: String, address: &str, port: u16, chain: FilterChain) -> Listener {
    let chain = FilterChain {
        transport_socket_connect_timeout: Some(Duration {
            seconds: TRANSPORT_SOCKET_CONNECT_TIMEOUT_SECS,
            nanos: 0,
        }),
        ..chain
    };
    listener_filters_without_deadline(Listener {
        bind_to_port: Some(BoolValue { value: false }),
        filter_chains: vec![chain],
        ..listener(name, address, port, TrafficDirection::Outbound)
    })
}

fn http_listener(port: u16) -> Listener {
    let name = naming::wildcard_listener(port);
    let chain = FilterChain {
        name: name.clone(),
        filters: vec![hcm_filter(
            Side::Outbound,
            &naming::outbound_stat_prefix(port),
            Routes::Rds(naming::route_config(port)),
        )],
        ..Default::default()
    };
    handed_off(name, naming::WILDCARD_ADDRESS, port, chain)
}

/// Every outbound listener a scope sees, `virtualOutbound` included, sorted by name.
pub fn outbound_listeners(scope: &Scope) -> Vec<Listener> {
    let model = scope.model;
    let mut listeners: BTreeMap<String, Listener> = BTreeMap::new();
    let virtual_outbound = virtual_outbound(&scope.outbound_policy());
    listeners.insert(virtual_outbound.name.clone(), virtual_outbound);
    let l4 = l4_rules(scope);
    // `http_ports` leaves out the proxy's own ports.
    let http = http_ports(scope);
    for &port in http.keys() {
        let l = http_listener(port);
        listeners.insert(l.name.clone(), l);
    }
    for service in scope.services() {
        for port in service
            .ports
            .iter()
            // A `<VIP>_<port>` listener cannot collide with the static listeners (other
            // name, other address, not bound), but the capture ports would loop.
            .filter(|p| {
                !p.protocol.is_http()
                    && p.port != naming::OUTBOUND_CAPTURE_PORT
                    && p.port != naming::INBOUND_CAPTURE_PORT
            })
        {
            // A headless service has no VIP: clients dial the pods, so listen per pod IP.
            // Services reached by name share `0.0.0.0_<port>` (`outbound_by_name`).
            let TcpAddresses::Exact(addresses) = tcp_addresses(model, service, port.port) else {
                continue;
            };
            for address in addresses {
                let l = service_port_listener(scope, &l4, service, port, &address);
                // Two services on the same address and port: the first (by key) keeps it.
                listeners.entry(l.name.clone()).or_insert(l);
            }
        }
    }
    for l in listeners_by_name(scope, |port| http.contains_key(&port)) {
        listeners.entry(l.name.clone()).or_insert(l);
    }
    listeners.into_values().collect()
}

/// The endpoints of headless services (and of ServiceEntry hosts resolved NONE without
/// addresses): the only endpoints outbound listeners depend on (such a service gets a
/// listener per endpoint address, see `outbound_by_name::tcp_addresses`).
pub(crate) fn headless_endpoints(
    model: &MeshModel,
) -> Vec<(&crate::mesh::ObjectKey, u16, &crate::mesh::PortEndpoints)> {
    crate::translate::cluster::resolution::port_endpoints_where(model, |s| {
        s.resolution() == crate::mesh::traffic::Resolution::None && s.vips().is_empty()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager;
    use prost::Message;

    fn hcm(l: &Listener) -> HttpConnectionManager {
        let filter = &l.filter_chains[0].filters[0];
        let Some(envoy_types::pb::envoy::config::listener::v3::filter::ConfigType::TypedConfig(
            any,
        )) = &filter.config_type
        else {
            panic!("typed config");
        };
        HttpConnectionManager::decode(&any.value[..]).unwrap()
    }

    #[test]
    fn per_port_listeners_as_istiod_builds_them() {
        use super::super::chain_opts::{outbound_listener, ChainOpts};
        use crate::translate::filter::tcp_proxy::tcp_proxy_filter;
        let tcp = outbound_listener(
            "10.96.0.20",
            3306,
            vec![ChainOpts {
                filters: vec![tcp_proxy_filter("outbound|3306||db.shop.svc.cluster.local")],
                ..Default::default()
            }],
            naming::PASSTHROUGH_CLUSTER,
        );
        for l in [http_listener(9080), tcp] {
            assert_eq!(l.bind_to_port, Some(BoolValue { value: false }));
            assert_eq!(l.listener_filters_timeout, Some(Duration::default()));
            assert!(l.continue_on_listener_filters_timeout, "{}", l.name);
            assert_eq!(
                l.filter_chains[0].transport_socket_connect_timeout,
                Some(Duration {
                    seconds: 15,
                    nanos: 0
                }),
                "{}",
                l.name
            );
        }
        assert_eq!(
            hcm(&http_listener(9080)).stat_prefix,
            "outbound_0.0.0.0_9080;"
        );
    }
}
