//! Listeners: the outbound side (`virtualOutbound` and the per-port listeners it hands
//! connections to) and the inbound side (`virtualInbound`).

pub mod inbound;
pub mod outbound;

use envoy_types::pb::envoy::config::core::v3::TrafficDirection;
use envoy_types::pb::envoy::config::listener::v3::{FilterChain, FilterChainMatch, Listener};
use envoy_types::pb::google::protobuf::UInt32Value;

use super::filter::tcp_proxy::tcp_proxy_filter;
use super::socket_address;

/// A listener on `address:port` with the given direction.
fn listener(name: String, address: &str, port: u16, direction: TrafficDirection) -> Listener {
    Listener {
        name,
        address: Some(socket_address(address, port)),
        traffic_direction: direction as i32,
        ..Default::default()
    }
}

/// A chain forwarding everything to `cluster` with tcp_proxy.
fn tcp_chain(name: &str, cluster: &str, match_port: Option<u16>) -> FilterChain {
    FilterChain {
        name: name.to_string(),
        filter_chain_match: match_port.map(destination_port_match),
        filters: vec![tcp_proxy_filter(cluster)],
        ..Default::default()
    }
}

fn destination_port_match(port: u16) -> FilterChainMatch {
    FilterChainMatch {
        destination_port: Some(UInt32Value {
            value: u32::from(port),
        }),
        ..Default::default()
    }
}
