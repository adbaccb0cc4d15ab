//! `envoy.filters.http.cors` with no policy of its own: istiod puts it into every sidecar
//! connection manager so virtual hosts and routes can carry CORS policies.

use envoy_types::pb::envoy::extensions::filters::http::cors::v3::Cors;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    http_filter, HttpFilter,
};

pub const NAME: &str = "envoy.filters.http.cors";

pub fn cors_filter() -> HttpFilter {
    HttpFilter {
        name: NAME.to_string(),
        config_type: Some(http_filter::ConfigType::TypedConfig(super::any(
            &Cors::default(),
        ))),
        ..Default::default()
    }
}
