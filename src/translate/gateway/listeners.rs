//! A router proxy's listeners: one per merged bind address and port, bound (the gateway
//! has no traffic capture), named `<bind>_<port>` as istiod names them.
//! - HTTP servers: one chain, a gateway connection manager with routes `http.<port>`.
//! - TLS-terminating HTTPS servers: a chain each, matched on the server's hosts by SNI,
//!   with the server's downstream TLS and routes `https.<port>.<port name>.<gw>.<ns>`.
//! - TLS-terminating TLS servers and plain TCP servers: tcp_proxy by the first `tcp` route
//!   of a bound VirtualService that applies.
//! - PASSTHROUGH servers: a chain per matching `tls` route match, on its `sniHosts`.
//!
//! `tls_inspector` reads SNI where a chain needs it. A listener left without chains is left
//! out, as istiod does.

use std::collections::BTreeSet;

use envoy_types::pb::envoy::config::core::v3::{Http1ProtocolOptions, TrafficDirection};
use envoy_types::pb::envoy::config::listener::v3::{
    filter, listener_filter, Filter, FilterChain, FilterChainMatch, Listener, ListenerFilter,
};
use envoy_types::pb::envoy::extensions::filters::listener::tls_inspector::v3::TlsInspector;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    http_connection_manager::{ForwardClientCertDetails, SetCurrentClientCertDetails},
    HttpConnectionManager,
};
use envoy_types::pb::google::protobuf::{BoolValue, Duration, UInt32Value};

use super::bind::{bound, hosts_meet, l4_match_applies, tcp_proxy};
use super::merge::{ListenerKind, MergedGateway, MergedListener, Server};
use super::tls::{downstream_tls_context, transport_socket};
use crate::mesh::Protocol;
use crate::translate::filter::hcm::{self, hcm_config, Routes, Side};
use crate::translate::listener::MAX_CONNECTIONS_PER_SOCKET_EVENT;
use crate::translate::scope::Scope;
use crate::translate::{filter as filters, naming, socket_address};

pub const TLS_INSPECTOR: &str = "envoy.filters.listener.tls_inspector";

/// istiod's bound on a gateway chain's TLS handshake (slow-handshake attacks).
pub const TRANSPORT_SOCKET_CONNECT_TIMEOUT_SECS: i64 = 15;

/// The `server` header gateways send, as istiod's do.
pub const SERVER_NAME: &str = "istio-envoy";

/// A gateway's connection manager: the sidecar defaults, plus what istiod gives gateways:
/// the edge of the mesh uses the remote address (`x-forwarded-for` appended, no hop
/// trusted), sanitizes and sets `x-forwarded-client-cert` from a client certificate, and
/// answers as `istio-envoy`.
pub fn gateway_hcm(stat_prefix: &str, route_name: &str) -> HttpConnectionManager {
    HttpConnectionManager {
        use_remote_address: Some(BoolValue { value: true }),
        xff_num_trusted_hops: 0,
        forward_client_cert_details: ForwardClientCertDetails::SanitizeSet as i32,
        set_current_client_cert_details: Some(SetCurrentClientCertDetails {
            subject: Some(BoolValue { value: true }),
            cert: true,
            dns: true,
            uri: true,
            ..Default::default()
        }),
        server_name: SERVER_NAME.to_string(),
        http_protocol_options: Some(Http1ProtocolOptions::default()),
        ..hcm_config(
            Side::Outbound,
            stat_prefix,
            Routes::Rds(route_name.to_string()),
        )
    }
}

fn hcm_filter(stat_prefix: &str, route_name: &str) -> Filter {
    Filter {
        name: hcm::NAME.to_string(),
        config_type: Some(filter::ConfigType::TypedConfig(filters::any(&gateway_hcm(
            stat_prefix,
            route_name,
        )))),
    }
}

fn sni_match(hosts: Vec<String>) -> Option<FilterChainMatch> {
    // A `*` host matches any name, as no SNI match at all does.
    if hosts.is_empty() || hosts.iter().any(|h| h == "*") {
        return None;
    }
    let mut hosts = hosts;
    hosts.sort();
    hosts.dedup();
    Some(FilterChainMatch {
        server_names: hosts,
        ..Default::default()
    })
}

fn chain(filter_chain_match: Option<FilterChainMatch>, filters: Vec<Filter>) -> FilterChain {
    FilterChain {
        filter_chain_match,
        filters,
        transport_socket_connect_timeout: Some(Duration {
            seconds: TRANSPORT_SOCKET_CONNECT_TIMEOUT_SECS,
            nanos: 0,
        }),
        ..Default::default()
    }
}

/// The tcp_proxy of the first `tcp` route of a bound VirtualService that applies.
fn tcp_filters<'m>(scope: &Scope<'m>, server: &Server<'m>, port: u16) -> Option<Filter> {
    for vs in bound(scope, server) {
        if !hosts_meet(server, vs) {
            continue;
        }
        for route in &vs.tcp {
            let applies = route.matches.is_empty()
                || route.matches.iter().any(|m| l4_match_applies(m, server));
            if applies && !route.route.is_empty() {
                return Some(tcp_proxy(scope.model, &route.route, port));
            }
        }
    }
    None
}

/// Chains of a PASSTHROUGH server: one per `tls` route match that applies, on its SNI
/// hosts; a host an earlier chain of the listener took is left out (Envoy refuses two
/// chains with one match).
fn passthrough_chains<'m>(
    scope: &Scope<'m>,
    server: &Server<'m>,
    port: u16,
    taken: &mut BTreeSet<String>,
) -> Vec<FilterChain> {
    let mut chains = Vec::new();
    for vs in bound(scope, server) {
        if !hosts_meet(server, vs) {
            continue;
        }
        for route in vs.tls.iter().filter(|r| !r.route.is_empty()) {
            for m in route.matches.iter().filter(|m| l4_match_applies(m, server)) {
                if m.sni_hosts.is_empty() || m.sni_hosts.iter().any(|h| taken.contains(h)) {
                    continue;
                }
                taken.extend(m.sni_hosts.iter().cloned());
                chains.push(chain(
                    sni_match(m.sni_hosts.clone()),
                    vec![tcp_proxy(scope.model, &route.route, port)],
                ));
            }
        }
    }
    chains
}

fn server_chains<'m>(
    scope: &Scope<'m>,
    listener: &MergedListener<'m>,
    default_stat_prefix: &str,
) -> Vec<FilterChain> {
    let port = listener.port;
    let mut chains = Vec::new();
    let mut passthrough_hosts = BTreeSet::new();
    match listener.kind {
        ListenerKind::Http => {
            if let Some(route) = listener
                .servers
                .first()
                .and_then(|s| s.route_name.as_deref())
            {
                chains.push(chain(None, vec![hcm_filter(default_stat_prefix, route)]));
            }
        }
        ListenerKind::Tcp => {
            let server = &listener.servers[0];
            if let Some(f) = tcp_filters(scope, server, port) {
                chains.push(chain(None, vec![f]));
            }
        }
        ListenerKind::Tls => {
            for server in &listener.servers {
                let Some(tls) = server.server.tls.as_ref() else {
                    continue;
                };
                if !server.terminates_tls() {
                    chains.extend(passthrough_chains(
                        scope,
                        server,
                        port,
                        &mut passthrough_hosts,
                    ));
                    continue;
                }
                let socket = Some(transport_socket(&downstream_tls_context(tls)));
                let filters = if server.server.port.protocol == Protocol::Https {
                    let prefix = server
                        .server
                        .name
                        .clone()
                        .unwrap_or_else(|| default_stat_prefix.to_string());
                    let route = server.route_name.as_deref().unwrap_or_default();
                    vec![hcm_filter(&prefix, route)]
                } else {
                    tcp_filters(scope, server, port).into_iter().collect()
                };
                if filters.is_empty() {
                    continue;
                }
                chains.push(FilterChain {
                    transport_socket: socket,
                    ..chain(sni_match(server.sni_hosts()), filters)
                });
            }
        }
    }
    chains
}

/// The listeners of a router proxy's merged Gateways, by name.
pub fn gateway_listeners<'m>(scope: &Scope<'m>, merged: &MergedGateway<'m>) -> Vec<Listener> {
    let mut out = Vec::new();
    for listener in merged.listeners.values() {
        let name = naming::gateway_listener(listener.bind.as_deref(), listener.port);
        let stat_prefix = naming::delimited_stat_name(&format!("outbound_{name}"));
        let filter_chains = server_chains(scope, listener, &stat_prefix);
        if filter_chains.is_empty() {
            continue;
        }
        let needs_inspector = filter_chains.iter().any(|c| {
            c.transport_socket.is_some()
                || c.filter_chain_match
                    .as_ref()
                    .is_some_and(|m| !m.server_names.is_empty())
        });
        let listener_filters = if needs_inspector {
            vec![ListenerFilter {
                name: TLS_INSPECTOR.to_string(),
                config_type: Some(listener_filter::ConfigType::TypedConfig(filters::any(
                    &TlsInspector::default(),
                ))),
                ..Default::default()
            }]
        } else {
            Vec::new()
        };
        out.push(Listener {
            name,
            address: Some(socket_address(
                listener.bind.as_deref().unwrap_or(naming::WILDCARD_ADDRESS),
                listener.port,
            )),
            traffic_direction: TrafficDirection::Outbound as i32,
            listener_filters,
            filter_chains,
            max_connections_to_accept_per_socket_event: Some(UInt32Value {
                value: MAX_CONNECTIONS_PER_SOCKET_EVENT,
            }),
            ..Default::default()
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}
