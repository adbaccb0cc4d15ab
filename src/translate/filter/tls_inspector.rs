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

/// The inspector only on connections to `ports` (see `http_inspector_filter_on_ports`):
/// a server-first protocol elsewhere is not held waiting for a ClientHello.
pub fn tls_inspector_filter_on_ports(ports: &[u16]) -> ListenerFilter {
    ListenerFilter {
        filter_disabled: Some(super::http_inspector::disabled_but_on(ports)),
        ..tls_inspector_filter()
    }
}
