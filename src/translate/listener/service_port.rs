//! The outbound listener of one non-HTTP service port on one address (its ClusterIP, or a
//! pod address of a headless service): the L4 chains from the proxy's VirtualServices
//! (`l4_routes`) and, for a port whose protocol is not declared, the sniffed HTTP chain
//! with the service's own route config `<fqdn>:<port>` (`sniffing`).

use envoy_types::pb::envoy::config::listener::v3::Listener;

use super::chain_opts::outbound_listener;
use super::l4_routes::l4_chains;
use super::outbound::catch_all_cluster;
use super::sniffing::outbound_http_chain;
use crate::mesh::traffic::VirtualService;
use crate::mesh::{Service, ServicePort};
use crate::translate::naming;
use crate::translate::scope::Scope;

/// `rules`: the scope's VirtualServices with L4 routes (`l4_routes::l4_rules`).
pub fn service_port_listener(
    scope: &Scope,
    rules: &[&VirtualService],
    service: &Service,
    port: &ServicePort,
    address: &str,
) -> Listener {
    let mut chains = l4_chains(scope, rules, service, port);
    if port.protocol.is_sniffed() {
        chains.push(outbound_http_chain(
            &naming::tcp_listener(address, port.port),
            &naming::sniffed_route_config(&service.hostname, port.port),
        ));
    }
    let catch_all = catch_all_cluster(&scope.outbound_policy());
    outbound_listener(address, port.port, chains, catch_all)
}
