//! The entry points translation uses, taking a proxy's `Scope`: the routes of one
//! VirtualService for a port (sidecars and gateways), and the VirtualService virtual hosts
//! of an outbound route config.

use std::collections::BTreeSet;

use envoy_types::pb::envoy::config::route::v3::{Route, VirtualHost};

use super::vhost::{port_virtual_hosts, Target};
use super::{build_routes, RouteContext};
use crate::mesh::traffic::{GatewayRef, VirtualService};
use crate::mesh::Service;
use crate::translate::naming;
use crate::translate::scope::Scope;

/// Runs `f` with the route context of `scope` serving `gateway`: the proxy's namespace and
/// labels, and the consistent-hash policies of the DestinationRules it sees.
fn with_context<R>(scope: &Scope, gateway: &GatewayRef, f: impl FnOnce(&RouteContext) -> R) -> R {
    let hash_policies =
        |host: &str, subset: &str, port: u16| scope.hash_policies(host, subset, port);
    f(&RouteContext {
        model: scope.model,
        proxy_namespace: scope.namespace,
        proxy_labels: scope.labels,
        gateway,
        hash_policies: &hash_policies,
    })
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
    with_context(scope, context, |ctx| build_routes(ctx, vs, port))
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
    let (hosts, claimed) = with_context(scope, &GatewayRef::Mesh, |ctx| {
        port_virtual_hosts(ctx, &virtual_services, services, port)
    });
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
