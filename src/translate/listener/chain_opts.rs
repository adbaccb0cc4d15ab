//! Filter chains of an outbound per-port listener before they become Envoy's: what each
//! matches (destination CIDRs, SNI, transport and application protocols) and its network
//! filters; and the listener made from them, as istiod assembles it: a chain that matches
//! everything becomes the `default_filter_chain` when there are others, the only chain when
//! there are none; without one, unmatched connections take `PassthroughFilterChain` to the
//! catch-all cluster. The listener reads the ClientHello (tls_inspector) only when a chain
//! matches SNI, and sniffs HTTP (http_inspector) only when a chain matches application
//! protocols.

use std::collections::BTreeSet;

use envoy_types::pb::envoy::config::core::v3::{CidrRange, TrafficDirection};
use envoy_types::pb::envoy::config::listener::v3::{
    Filter, FilterChain, FilterChainMatch, Listener,
};
use envoy_types::pb::google::protobuf::{BoolValue, Duration, UInt32Value};
use prost::Message;

use super::outbound::TRANSPORT_SOCKET_CONNECT_TIMEOUT_SECS;
use super::{listener, listener_filters_without_deadline, tcp_chain};
use crate::translate::filter::http_inspector::http_inspector_filter;
use crate::translate::filter::tls_inspector::tls_inspector_filter;
use crate::translate::naming;

/// One filter chain to be: empty fields match anything.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChainOpts {
    /// SNI names (`server_names`); `*` among them matches any.
    pub sni_hosts: Vec<String>,
    /// IPs or CIDRs of the original destination (`prefix_ranges`).
    pub destination_cidrs: Vec<String>,
    pub application_protocols: Vec<String>,
    /// `raw_buffer` or `tls`; empty for any.
    pub transport_protocol: String,
    pub filters: Vec<Filter>,
}

impl ChainOpts {
    pub fn is_match_all(&self) -> bool {
        (self.sni_hosts.is_empty() || self.sni_hosts.iter().any(|h| h == "*"))
            && self.application_protocols.is_empty()
            && self.transport_protocol.is_empty()
            && self.destination_cidrs.is_empty()
    }

    /// The Envoy match; `None` for a chain that matches everything. Lists are sorted so
    /// that the same rules give the same bytes.
    pub fn to_match(&self) -> Option<FilterChainMatch> {
        if self.is_match_all() {
            return None;
        }
        let mut server_names = Vec::new();
        if !self.sni_hosts.iter().any(|h| h == "*") {
            server_names = self.sni_hosts.clone();
            server_names.sort();
        }
        let mut cidrs = self.destination_cidrs.clone();
        cidrs.sort();
        Some(FilterChainMatch {
            prefix_ranges: cidrs.iter().filter_map(|c| cidr_range(c)).collect(),
            server_names,
            transport_protocol: self.transport_protocol.clone(),
            application_protocols: self.application_protocols.clone(),
            ..Default::default()
        })
    }
}

/// `10.0.0.0/8` or a bare IP (a host prefix). The unspecified address is left out, as
/// istiod does: it stands for "any", which no prefix range says.
fn cidr_range(text: &str) -> Option<CidrRange> {
    let (address, len) = match text.split_once('/') {
        Some((a, l)) => (a, l.parse::<u32>().ok()?),
        None => (text, if text.contains(':') { 128 } else { 32 }),
    };
    let ip: std::net::IpAddr = address.parse().ok()?;
    if ip.is_unspecified() {
        return None;
    }
    Some(CidrRange {
        address_prefix: address.to_string(),
        prefix_len: Some(UInt32Value { value: len }),
    })
}

/// The per-port outbound listener `<address>_<port>` made of `chains` (in order), reached
/// only through `virtualOutbound`. Unmatched connections go to `catch_all_cluster`
/// (`PassthroughCluster`, or `BlackHoleCluster` when outbound traffic is registry-only).
/// A chain whose match repeats an earlier one is dropped: Envoy would reject the listener.
pub fn outbound_listener(
    address: &str,
    port: u16,
    chains: Vec<ChainOpts>,
    catch_all_cluster: &str,
) -> Listener {
    let name = naming::tcp_listener(address, port);
    let needs_tls_inspector = chains.iter().any(|c| !c.sni_hosts.is_empty());
    let needs_http_inspector = chains.iter().any(|c| !c.application_protocols.is_empty());
    let mut default_chain = None;
    let mut filter_chains = Vec::new();
    let mut seen = BTreeSet::new();
    for opts in chains {
        let filter_chain_match = opts.to_match();
        if !seen.insert(filter_chain_match.as_ref().map(Message::encode_to_vec)) {
            continue;
        }
        let chain = FilterChain {
            name: name.clone(),
            filters: opts.filters,
            transport_socket_connect_timeout: Some(Duration {
                seconds: TRANSPORT_SOCKET_CONNECT_TIMEOUT_SECS,
                nanos: 0,
            }),
            ..Default::default()
        };
        match filter_chain_match {
            None => default_chain = Some(chain),
            Some(m) => filter_chains.push(FilterChain {
                filter_chain_match: Some(m),
                ..chain
            }),
        }
    }
    let default_filter_chain = match (default_chain, filter_chains.is_empty()) {
        (Some(only), true) => {
            filter_chains.push(only);
            None
        }
        (Some(default), false) => Some(default),
        (None, _) => Some(FilterChain {
            filter_chain_match: Some(FilterChainMatch::default()),
            ..tcp_chain(naming::PASSTHROUGH_CHAIN, catch_all_cluster, None)
        }),
    };
    let mut listener_filters = Vec::new();
    // The TLS inspector goes first: the HTTP inspector leaves TLS connections alone.
    if needs_tls_inspector {
        listener_filters.push(tls_inspector_filter());
    }
    if needs_http_inspector {
        listener_filters.push(http_inspector_filter());
    }
    listener_filters_without_deadline(Listener {
        bind_to_port: Some(BoolValue { value: false }),
        listener_filters,
        filter_chains,
        default_filter_chain,
        ..listener(name, address, port, TrafficDirection::Outbound)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::translate::filter::tcp_proxy::tcp_proxy_filter;

    fn to(cluster: &str) -> Vec<Filter> {
        vec![tcp_proxy_filter(cluster)]
    }

    #[test]
    fn a_lone_match_all_chain_is_the_listeners_only_chain() {
        let l = outbound_listener(
            "10.96.0.20",
            3306,
            vec![ChainOpts {
                filters: to("outbound|3306||db.shop.svc.cluster.local"),
                ..Default::default()
            }],
            naming::PASSTHROUGH_CLUSTER,
        );
        assert_eq!(l.name, "10.96.0.20_3306");
        assert_eq!(l.filter_chains.len(), 1);
        assert!(l.filter_chains[0].filter_chain_match.is_none());
        assert!(l.default_filter_chain.is_none());
        assert!(l.listener_filters.is_empty());
    }

    #[test]
    fn sni_chains_fall_back_to_passthrough_and_need_the_tls_inspector() {
        let l = outbound_listener(
            "10.96.0.30",
            443,
            vec![
                ChainOpts {
                    sni_hosts: vec!["b.example".into(), "a.example".into()],
                    filters: to("outbound|443||a"),
                    ..Default::default()
                },
                // Same match again: dropped.
                ChainOpts {
                    sni_hosts: vec!["a.example".into(), "b.example".into()],
                    filters: to("outbound|443||b"),
                    ..Default::default()
                },
            ],
            naming::BLACKHOLE_CLUSTER,
        );
        assert_eq!(l.filter_chains.len(), 1);
        let m = l.filter_chains[0].filter_chain_match.as_ref().unwrap();
        assert_eq!(m.server_names, ["a.example", "b.example"]);
        let default = l.default_filter_chain.unwrap();
        assert_eq!(default.name, naming::PASSTHROUGH_CHAIN);
        assert_eq!(default.filters, to(naming::BLACKHOLE_CLUSTER));
        let names: Vec<&str> = l.listener_filters.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, [crate::translate::filter::tls_inspector::NAME]);
    }

    #[test]
    fn cidrs_become_prefix_ranges() {
        let opts = ChainOpts {
            destination_cidrs: vec!["10.1.0.0/16".into(), "10.0.0.7".into(), "0.0.0.0/0".into()],
            ..Default::default()
        };
        let m = opts.to_match().unwrap();
        let ranges: Vec<(String, u32)> = m
            .prefix_ranges
            .iter()
            .map(|r| (r.address_prefix.clone(), r.prefix_len.unwrap().value))
            .collect();
        assert_eq!(
            ranges,
            [("10.0.0.7".to_string(), 32), ("10.1.0.0".to_string(), 16)]
        );
        assert!(ChainOpts {
            sni_hosts: vec!["*".into()],
            ..Default::default()
        }
        .is_match_all());
    }
}
