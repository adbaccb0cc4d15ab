//! Listeners: the outbound side (`virtualOutbound` and the per-port listeners it hands
//! connections to) and the inbound side (`virtualInbound`).

pub mod chain_opts;
pub mod inbound;
pub mod l4_routes;
pub mod outbound;
pub mod outbound_by_name;
pub mod service_port;
pub mod sniffing;

use envoy_types::pb::envoy::config::core::v3::TrafficDirection;
use envoy_types::pb::envoy::config::listener::v3::{FilterChain, FilterChainMatch, Listener};
use envoy_types::pb::google::protobuf::{Duration, UInt32Value};

use super::filter::tcp_proxy::tcp_proxy_filter;
use super::socket_address;

/// Connections the capture listeners accept per socket event (istiod's default, 1): under
/// a burst, one worker does not take them all while the others idle.
pub const MAX_CONNECTIONS_PER_SOCKET_EVENT: u32 = 1;

fn max_connections_per_socket_event() -> Option<UInt32Value> {
    Some(UInt32Value {
        value: MAX_CONNECTIONS_PER_SOCKET_EVENT,
    })
}

/// Listener filter settings of the listeners istiod sets them on (`virtualInbound`, the
/// per-port outbound listeners): no deadline for the listener filters (`0s`, istiod's
/// protocol detection timeout) and, were one ever set, go on to the filter chains when it
/// passes instead of closing the connection.
fn listener_filters_without_deadline(l: Listener) -> Listener {
    Listener {
        listener_filters_timeout: Some(Duration::default()),
        continue_on_listener_filters_timeout: true,
        ..l
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::traffic::OutboundPolicy;
    use crate::mesh::Protocol;
    use crate::translate::inbound_ports::InboundPorts;

    #[test]
    fn capture_listeners_accept_one_connection_per_event() {
        let ports = InboundPorts::from([(9080, Protocol::Http)]);
        for l in [
            outbound::virtual_outbound(&OutboundPolicy::AllowAny),
            inbound::virtual_inbound(&ports, &Default::default(), true),
        ] {
            assert_eq!(
                l.max_connections_to_accept_per_socket_event,
                Some(UInt32Value { value: 1 }),
                "{}",
                l.name
            );
        }
    }

    #[test]
    fn listener_filters_have_no_deadline_where_istiod_says_so() {
        let ports = InboundPorts::from([(9080, Protocol::Http)]);
        let inbound = inbound::virtual_inbound(&ports, &Default::default(), true);
        assert_eq!(inbound.listener_filters_timeout, Some(Duration::default()));
        assert!(inbound.continue_on_listener_filters_timeout);
        // virtualOutbound has no listener filter and istiod sets neither there.
        let outbound = outbound::virtual_outbound(&OutboundPolicy::AllowAny);
        assert!(outbound.listener_filters_timeout.is_none());
        assert!(!outbound.continue_on_listener_filters_timeout);
    }
}
