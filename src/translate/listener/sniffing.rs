//! Protocol sniffing, for ports whose protocol is not declared (`Protocol::Unsupported`),
//! with stock Envoy filters as istiod sets them up: `http_inspector` reads the first bytes
//! of the connection and names HTTP/1.1 or h2c as its application protocol; a chain
//! matching those protocols on plaintext (`raw_buffer`) connections runs the HTTP
//! connection manager, and everything else takes the port's TCP chain.
//!
//! Outbound, the service's listener `<VIP>_<port>` gets the HTTP chain next to its TCP
//! chains, with routes over RDS from `<fqdn>:<port>` (that service alone). Inbound, the
//! target port gets the same two chains on `virtualInbound`, both named `0.0.0.0_<port>`
//! (`mtls::inbound` has them, and their mTLS variants), and the inspector runs only for the
//! sniffed ports.

use super::chain_opts::ChainOpts;
use crate::translate::filter::hcm::{hcm_filter, Routes, Side};
use crate::translate::filter::http_inspector::PLAINTEXT_HTTP_ALPNS;
use crate::translate::naming;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::translate::filter::hcm;

    #[test]
    fn outbound_http_chain_matches_detected_plaintext_http() {
        let chain = outbound_http_chain("10.96.0.10_8080", "echo.demo.svc.cluster.local:8080");
        let m = chain.to_match().unwrap();
        assert_eq!(m.application_protocols, ["http/1.1", "h2c"]);
        assert_eq!(m.transport_protocol, "raw_buffer");
        assert!(m.prefix_ranges.is_empty() && m.server_names.is_empty());
        assert_eq!(chain.filters[0].name, hcm::NAME);
    }
}
