//! `envoy.filters.listener.tls_inspector`: reads a TLS ClientHello, when the connection
//! starts with one, so that filter chains can match its SNI (`server_names`).

use envoy_types::pb::envoy::config::listener::v3::{listener_filter, ListenerFilter};
use envoy_types::pb::envoy::extensions::filters::listener::tls_inspector::v3::TlsInspector;

pub const NAME: &str = "envoy.filters.listener.tls_inspector";

pub fn tls_inspector_filter() -> ListenerFilter {
    ListenerFilter {
        name: NAME.to_string(),
        config_type: Some(listener_filter::ConfigType::TypedConfig(super::any(
            &TlsInspector::default(),
        ))),
        ..Default::default()
    }
}
