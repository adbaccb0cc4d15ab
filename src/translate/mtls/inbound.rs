//! The server side of mesh mTLS: which filter chains a `virtualInbound` target port gets
//! under its PeerAuthentication mode, after istiod's inbound filter chain match options.
//!
//! - DISABLE: the plaintext chains meshd had before (declared HTTP or TCP: one chain on the
//!   port; undeclared: HTTP detected by `http_inspector`, else TCP).
//! - STRICT: mTLS only. A declared port gets one chain on the port that terminates mTLS
//!   (a plaintext client fails the handshake). An undeclared port tells HTTP (istio HTTP
//!   ALPNs) from anything else, plus a chain on the port alone so that plaintext cannot
//!   slip through to the passthrough chain.
//! - PERMISSIVE: mTLS from clients offering an Istio ALPN, found by `tls_inspector`, and
//!   plaintext (`raw_buffer`) on the same port; TCP ports also pass other TLS through to
//!   the application.
//!
//! istiod matches `transport_protocol: tls` on STRICT ports too, and catches plaintext with
//! mTLS-only passthrough chains; meshd's single chain per port refuses plaintext the same
//! way without the TLS inspector having to read every connection first.

use envoy_types::pb::envoy::config::core::v3::{transport_socket::ConfigType, TransportSocket};
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    CertificateValidationContext, DownstreamTlsContext,
};
use envoy_types::pb::google::protobuf::BoolValue;

use super::{mesh_tls_context, tls_12_to_13, ALL_ISTIO_ALPNS, HTTP_ISTIO_ALPNS, TCP_ISTIO_ALPNS};
use crate::mesh::peer_authentication::MtlsMode;
use crate::mesh::Protocol;
use crate::translate::filter::any;
use crate::translate::filter::http_inspector::PLAINTEXT_HTTP_ALPNS;
use crate::translate::listener::sniffing::RAW_BUFFER;
use crate::translate::traffic_policy::tls::TLS_TRANSPORT_SOCKET;

/// The transport protocol `tls_inspector` gives TLS connections.
pub const TLS: &str = "tls";

/// Cipher suites of mesh mTLS servers (istiod's `SupportedCiphers`).
pub const CIPHER_SUITES: [&str; 6] = [
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "AES256-GCM-SHA384",
    "AES128-GCM-SHA256",
];

/// ALPN the server offers (istiod's `ALPNHttp`; never `istio`, which would stand in the way
/// of negotiating HTTP/2).
pub const SERVER_ALPNS: [&str; 2] = ["h2", "http/1.1"];

/// One filter chain of a target port, before it becomes Envoy's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variant {
    /// `tls`, `raw_buffer`, or empty for any.
    pub transport_protocol: &'static str,
    pub application_protocols: Vec<String>,
    /// Whether the chain terminates mesh mTLS.
    pub mtls: bool,
    /// Whether the chain runs the HTTP connection manager (else tcp_proxy).
    pub http: bool,
}

fn variant(transport: &'static str, alpns: &[&str], mtls: bool, http: bool) -> Variant {
    Variant {
        transport_protocol: transport,
        application_protocols: alpns.iter().map(|a| a.to_string()).collect(),
        mtls,
        http,
    }
}

/// The chains of a target port with `protocol` under `mode` (`Unset` counts as DISABLE;
/// `mesh::peer_authentication` never yields it).
pub fn variants(mode: MtlsMode, protocol: Protocol) -> Vec<Variant> {
    use MtlsMode::*;
    let http = protocol.is_http();
    if protocol.is_sniffed() {
        return match mode {
            Unset | Disable => vec![
                variant(RAW_BUFFER, &PLAINTEXT_HTTP_ALPNS, false, true),
                variant(RAW_BUFFER, &[], false, false),
            ],
            Strict => vec![
                variant(TLS, &HTTP_ISTIO_ALPNS, true, true),
                variant(TLS, &[], true, false),
                variant("", &[], true, false),
            ],
            Permissive => vec![
                variant(TLS, &HTTP_ISTIO_ALPNS, true, true),
                variant(TLS, &TCP_ISTIO_ALPNS, true, false),
                variant(RAW_BUFFER, &PLAINTEXT_HTTP_ALPNS, false, true),
                variant(RAW_BUFFER, &[], false, false),
                variant(TLS, &[], false, false),
            ],
        };
    }
    match mode {
        Unset | Disable => vec![variant("", &[], false, http)],
        Strict => vec![variant("", &[], true, http)],
        Permissive if http => vec![
            variant(TLS, &ALL_ISTIO_ALPNS, true, true),
            variant(RAW_BUFFER, &[], false, true),
        ],
        Permissive => vec![
            variant(TLS, &ALL_ISTIO_ALPNS, true, false),
            variant(TLS, &[], false, false),
            variant(RAW_BUFFER, &[], false, false),
        ],
    }
}

/// Whether some chain of the port matches what `tls_inspector` finds.
pub fn needs_tls_inspector(variants: &[Variant]) -> bool {
    variants.iter().any(|v| v.transport_protocol == TLS)
}

/// Whether some chain of the port matches what `http_inspector` finds.
pub fn needs_http_inspector(variants: &[Variant]) -> bool {
    variants
        .iter()
        .any(|v| !v.mtls && !v.application_protocols.is_empty())
}

/// The server side of mesh mTLS: the workload certificate, and a client certificate
/// required and verified against `ROOTCA` (any mesh identity: who may call is
/// AuthorizationPolicy's business).
pub fn downstream_tls_context() -> DownstreamTlsContext {
    DownstreamTlsContext {
        common_tls_context: Some(mesh_tls_context(
            CertificateValidationContext::default(),
            tls_12_to_13(CIPHER_SUITES.iter().map(|c| c.to_string()).collect()),
            SERVER_ALPNS.iter().map(|a| a.to_string()).collect(),
        )),
        require_client_certificate: Some(BoolValue { value: true }),
        ..Default::default()
    }
}

pub fn downstream_socket() -> TransportSocket {
    TransportSocket {
        name: TLS_TRANSPORT_SOCKET.to_string(),
        config_type: Some(ConfigType::TypedConfig(any(&downstream_tls_context()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disable_is_what_meshd_had_and_strict_has_no_plaintext_chain() {
        for protocol in [Protocol::Http, Protocol::Tcp, Protocol::Unsupported] {
            let disable = variants(MtlsMode::Disable, protocol);
            assert!(disable.iter().all(|v| !v.mtls), "{protocol:?}");
            assert!(!needs_tls_inspector(&disable));
            let strict = variants(MtlsMode::Strict, protocol);
            assert!(strict.iter().all(|v| v.mtls), "{protocol:?}");
            assert!(
                strict
                    .iter()
                    .any(|v| v.transport_protocol.is_empty() && v.application_protocols.is_empty()),
                "{protocol:?}: a chain on the port alone catches plaintext"
            );
            assert!(!needs_http_inspector(&strict));
        }
        assert_eq!(
            variants(MtlsMode::Unset, Protocol::Tcp),
            variants(MtlsMode::Disable, Protocol::Tcp)
        );
    }

    #[test]
    fn permissive_takes_mtls_by_alpn_and_plaintext_on_one_port() {
        let http = variants(MtlsMode::Permissive, Protocol::Http);
        assert_eq!(http.len(), 2);
        assert!(http[0].mtls && http[0].http && http[0].transport_protocol == TLS);
        assert!(http[0]
            .application_protocols
            .contains(&"istio-http/1.1".to_string()));
        assert!(!http[1].mtls && http[1].transport_protocol == RAW_BUFFER);
        let tcp = variants(MtlsMode::Permissive, Protocol::Tcp);
        assert_eq!(tcp.iter().filter(|v| v.mtls).count(), 1);
        assert!(tcp.iter().all(|v| !v.http));
        let sniffed = variants(MtlsMode::Permissive, Protocol::Unsupported);
        assert!(needs_tls_inspector(&sniffed) && needs_http_inspector(&sniffed));
    }

    #[test]
    fn servers_require_a_client_certificate_from_the_mesh_roots() {
        let ctx = downstream_tls_context();
        assert_eq!(
            ctx.require_client_certificate,
            Some(BoolValue { value: true })
        );
        let common = ctx.common_tls_context.unwrap();
        assert_eq!(common.tls_certificate_sds_secret_configs[0].name, "default");
        assert_eq!(common.alpn_protocols, ["h2", "http/1.1"]);
        let Some(envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::common_tls_context::ValidationContextType::CombinedValidationContext(c)) = common.validation_context_type else {
            panic!("combined validation");
        };
        assert_eq!(
            c.validation_context_sds_secret_config.unwrap().name,
            "ROOTCA"
        );
    }
}
