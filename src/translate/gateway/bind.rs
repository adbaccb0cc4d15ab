//! VirtualServices bound to a Gateway (`gateways: [ns/name]`, short names already resolved
//! in the VirtualService's namespace) that the router proxy's namespace may see
//! (`exportTo`), and the clusters their L4 routes lead to.

use envoy_types::pb::envoy::config::listener::v3::{filter, Filter};
use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::{
    tcp_proxy::{weighted_cluster::ClusterWeight, ClusterSpecifier, WeightedCluster},
    TcpProxy,
};

use super::merge::Server;
use super::select::host_subset_of;
use crate::mesh::traffic::{GatewayRef, L4Match, VirtualService, WeightedDestination};
use crate::mesh::MeshModel;
use crate::translate::filter::tcp_proxy::{tcp_proxy_filter, NAME as TCP_PROXY};
use crate::translate::scope::Scope;
use crate::translate::{filter as filters, naming};

/// The VirtualServices naming `server`'s Gateway that the proxy may see, by namespace and
/// name.
pub fn bound<'m>(scope: &Scope<'m>, server: &Server<'m>) -> Vec<&'m VirtualService> {
    scope
        .gateway_virtual_services(&server.gateway.key)
        .map(|vs| vs.as_ref())
        .collect()
}

/// Whether any host of the VirtualService meets a host of the server (either within the
/// other), with the server's `ns/host` scoping: how L4 routes are bound.
pub fn hosts_meet(server: &Server<'_>, vs: &VirtualService) -> bool {
    let server_hosts = server.hosts_for(&vs.key.namespace);
    vs.hosts.iter().any(|v| {
        server_hosts
            .iter()
            .any(|s| host_subset_of(v, s) || host_subset_of(s, v))
    })
}

/// An L4 match applies to the server when its port (if any) is the server's and its
/// gateways (if any) include the server's Gateway.
pub fn l4_match_applies(m: &L4Match, server: &Server<'_>) -> bool {
    let port_ok = m.port.is_none_or(|p| p == server.server.port.number);
    let gateway_ok = m.gateways.is_empty()
        || m.gateways
            .contains(&GatewayRef::Gateway(server.gateway.key.clone()));
    port_ok && gateway_ok
}

/// `outbound|<port>|<subset>|<fqdn>`: the destination's port, else the service's only
/// port, else the server's port (istiod's choice for a destination without a port).
pub fn destination_cluster(
    model: &MeshModel,
    d: &WeightedDestination,
    listener_port: u16,
) -> String {
    let dest = &d.destination;
    let port = dest.port.unwrap_or_else(|| {
        model
            .service_by_hostname(&dest.host)
            .filter(|s| s.ports.len() == 1)
            .map(|s| s.ports[0].port)
            .unwrap_or(listener_port)
    });
    naming::outbound_cluster(port, dest.subset.as_deref().unwrap_or(""), &dest.host)
}

/// tcp_proxy to one destination, or weighted over several.
pub fn tcp_proxy(model: &MeshModel, route: &[WeightedDestination], listener_port: u16) -> Filter {
    if let [single] = route {
        return tcp_proxy_filter(&destination_cluster(model, single, listener_port));
    }
    let clusters: Vec<ClusterWeight> = route
        .iter()
        .filter(|d| d.weight > 0)
        .map(|d| ClusterWeight {
            name: destination_cluster(model, d, listener_port),
            weight: d.weight,
            metadata_match: None,
        })
        .collect();
    let config = TcpProxy {
        stat_prefix: clusters.first().map(|c| c.name.clone()).unwrap_or_default(),
        cluster_specifier: Some(ClusterSpecifier::WeightedClusters(WeightedCluster {
            clusters,
        })),
        ..Default::default()
    };
    Filter {
        name: TCP_PROXY.to_string(),
        config_type: Some(filter::ConfigType::TypedConfig(filters::any(&config))),
    }
}
