//! `envoy.filters.listener.original_dst`: restores the destination iptables rewrote, so
//! the inbound listener can pick a filter chain by the port the client dialled.

use envoy_types::pb::envoy::config::listener::v3::{listener_filter, ListenerFilter};
use envoy_types::pb::envoy::extensions::filters::listener::original_dst::v3::OriginalDst;

pub const NAME: &str = "envoy.filters.listener.original_dst";

pub fn original_dst_filter() -> ListenerFilter {
    ListenerFilter {
        name: NAME.to_string(),
        config_type: Some(listener_filter::ConfigType::TypedConfig(super::any(
            &OriginalDst::default(),
        ))),
        ..Default::default()
    }
}
