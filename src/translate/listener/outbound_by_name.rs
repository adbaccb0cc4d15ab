//! Outbound TCP listeners of services that have no address of their own, reached by name:
//! ServiceEntry hosts without `addresses` and ExternalName services. As istiod does, they
//! share one `0.0.0.0_<port>` listener per port: on a TLS port (TLS, HTTPS) each host gets
//! a filter chain matched on its SNI (the `tls_inspector` reads it); on another TCP port
//! a service takes the whole port (the listener's default chain; the first by key when
//! several do). Connections that match no chain pass through as dialled.
//!
//! The `0.0.0.0_<port>` name is shared with HTTP ports' listeners; an HTTP listener keeps
//! the port (istiod would detect the protocol there, meshd does not sniff yet).

use std::collections::BTreeMap;
use std::net::IpAddr;

use envoy_types::pb::envoy::config::core::v3::TrafficDirection;
use envoy_types::pb::envoy::config::listener::v3::{
    listener_filter, FilterChain, FilterChainMatch, Listener, ListenerFilter,
};
use envoy_types::pb::envoy::extensions::filters::listener::tls_inspector::v3::TlsInspector;
use envoy_types::pb::google::protobuf::{BoolValue, Duration};

use super::outbound::TRANSPORT_SOCKET_CONNECT_TIMEOUT_SECS;
use super::{listener, listener_filters_without_deadline, tcp_chain};
use crate::mesh::traffic::Resolution;
use crate::mesh::{MeshModel, Protocol, Service};
use crate::translate::filter::any;
use crate::translate::naming;
use crate::translate::scope::Scope;

pub const TLS_INSPECTOR: &str = "envoy.filters.listener.tls_inspector";

/// How a service's non-HTTP port is listened on outbound.
pub enum TcpAddresses {
    /// `<address>_<port>` listeners: the service's VIPs, or the pod (endpoint) IPs of a
    /// service clients dial directly (headless, NONE entries with endpoints).
    Exact(Vec<String>),
    /// The shared `0.0.0.0_<port>` listener of this module.
    ByName,
}

/// Where the outbound listeners of `service`'s TCP port `port` listen.
pub fn tcp_addresses(model: &MeshModel, service: &Service, port: u16) -> TcpAddresses {
    let vips = service.vips();
    if !vips.is_empty() {
        return TcpAddresses::Exact(vips.into_iter().map(str::to_string).collect());
    }
    let endpoint_ips = || -> Vec<String> {
        model
            .endpoints_of(&service.key, port)
            .map(|e| {
                e.endpoints
                    .iter()
                    .filter(|e| e.ready && e.address.parse::<IpAddr>().is_ok())
                    .map(|e| e.address.clone())
                    .collect()
            })
            .unwrap_or_default()
    };
    if service.is_headless() {
        return TcpAddresses::Exact(endpoint_ips());
    }
    // istiod: an entry resolved NONE listens per endpoint when it has (or selects) some.
    if service.resolution() == Resolution::None {
        let ips = endpoint_ips();
        if !ips.is_empty() || service.selector.is_some() {
            return TcpAddresses::Exact(ips);
        }
    }
    TcpAddresses::ByName
}

fn tls_inspector() -> ListenerFilter {
    ListenerFilter {
        name: TLS_INSPECTOR.to_string(),
        config_type: Some(listener_filter::ConfigType::TypedConfig(any(
            &TlsInspector::default(),
        ))),
        ..Default::default()
    }
}

#[derive(Default)]
struct PortChains {
    /// SNI host -> cluster, for TLS ports.
    by_sni: BTreeMap<String, String>,
    /// The cluster taking every other connection on the port.
    whole_port: Option<String>,
}

/// The shared listeners, one per port some service the scope sees listens on by name,
/// sorted by name.
/// `skip(port)` says which ports already have a listener of that name (HTTP ports).
pub fn listeners_by_name(scope: &Scope, skip: impl Fn(u16) -> bool) -> Vec<Listener> {
    let model = scope.model;
    let mut ports: BTreeMap<u16, PortChains> = BTreeMap::new();
    for service in scope.services() {
        for port in service.ports.iter().filter(|p| {
            !p.protocol.is_http()
                && p.port != naming::OUTBOUND_CAPTURE_PORT
                && p.port != naming::INBOUND_CAPTURE_PORT
                && !skip(p.port)
        }) {
            if !matches!(
                tcp_addresses(model, service, port.port),
                TcpAddresses::ByName
            ) {
                continue;
            }
            let cluster = naming::outbound_cluster(port.port, "", &service.hostname);
            let chains = ports.entry(port.port).or_default();
            if matches!(port.protocol, Protocol::Tls | Protocol::Https) {
                chains
                    .by_sni
                    .entry(service.hostname.clone())
                    .or_insert(cluster);
            } else {
                chains.whole_port.get_or_insert(cluster);
            }
        }
    }
    ports
        .into_iter()
        .map(|(port, chains)| port_listener(port, chains))
        .collect()
}

fn port_listener(port: u16, chains: PortChains) -> Listener {
    let name = naming::wildcard_listener(port);
    let timeout = |chain: FilterChain| FilterChain {
        transport_socket_connect_timeout: Some(Duration {
            seconds: TRANSPORT_SOCKET_CONNECT_TIMEOUT_SECS,
            nanos: 0,
        }),
        ..chain
    };
    let filter_chains: Vec<FilterChain> = chains
        .by_sni
        .iter()
        .map(|(host, cluster)| {
            timeout(FilterChain {
                filter_chain_match: Some(FilterChainMatch {
                    server_names: vec![host.clone()],
                    ..Default::default()
                }),
                ..tcp_chain(&name, cluster, None)
            })
        })
        .collect();
    let default_chain = match &chains.whole_port {
        Some(cluster) => timeout(tcp_chain(&name, cluster, None)),
        None => tcp_chain(naming::PASSTHROUGH_CHAIN, naming::PASSTHROUGH_CLUSTER, None),
    };
    // One match-all chain and nothing else: it is the listener's only chain (as istiod).
    let (filter_chains, default_filter_chain) = if filter_chains.is_empty() {
        (vec![default_chain], None)
    } else {
        (filter_chains, Some(default_chain))
    };
    let listener_filters = if chains.by_sni.is_empty() {
        Vec::new()
    } else {
        vec![tls_inspector()]
    };
    listener_filters_without_deadline(Listener {
        bind_to_port: Some(BoolValue { value: false }),
        listener_filters,
        filter_chains,
        default_filter_chain,
        ..listener(
            name.clone(),
            naming::WILDCARD_ADDRESS,
            port,
            TrafficDirection::Outbound,
        )
    })
}

#[cfg(test)]
#[path = "outbound_by_name_tests.rs"]
mod tests;
