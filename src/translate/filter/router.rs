//! `envoy.filters.http.router`: the last HTTP filter of every connection manager.

use envoy_types::pb::envoy::extensions::filters::http::router::v3::Router;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    http_filter, HttpFilter,
};

pub const NAME: &str = "envoy.filters.http.router";

pub fn router_filter() -> HttpFilter {
    HttpFilter {
        name: NAME.to_string(),
        config_type: Some(http_filter::ConfigType::TypedConfig(super::any(
            &Router::default(),
        ))),
        ..Default::default()
    }
}
