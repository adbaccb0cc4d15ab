//! What a router proxy holds: the outbound clusters and endpoints every proxy of its scope
//! gets, and, instead of a sidecar's capture listeners and outbound routes, its Gateways'
//! listeners, route configs and (with `--insecure-serve-gateway-secrets`) SDS Secrets.
//!
//! The listeners carry the AuthorizationPolicies and RequestAuthentications that select the
//! gateway workload (`authz::gateway`), named by the scope key as a sidecar's are.
//!
//! The gateway parts depend on the scope key (which names the Gateways) and on where the
//! servers listen, which the Services selecting the gateway workload decide; both make the
//! cache key, so routers that differ in either never share parts.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::listeners::gateway_listeners;
use super::merge::merge;
use super::routes::gateway_route_configs;
use super::secrets::gateway_secrets;
use super::select::listen_port;
use crate::envoy::{type_url, ProxyResources, ResourceMap};
use crate::mesh::security::WorkloadSecurity;
use crate::mesh::ProxyId;
use crate::translate::authz::gateway::secure_gateway;
use crate::translate::inbound_ports::workload_from_metadata;
use crate::translate::scope::{Scope, ScopeKey};
use crate::translate::{cached_bounded, encode_all, http_route, Translator, MAX_SCOPES};

/// Server port -> listen port, for every server port of the router's Gateways.
pub(crate) type PortMap = Vec<(u16, u16)>;

#[derive(Default)]
pub(crate) struct GatewayParts {
    listeners: Arc<ResourceMap>,
    routes: Arc<ResourceMap>,
    secrets: Arc<ResourceMap>,
}

fn build(scope: &Scope, ports: &PortMap, security: &WorkloadSecurity) -> GatewayParts {
    let lookup: BTreeMap<u16, u16> = ports.iter().copied().collect();
    let merged = merge(scope, |p| lookup.get(&p).copied().unwrap_or(p));
    let vs_routes =
        |vs: &_, port, context: &_| http_route::virtual_host_routes(scope, vs, port, context);
    let secrets = if scope.options.serve_gateway_secrets {
        encode_all(type_url::SECRET, gateway_secrets(scope, &merged), |s| {
            &s.name
        })
    } else {
        ResourceMap::new()
    };
    let mut listeners = gateway_listeners(scope, &merged);
    secure_gateway(&mut listeners, scope.model, security);
    GatewayParts {
        listeners: Arc::new(encode_all(type_url::LISTENER, listeners, |l| &l.name)),
        routes: Arc::new(encode_all(
            type_url::ROUTE,
            gateway_route_configs(scope, &merged, &vs_routes),
            |r| &r.name,
        )),
        secrets: Arc::new(secrets),
    }
}

impl Translator {
    /// Where the servers of the router's Gateways listen: through the Services that select
    /// its workload (its Pod in the model, else the labels of its node metadata).
    fn gateway_ports(&self, proxy: &ProxyId, scope: &Scope) -> PortMap {
        let claimed = workload_from_metadata(proxy);
        let workload = proxy
            .workload(&self.model)
            .map(|w| w.as_ref())
            .or(claimed.as_ref());
        let mut ports: PortMap = scope
            .gateways()
            .flat_map(|g| &g.servers)
            .map(|s| {
                (
                    s.port.number,
                    listen_port(&self.model, workload, s.port.number),
                )
            })
            .collect();
        ports.sort();
        ports.dedup();
        ports
    }

    /// Everything a router proxy should hold.
    pub(crate) fn router_resources(
        &self,
        proxy: &ProxyId,
        key: &ScopeKey,
        labels: &BTreeMap<String, String>,
    ) -> ProxyResources {
        let cluster_key = key.for_clusters(self.index());
        let scope = self.scope(key, labels);
        let ports = self.gateway_ports(proxy, &scope);
        let cache_key = (key.clone(), ports);
        let parts = cached_bounded(&self.gateway_parts, &cache_key, MAX_SCOPES, || {
            let security = WorkloadSecurity::from_keys(&self.model, &key.security);
            build(&scope, &cache_key.1, &security)
        });
        let mut out = ProxyResources::default();
        out.by_type
            .insert(type_url::CLUSTER, self.clusters(&cluster_key, labels));
        out.by_type
            .insert(type_url::ENDPOINT, self.endpoints(&cluster_key, labels));
        out.by_type
            .insert(type_url::LISTENER, parts.listeners.clone());
        out.by_type.insert(type_url::ROUTE, parts.routes.clone());
        if scope.options.serve_gateway_secrets {
            out.by_type.insert(type_url::SECRET, parts.secrets.clone());
        }
        out
    }
}
