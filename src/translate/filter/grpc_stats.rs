//! `envoy.filters.http.grpc_stats`: gRPC call counts per cluster, configured as istiod
//! does (filter state for access logs, one set of stats for all methods so untrusted method
//! names cannot grow the stats table).

use envoy_types::pb::envoy::extensions::filters::http::grpc_stats::v3::{
    filter_config::PerMethodStatSpecifier, FilterConfig,
};
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    http_filter, HttpFilter,
};
use envoy_types::pb::google::protobuf::BoolValue;

pub const NAME: &str = "envoy.filters.http.grpc_stats";

pub fn grpc_stats_filter() -> HttpFilter {
    let config = FilterConfig {
        emit_filter_state: true,
        per_method_stat_specifier: Some(PerMethodStatSpecifier::StatsForAllMethods(BoolValue {
            value: false,
        })),
        ..Default::default()
    };
    HttpFilter {
        name: NAME.to_string(),
        config_type: Some(http_filter::ConfigType::TypedConfig(super::any(&config))),
        ..Default::default()
    }
}
