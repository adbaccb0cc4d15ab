//! The entry points translation uses, taking a proxy's `Scope`: the routes of one
//! VirtualService for a port (sidecars and gateways), and the VirtualService virtual hosts
//! of an outbound route config.

use std::collections::BTreeSet;

use envoy_types::pb::envoy::config::route::v3::{Route, VirtualHost};

use super::vhost::{port_virtual_hosts, Target};
use super::{build_routes, no_hash_policies, RouteContext};
use crate::mesh::traffic::{GatewayRef, VirtualService};
use crate::mesh::Service;
use crate::translate::naming;
use crate::translate::scope::Scope;

fn context<'a>(scope: &'a Scope, context: &'a GatewayRef) -> RouteContext<'a> {
    RouteContext {
        model: scope.model,
        proxy_namespace: scope.namespace,
        proxy_labels: scope.labels,
        gateway: context,
        hash_policies: &no_hash_policies,
    }
}

/// The Envoy routes of `vs` for requests on `port` of a proxy seen through `scope`, where
/// `context` is `GatewayRef::Mesh` for sidecars and `GatewayRef::Gateway(key)` for the
/// Gateway a gateway proxy serves. Empty when no match block applies.
pub fn virtual_host_routes(
    scope: &Scope,
    vs: &VirtualService,
    port: u16,
    context: &GatewayRef,
) -> Vec<Route> {
    build_routes(&self::context(scope, context), vs, port)
}

/// The virtual hosts that the scope's mesh VirtualServices give outbound port `port`
/// (whose HTTP services are `services`), and the hostnames of the services among them,
/// which get no default virtual host. Domains already in `taken` are not listed again
/// (Envoy rejects a domain in two virtual hosts); a virtual host left without domains, or
/// named like an earlier one, is dropped.
pub fn outbound_virtual_hosts(
    scope: &Scope,
    port: u16,
    services: &[&Service],
    taken: &mut BTreeSet<String>,
) -> (Vec<VirtualHost>, BTreeSet<String>) {
    let virtual_services: Vec<&VirtualService> =
        scope.virtual_services().map(|vs| vs.as_ref()).collect();
    if virtual_services.is_empty() {
        return (Vec::new(), BTreeSet::new());
    }
    let ctx = context(scope, &GatewayRef::Mesh);
    let (hosts, claimed) = port_virtual_hosts(&ctx, &virtual_services, services, port);
    let mut names = BTreeSet::new();
    let mut out = Vec::with_capacity(hosts.len());
    for host in &hosts {
        if !names.insert(host.hostname().to_string()) {
            continue;
        }
        let domains: Vec<String> = match &host.target {
            Target::Service(s) => naming::service_domains(
                &s.hostname,
                &s.key.name,
                &s.key.namespace,
                s.cluster_ip.as_deref(),
                scope.namespace,
            ),
            Target::Host(h) => vec![h.clone()],
        }
        .into_iter()
        .filter(|d| taken.insert(d.clone()))
        .collect();
        if !domains.is_empty() {
            out.push(host.virtual_host(port, domains));
        }
    }
    (out, claimed)
}
