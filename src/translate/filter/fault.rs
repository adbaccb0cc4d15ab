//! `envoy.filters.http.fault` with no fault of its own: istiod puts it into every sidecar
//! connection manager so routes can carry fault injection as per-filter config.

use envoy_types::pb::envoy::extensions::filters::http::fault::v3::HttpFault;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    http_filter, HttpFilter,
};

pub const NAME: &str = "envoy.filters.http.fault";

pub fn fault_filter() -> HttpFilter {
    HttpFilter {
        name: NAME.to_string(),
        config_type: Some(http_filter::ConfigType::TypedConfig(super::any(
            &HttpFault::default(),
        ))),
        ..Default::default()
    }
}
