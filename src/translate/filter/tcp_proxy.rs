//! `envoy.filters.network.tcp_proxy`: plain TCP forwarding to one cluster.

use envoy_types::pb::envoy::config::listener::v3::{filter, Filter};
use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::{
    tcp_proxy::ClusterSpecifier, TcpProxy,
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
