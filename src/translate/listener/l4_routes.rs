//! VirtualService `tcp` and `tls` routes for mesh traffic, as filter chains of a service
//! port's outbound listener, the way istiod builds them:
//! - TLS and HTTPS ports take `tls` routes: each match that applies to the proxy becomes a
//!   chain on its `sniHosts` (and `destinationSubnets`), once per distinct pair; without
//!   any, the port gets the plain chain to its service.
//! - Every other non-HTTP port (TCP, sniffed, Mongo, ...) takes `tcp` routes: the first
//!   route without a match, or with a match that applies and names no subnet, takes the
//!   whole port; matches with `destinationSubnets` add a chain on those subnets; unless
//!   a route took the port, the service's own chain catches the rest.
//!
//! A match applies when its `port` (if any) is the port, its `sourceLabels` are among the
//! proxy's labels, its `sourceNamespace` (if any) is the proxy's and its `gateways` (if
//! any) include `mesh`. A route to one destination is a tcp_proxy to that destination's
//! cluster (stats under the cluster's name); to several, a weighted tcp_proxy over the
//! destinations of positive weight (stats under `<name>.<namespace>` of the rule). Each
//! tcp_proxy carries the DestinationRule settings of its (first) destination's host
//! (`traffic_policy::tcp_proxy`).

use std::collections::BTreeSet;

use envoy_types::pb::envoy::config::listener::v3::Filter;
use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::TcpProxy;

use super::chain_opts::ChainOpts;
use crate::mesh::traffic::select::host_matches;
use crate::mesh::traffic::{
    Destination, DestinationRule, GatewayRef, L4Match, VirtualService, WeightedDestination,
};
use crate::mesh::{MeshModel, Protocol, Service, ServicePort};
use crate::translate::filter::tcp_proxy::{
    tcp_proxy_config, tcp_proxy_filter_from, weighted_tcp_proxy_config,
};
use crate::translate::naming;
use crate::translate::scope::Scope;
use crate::translate::traffic_policy;

/// Whether an L4 match applies to the scope's proxy for connections to `port`.
fn applies(scope: &Scope, m: &L4Match, port: u16) -> bool {
    (m.gateways.is_empty() || m.gateways.contains(&GatewayRef::Mesh))
        && m.port.is_none_or(|p| p == port)
        && scope.is_source(&m.source_labels, m.source_namespace.as_deref())
}

/// The DestinationRule the scope applies to traffic for `host`.
fn rule_for<'a>(scope: &Scope<'a>, host: &str) -> Option<&'a DestinationRule> {
    let namespace = scope
        .model
        .service_by_hostname(host)
        .map(|s| s.key.namespace.as_str());
    scope.destination_rule(host, namespace).map(|r| r.as_ref())
}

/// The rules among `virtual_services` (mesh-bound, visible to the proxy, in istiod's order)
/// that claim `service`'s host.
pub fn rules_for_host<'a>(
    virtual_services: &[&'a VirtualService],
    hostname: &str,
) -> Vec<&'a VirtualService> {
    virtual_services
        .iter()
        .filter(|vs| vs.hosts.iter().any(|h| host_matches(h, hostname)))
        .copied()
        .collect()
}

/// istiod's cluster for a route destination: its port when set, else the only port of
/// its service, else the port the connection came in on.
pub fn destination_cluster(
    model: &MeshModel,
    destination: &Destination,
    listener_port: u16,
) -> String {
    let port =
        destination
            .port
            .unwrap_or_else(|| match model.service_by_hostname(&destination.host) {
                Some(s) if s.ports.len() == 1 => s.ports[0].port,
                _ => listener_port,
            });
    naming::outbound_cluster(
        port,
        destination.subset.as_deref().unwrap_or_default(),
        &destination.host,
    )
}

/// A tcp_proxy filter from `config` with what `rule` puts on connections to `subset`
/// (empty: the whole host).
fn with_rule(mut config: TcpProxy, rule: Option<&DestinationRule>, subset: &str) -> Filter {
    if let Some(rule) = rule {
        traffic_policy::tcp_proxy::apply(&mut config, rule, subset);
    }
    tcp_proxy_filter_from(&config)
}

fn route_filters(
    scope: &Scope,
    vs: &VirtualService,
    route: &[WeightedDestination],
    port: u16,
) -> Vec<Filter> {
    // istiod takes the rule of the first destination's host for the whole route.
    let rule = route
        .first()
        .and_then(|d| rule_for(scope, &d.destination.host));
    if let [only] = route {
        let cluster = destination_cluster(scope.model, &only.destination, port);
        let subset = only.destination.subset.as_deref().unwrap_or_default();
        return vec![with_rule(tcp_proxy_config(&cluster), rule, subset)];
    }
    let clusters: Vec<(String, u32)> = route
        .iter()
        .filter(|d| d.weight > 0)
        .map(|d| {
            (
                destination_cluster(scope.model, &d.destination, port),
                d.weight,
            )
        })
        .collect();
    let stat_prefix = format!("{}.{}", vs.key.name, vs.key.namespace);
    vec![with_rule(
        weighted_tcp_proxy_config(&stat_prefix, &clusters),
        rule,
        "",
    )]
}

/// The service's own chain: everything to `outbound|<port>||<host>` (the only port of a
/// single-port service, as istiod picks it).
fn service_chain(scope: &Scope, service: &Service, port: &ServicePort) -> ChainOpts {
    let cluster_port = match service.ports.as_slice() {
        [only] => only.port,
        _ => port.port,
    };
    let cluster = naming::outbound_cluster(cluster_port, "", &service.hostname);
    ChainOpts {
        filters: vec![scope.tcp_proxy_filter(service, &cluster, "")],
        ..Default::default()
    }
}

fn tls_chains(
    scope: &Scope,
    service: &Service,
    port: &ServicePort,
    rules: &[&VirtualService],
) -> Vec<ChainOpts> {
    let mut out = Vec::new();
    let mut handled = BTreeSet::new();
    for vs in rules {
        for tls in vs.tls.iter().filter(|t| !t.route.is_empty()) {
            for m in tls.matches.iter().filter(|m| applies(scope, m, port.port)) {
                if !handled.insert((m.sni_hosts.clone(), m.destination_subnets.clone())) {
                    continue;
                }
                out.push(ChainOpts {
                    sni_hosts: m.sni_hosts.clone(),
                    destination_cidrs: m.destination_subnets.clone(),
                    filters: route_filters(scope, vs, &tls.route, port.port),
                    ..Default::default()
                });
            }
        }
    }
    if out.is_empty() {
        // A listener on the service's own address needs no SNI to know the service.
        out.push(service_chain(scope, service, port));
    }
    out
}

fn tcp_chains(
    scope: &Scope,
    service: &Service,
    port: &ServicePort,
    rules: &[&VirtualService],
) -> Vec<ChainOpts> {
    let mut out = Vec::new();
    'rules: for vs in rules {
        for tcp in vs.tcp.iter().filter(|t| !t.route.is_empty()) {
            let filters = || route_filters(scope, vs, &tcp.route, port.port);
            if tcp.matches.is_empty() {
                out.push(ChainOpts {
                    filters: filters(),
                    ..Default::default()
                });
                return out;
            }
            let mut subnets = Vec::new();
            for m in tcp.matches.iter().filter(|m| applies(scope, m, port.port)) {
                if m.destination_subnets.is_empty() {
                    out.push(ChainOpts {
                        filters: filters(),
                        ..Default::default()
                    });
                    break 'rules;
                }
                subnets.extend(m.destination_subnets.iter().cloned());
            }
            if !subnets.is_empty() {
                out.push(ChainOpts {
                    destination_cidrs: subnets,
                    filters: filters(),
                    ..Default::default()
                });
            }
        }
    }
    if !out.iter().any(ChainOpts::is_match_all) {
        out.push(service_chain(scope, service, port));
    }
    out
}

/// The VirtualServices of the scope with TCP or TLS routes: the only ones `l4_chains`
/// reads, collected once for all of a proxy's listeners.
pub fn l4_rules<'a>(scope: &Scope<'a>) -> Vec<&'a VirtualService> {
    scope
        .virtual_services()
        .filter(|vs| !vs.tcp.is_empty() || !vs.tls.is_empty())
        .map(|vs| vs.as_ref())
        .collect()
}

/// The L4 chains of a non-HTTP service port for the scope's proxy: TLS routes on TLS and
/// HTTPS ports, TCP routes on the others. `rules`: `l4_rules(scope)`.
pub fn l4_chains(
    scope: &Scope,
    rules: &[&VirtualService],
    service: &Service,
    port: &ServicePort,
) -> Vec<ChainOpts> {
    let rules = rules_for_host(rules, &service.hostname);
    match port.protocol {
        Protocol::Tls | Protocol::Https => tls_chains(scope, service, port, &rules),
        _ => tcp_chains(scope, service, port, &rules),
    }
}

#[cfg(test)]
#[path = "l4_routes_tests.rs"]
mod tests;
