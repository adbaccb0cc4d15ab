//! The inbound side: `virtualInbound` on 15006, where iptables sends connections to the
//! pod. The `original_dst` listener filter restores the port the client dialled; one
//! filter chain per served target port (`0.0.0.0_<port>`) sends it to `inbound|<port>||`,
//! through the HTTP connection manager for HTTP ports. Anything else passes through to the
//! application as dialled. Depends only on the inbound port set, so proxies with the same
//! ports share it.

use envoy_types::pb::envoy::config::core::v3::TrafficDirection;
use envoy_types::pb::envoy::config::listener::v3::{FilterChain, Listener};

use super::{destination_port_match, listener, tcp_chain};
use crate::translate::filter::hcm::{hcm_filter, Routes};
use crate::translate::filter::original_dst::original_dst_filter;
use crate::translate::inbound_ports::InboundPorts;
use crate::translate::naming;
use crate::translate::route::inbound_route_config;

fn port_chain(port: u16, http: bool) -> FilterChain {
    let name = naming::wildcard_listener(port);
    if !http {
        return tcp_chain(&name, &naming::inbound_cluster(port), Some(port));
    }
    FilterChain {
        name,
        filter_chain_match: Some(destination_port_match(port)),
        filters: vec![hcm_filter(
            &naming::inbound_stat_prefix(port),
            Routes::Inline(Box::new(inbound_route_config(port))),
        )],
        ..Default::default()
    }
}

pub fn virtual_inbound(ports: &InboundPorts) -> Listener {
    let mut filter_chains = vec![tcp_chain(
        &naming::blackhole_chain(naming::VIRTUAL_INBOUND),
        naming::BLACKHOLE_CLUSTER,
        // A connection whose original destination is 15006 itself would loop.
        Some(naming::INBOUND_CAPTURE_PORT),
    )];
    filter_chains.extend(
        ports
            .iter()
            .map(|(port, protocol)| port_chain(*port, protocol.is_http())),
    );
    Listener {
        listener_filters: vec![original_dst_filter()],
        filter_chains,
        default_filter_chain: Some(tcp_chain(
            naming::PASSTHROUGH_CHAIN,
            naming::INBOUND_PASSTHROUGH_CLUSTER,
            None,
        )),
        ..listener(
            naming::VIRTUAL_INBOUND.to_string(),
            naming::WILDCARD_ADDRESS,
            naming::INBOUND_CAPTURE_PORT,
            TrafficDirection::Inbound,
        )
    }
}
