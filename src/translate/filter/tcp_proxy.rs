//! `envoy.filters.network.tcp_proxy`: plain TCP forwarding to one cluster, or to several
//! by weight (a VirtualService `tcp`/`tls` route with weighted destinations).

use envoy_types::pb::envoy::config::listener::v3::{filter, Filter};
use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::{
    tcp_proxy::{weighted_cluster::ClusterWeight, ClusterSpecifier, WeightedCluster},
    TcpProxy,
};

pub const NAME: &str = "envoy.filters.network.tcp_proxy";

/// A tcp_proxy to `cluster`; the stat prefix is the cluster name, as Istio does.
pub fn tcp_proxy_filter(cluster: &str) -> Filter {
    tcp_proxy_filter_from(&tcp_proxy_config(cluster))
}

/// The config of `tcp_proxy_filter`, for callers that add to it.
pub fn tcp_proxy_config(cluster: &str) -> TcpProxy {
    TcpProxy {
        stat_prefix: cluster.to_string(),
        cluster_specifier: Some(ClusterSpecifier::Cluster(cluster.to_string())),
        ..Default::default()
    }
}

/// The filter running `config`.
pub fn tcp_proxy_filter_from(config: &TcpProxy) -> Filter {
    Filter {
        name: NAME.to_string(),
        config_type: Some(filter::ConfigType::TypedConfig(super::any(config))),
    }
}

/// A tcp_proxy config choosing one of `clusters` per connection, in proportion to the
/// weights. istiod names its stats after the VirtualService: `<name>.<namespace>`.
pub fn weighted_tcp_proxy_config(stat_prefix: &str, clusters: &[(String, u32)]) -> TcpProxy {
    TcpProxy {
        stat_prefix: stat_prefix.to_string(),
        cluster_specifier: Some(ClusterSpecifier::WeightedClusters(WeightedCluster {
            clusters: clusters
                .iter()
                .map(|(name, weight)| ClusterWeight {
                    name: name.clone(),
                    weight: *weight,
                    ..Default::default()
                })
                .collect(),
        })),
        ..Default::default()
    }
}
