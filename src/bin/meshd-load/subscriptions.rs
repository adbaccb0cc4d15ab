//! What Envoy subscribes to after wildcard CDS and LDS: the EDS clusters' load assignments
//! and the route configurations the listeners' HTTP connection managers name over RDS.

use std::collections::BTreeSet;

use envoy_types::pb::envoy::config::cluster::v3::{cluster, Cluster};
use envoy_types::pb::envoy::config::listener::v3::{filter, Listener};
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    http_connection_manager::RouteSpecifier, HttpConnectionManager,
};
use envoy_types::pb::google::protobuf::Any;
use prost::Message;

pub const CDS: &str = "type.googleapis.com/envoy.config.cluster.v3.Cluster";
pub const EDS: &str = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment";
pub const LDS: &str = "type.googleapis.com/envoy.config.listener.v3.Listener";
pub const RDS: &str = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration";
const HCM: &str = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";

/// The load assignment names of the EDS clusters among `clusters` (the EDS service name
/// when set, as Envoy asks for that).
pub fn eds_names<'a>(clusters: impl IntoIterator<Item = &'a Any>) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for any in clusters {
        let Ok(cluster) = Cluster::decode(any.value.as_slice()) else {
            continue;
        };
        let is_eds = matches!(
            cluster.cluster_discovery_type,
            Some(cluster::ClusterDiscoveryType::Type(t)) if t == cluster::DiscoveryType::Eds as i32
        );
        if !is_eds {
            continue;
        }
        let service_name = cluster
            .eds_cluster_config
            .map(|c| c.service_name)
            .unwrap_or_default();
        names.insert(if service_name.is_empty() {
            cluster.name
        } else {
            service_name
        });
    }
    names
}

/// The route configuration names the listeners' HTTP connection managers fetch over RDS.
pub fn rds_names<'a>(listeners: impl IntoIterator<Item = &'a Any>) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for any in listeners {
        let Ok(listener) = Listener::decode(any.value.as_slice()) else {
            continue;
        };
        let chains = listener
            .filter_chains
            .iter()
            .chain(listener.default_filter_chain.iter());
        for filter in chains.flat_map(|c| c.filters.iter()) {
            let Some(filter::ConfigType::TypedConfig(config)) = &filter.config_type else {
                continue;
            };
            if config.type_url != HCM {
                continue;
            }
            let Ok(hcm) = HttpConnectionManager::decode(config.value.as_slice()) else {
                continue;
            };
            if let Some(RouteSpecifier::Rds(rds)) = hcm.route_specifier {
                names.insert(rds.route_config_name);
            }
        }
    }
    names
}

/// A `Resource` wrapper (Delta, or SotW when the server wraps) unwrapped to its payload.
pub fn unwrap_resource(any: &Any) -> Option<Any> {
    use envoy_types::pb::envoy::service::discovery::v3::Resource;
    if any.type_url == "type.googleapis.com/envoy.service.discovery.v3.Resource" {
        return Resource::decode(any.value.as_slice()).ok()?.resource;
    }
    Some(any.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use envoy_types::pb::envoy::config::cluster::v3::cluster::{
        ClusterDiscoveryType, DiscoveryType, EdsClusterConfig,
    };
    use envoy_types::pb::envoy::config::listener::v3::{Filter, FilterChain};
    use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::Rds;

    fn any<M: Message>(type_url: &str, m: &M) -> Any {
        Any {
            type_url: type_url.to_string(),
            value: m.encode_to_vec(),
        }
    }

    #[test]
    fn eds_names_use_the_service_name_and_skip_other_types() {
        let eds = Cluster {
            name: "outbound|80||a".into(),
            cluster_discovery_type: Some(ClusterDiscoveryType::Type(DiscoveryType::Eds as i32)),
            eds_cluster_config: Some(EdsClusterConfig {
                service_name: "a-eds".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let plain = Cluster {
            name: "outbound|80||b".into(),
            cluster_discovery_type: Some(ClusterDiscoveryType::Type(DiscoveryType::Eds as i32)),
            ..Default::default()
        };
        let passthrough = Cluster {
            name: "PassthroughCluster".into(),
            cluster_discovery_type: Some(ClusterDiscoveryType::Type(
                DiscoveryType::OriginalDst as i32,
            )),
            ..Default::default()
        };
        let all = [any(CDS, &eds), any(CDS, &plain), any(CDS, &passthrough)];
        let names: Vec<_> = eds_names(&all).into_iter().collect();
        assert_eq!(names, ["a-eds", "outbound|80||b"]);
    }

    #[test]
    fn rds_names_come_from_http_connection_managers() {
        let hcm = HttpConnectionManager {
            route_specifier: Some(RouteSpecifier::Rds(Rds {
                route_config_name: "80".into(),
                ..Default::default()
            })),
            ..Default::default()
        };
        let listener = Listener {
            name: "0.0.0.0_80".into(),
            filter_chains: vec![FilterChain {
                filters: vec![Filter {
                    name: "envoy.filters.network.http_connection_manager".into(),
                    config_type: Some(filter::ConfigType::TypedConfig(any(HCM, &hcm))),
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let names: Vec<_> = rds_names(&[any(LDS, &listener)]).into_iter().collect();
        assert_eq!(names, ["80"]);
    }
}
