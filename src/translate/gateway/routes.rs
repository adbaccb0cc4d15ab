//! Route configs of a router proxy, one per name its listeners ask for, as istiod builds
//! them: for each HTTP server behind the name, each bound VirtualService whose hosts meet
//! the server's (the more specific host of each pair) adds its routes to a virtual host
//! per host, `<host>:<server port>`; `httpsRedirect` makes those hosts (and the server's
//! other hosts, in hosts of their own) require TLS; a config no VirtualService fills gets a
//! `blackhole:<port>` host that answers 404.

use std::collections::BTreeMap;

use envoy_types::pb::envoy::config::route::v3::{
    virtual_host::TlsRequirementType, Route, RouteConfiguration, VirtualHost,
};
use envoy_types::pb::google::protobuf::{BoolValue, UInt32Value};

use super::bind::bound;
use super::merge::{MergedGateway, Server};
use super::select::intersect_hosts;
use crate::mesh::traffic::{GatewayRef, VirtualService};
use crate::translate::naming;
use crate::translate::route::MAX_DIRECT_RESPONSE_BODY_BYTES;
use crate::translate::scope::Scope;

/// Builds the routes of one VirtualService for one server port and gateway.
pub type VsRoutes<'f> = dyn Fn(&VirtualService, u16, &GatewayRef) -> Vec<Route> + 'f;

fn vhost(host: &str, port: u16) -> VirtualHost {
    VirtualHost {
        name: naming::virtual_host(host, port),
        domains: vec![host.to_string()],
        include_request_attempt_count: true,
        ..Default::default()
    }
}

fn route_config<'m>(
    scope: &Scope<'m>,
    name: &str,
    servers: &[&Server<'m>],
    vs_routes: &VsRoutes<'_>,
) -> RouteConfiguration {
    let mut hosts: BTreeMap<String, VirtualHost> = BTreeMap::new();
    for server in servers {
        let port = server.server.port.number;
        let redirect = server.server.tls.as_ref().is_some_and(|t| t.https_redirect);
        let context = GatewayRef::Gateway(server.gateway.key.clone());
        for vs in bound(scope, server) {
            let matched = intersect_hosts(&server.hosts_for(&vs.key.namespace), &vs.hosts);
            if matched.is_empty() {
                continue;
            }
            let routes = vs_routes(vs, port, &context);
            for host in matched {
                let v = hosts
                    .entry(host.clone())
                    .or_insert_with(|| vhost(&host, port));
                v.routes.extend(routes.iter().cloned());
                if redirect {
                    v.require_tls = TlsRequirementType::All as i32;
                }
            }
        }
        if redirect {
            for h in &server.server.hosts {
                let host = h.host.to_ascii_lowercase();
                let v = hosts
                    .entry(host.clone())
                    .or_insert_with(|| vhost(&host, port));
                v.require_tls = TlsRequirementType::All as i32;
            }
        }
    }
    let virtual_hosts = if hosts.is_empty() {
        let port = servers.first().map_or(0, |s| s.server.port.number);
        vec![VirtualHost {
            name: naming::gateway_blackhole_vhost(port),
            domains: vec!["*".to_string()],
            ..Default::default()
        }]
    } else {
        // By name, so the output does not depend on the order of the inputs.
        let mut v: Vec<VirtualHost> = hosts.into_values().collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    };
    RouteConfiguration {
        name: name.to_string(),
        virtual_hosts,
        validate_clusters: Some(BoolValue { value: false }),
        ignore_port_in_host_matching: true,
        max_direct_response_body_size_bytes: Some(UInt32Value {
            value: MAX_DIRECT_RESPONSE_BODY_BYTES,
        }),
        ..Default::default()
    }
}

/// Every route config the merged gateway's listeners name.
pub fn gateway_route_configs<'m>(
    scope: &Scope<'m>,
    merged: &MergedGateway<'m>,
    vs_routes: &VsRoutes<'_>,
) -> Vec<RouteConfiguration> {
    merged
        .servers_by_route()
        .into_iter()
        .map(|(name, servers)| route_config(scope, name, &servers, vs_routes))
        .collect()
}
