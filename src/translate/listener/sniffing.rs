//! Protocol sniffing, for ports whose protocol is not declared (`Protocol::Unsupported`),
//! with stock Envoy filters as istiod sets them up: `http_inspector` reads the first bytes
//! of the connection and names HTTP/1.1 or h2c as its application protocol; a chain
//! matching those protocols on plaintext (`raw_buffer`) connections runs the HTTP
//! connection manager, and everything else takes the port's TCP chain.
//!
//! Outbound, the service's listener `<VIP>_<port>` gets the HTTP chain next to its TCP
//! chains, with routes over RDS from `<fqdn>:<port>` (that service alone). Inbound, the
//! target port gets two chains on `virtualInbound`, both named `0.0.0.0_<port>`, and the
//! inspector runs only for the sniffed ports.

use envoy_types::pb::envoy::config::listener::v3::{FilterChain, FilterChainMatch};
use envoy_types::pb::google::protobuf::UInt32Value;

use super::chain_opts::ChainOpts;
use crate::mesh::Protocol;
use crate::translate::filter::hcm::{hcm_filter, Routes, Side};
use crate::translate::filter::http_inspector::PLAINTEXT_HTTP_ALPNS;
use crate::translate::filter::tcp_proxy::tcp_proxy_filter;
use crate::translate::naming;
use crate::translate::route::inbound_route_config;

/// The transport protocol Envoy gives connections no TLS inspector recognised.
pub const RAW_BUFFER: &str = "raw_buffer";

fn http_alpns() -> Vec<String> {
    PLAINTEXT_HTTP_ALPNS.iter().map(|p| p.to_string()).collect()
}

/// The HTTP chain of a sniffed outbound listener named `listener`, with routes from
/// `route_config` over RDS.
pub fn outbound_http_chain(listener: &str, route_config: &str) -> ChainOpts {
    ChainOpts {
        application_protocols: http_alpns(),
        transport_protocol: RAW_BUFFER.to_string(),
        filters: vec![hcm_filter(
            Side::Outbound,
            &naming::outbound_listener_stat_prefix(listener),
            Routes::Rds(route_config.to_string()),
        )],
        ..Default::default()
    }
}

fn inbound_match(port: u16, application_protocols: Vec<String>) -> Option<FilterChainMatch> {
    Some(FilterChainMatch {
        destination_port: Some(UInt32Value {
            value: u32::from(port),
        }),
        transport_protocol: RAW_BUFFER.to_string(),
        application_protocols,
        ..Default::default()
    })
}

/// The chains of a sniffed target port on `virtualInbound`: detected HTTP through the
/// connection manager, anything else through tcp_proxy, both to `inbound|<port>||`.
pub fn inbound_chains(port: u16) -> [FilterChain; 2] {
    let name = naming::wildcard_listener(port);
    let cluster = naming::inbound_cluster(port);
    let http = FilterChain {
        name: name.clone(),
        filter_chain_match: inbound_match(port, http_alpns()),
        filters: vec![hcm_filter(
            Side::Inbound { http2: false },
            &naming::inbound_stat_prefix(port),
            Routes::Inline(Box::new(inbound_route_config(port, Protocol::Unsupported))),
        )],
        ..Default::default()
    };
    let tcp = FilterChain {
        name,
        filter_chain_match: inbound_match(port, Vec::new()),
        filters: vec![tcp_proxy_filter(&cluster)],
        ..Default::default()
    };
    [http, tcp]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::translate::filter::{hcm, tcp_proxy};

    #[test]
    fn outbound_http_chain_matches_detected_plaintext_http() {
        let chain = outbound_http_chain("10.96.0.10_8080", "echo.demo.svc.cluster.local:8080");
        let m = chain.to_match().unwrap();
        assert_eq!(m.application_protocols, ["http/1.1", "h2c"]);
        assert_eq!(m.transport_protocol, "raw_buffer");
        assert!(m.prefix_ranges.is_empty() && m.server_names.is_empty());
        assert_eq!(chain.filters[0].name, hcm::NAME);
    }

    #[test]
    fn inbound_chains_split_one_port_by_detected_protocol() {
        let [http, tcp] = inbound_chains(8080);
        assert_eq!(http.name, "0.0.0.0_8080");
        assert_eq!(tcp.name, "0.0.0.0_8080");
        let hm = http.filter_chain_match.unwrap();
        let tm = tcp.filter_chain_match.unwrap();
        assert_eq!(hm.destination_port, tm.destination_port);
        assert_eq!(hm.application_protocols, ["http/1.1", "h2c"]);
        assert!(tm.application_protocols.is_empty());
        assert_eq!(http.filters[0].name, hcm::NAME);
        assert_eq!(tcp.filters[0].name, tcp_proxy::NAME);
    }
}
