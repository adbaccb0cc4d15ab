//! `envoy.filters.network.http_connection_manager` for sidecar listeners: routes either
//! from RDS over ADS (outbound) or inline (inbound and the bootstrap's static listeners).

use envoy_types::pb::envoy::config::listener::v3::{filter, Filter};
use envoy_types::pb::envoy::config::route::v3::RouteConfiguration;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    http_connection_manager::{CodecType, RouteSpecifier, UpgradeConfig},
    HttpConnectionManager, Rds,
};
use envoy_types::pb::google::protobuf::BoolValue;

use super::router::router_filter;
use crate::translate::ads_config_source;

pub const NAME: &str = "envoy.filters.network.http_connection_manager";

/// Where the connection manager gets its routes.
pub enum Routes {
    /// By name, over the ADS stream.
    Rds(String),
    Inline(Box<RouteConfiguration>),
}

pub fn hcm_config(stat_prefix: &str, routes: Routes) -> HttpConnectionManager {
    let route_specifier = match routes {
        Routes::Rds(name) => RouteSpecifier::Rds(Rds {
            config_source: Some(ads_config_source()),
            route_config_name: name,
        }),
        Routes::Inline(config) => RouteSpecifier::RouteConfig(*config),
    };
    HttpConnectionManager {
        codec_type: CodecType::Auto as i32,
        stat_prefix: stat_prefix.to_string(),
        route_specifier: Some(route_specifier),
        http_filters: vec![router_filter()],
        // A sidecar is not the edge: keep the client's X-Forwarded-For as it is.
        use_remote_address: Some(BoolValue { value: false }),
        upgrade_configs: vec![UpgradeConfig {
            upgrade_type: "websocket".to_string(),
            ..Default::default()
        }],
        ..Default::default()
    }
}

pub fn hcm_filter(stat_prefix: &str, routes: Routes) -> Filter {
    Filter {
        name: NAME.to_string(),
        config_type: Some(filter::ConfigType::TypedConfig(super::any(&hcm_config(
            stat_prefix,
            routes,
        )))),
    }
}
