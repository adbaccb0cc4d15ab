//! Mutual TLS between sidecars, as istiod configures it, with stock Envoy:
//! - `upstream`: the client side. Clusters to endpoints with a sidecar use the workload
//!   certificate (`default`) and verify the server against the mesh roots (`ROOTCA`) and the
//!   SPIFFE identities of the service accounts behind the service (automatic mTLS, or
//!   DestinationRule `ISTIO_MUTUAL`).
//! - `inbound`: the server side. Each target port of `virtualInbound` accepts what the
//!   PeerAuthentication that applies says (`mesh::peer_authentication`): STRICT mTLS only,
//!   PERMISSIVE mTLS and plaintext on one port, DISABLE plaintext only.
//!
//! Both secrets come over SDS on the ADS stream, so all of it is only for proxies whose
//! stream proved an identity (`ProxyId::identity`, `Scope::identity`): a proxy that cannot
//! get the secrets would otherwise wait for them forever. `no_identity` says what the others
//! get. Automatic mTLS is on unless the mesh turns it off (`enableAutoMtls: false`,
//! `--auto-mtls=false`, `TranslateOptions::auto_mtls`); PeerAuthentication and
//! `ISTIO_MUTUAL` apply either way, as in istiod.
//!
//! istio-proxy's `istio.alpn` filter tells the server which protocol the client speaks by
//! rewriting ALPN per request; stock Envoy has no such filter, so the cluster itself offers
//! the ALPN of its port's declared protocol (`istio-http/1.1`, `istio-h2`, `istio` for TCP),
//! and the inbound chains match those.

pub mod inbound;
pub mod no_identity;
pub mod upstream;

use envoy_types::pb::envoy::config::core::v3::{
    config_source::ConfigSourceSpecifier, AggregatedConfigSource, ApiVersion, ConfigSource,
};
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    common_tls_context::{CombinedCertificateValidationContext, ValidationContextType},
    tls_parameters::TlsProtocol,
    CertificateValidationContext, CommonTlsContext, SdsSecretConfig, TlsParameters,
};

/// The SDS secret with the workload's certificate chain and key (Istio's name).
pub const WORKLOAD_SECRET: &str = "default";
/// The SDS secret with the mesh's trust bundle (Istio's name).
pub const ROOT_SECRET: &str = "ROOTCA";

/// ALPN a client offers for HTTP/1.1 over mTLS (istio-proxy's `istio.alpn` value).
pub const ALPN_ISTIO_HTTP11: &str = "istio-http/1.1";
/// ALPN a client offers for HTTP/2 over mTLS.
pub const ALPN_ISTIO_H2: &str = "istio-h2";
/// ALPN a client offers for anything else over mTLS (istiod's `ALPNInMesh`).
pub const ALPN_ISTIO: &str = "istio";

/// Every ALPN that marks mesh mTLS (istiod's `allIstioMtlsALPNs`).
pub const ALL_ISTIO_ALPNS: [&str; 5] = [
    "istio",
    "istio-peer-exchange",
    "istio-http/1.0",
    "istio-http/1.1",
    "istio-h2",
];
/// ALPNs of HTTP over mesh mTLS (istiod's `mtlsHTTPALPNs`).
pub const HTTP_ISTIO_ALPNS: [&str; 3] = ["istio-http/1.0", "istio-http/1.1", "istio-h2"];
/// ALPNs of TCP over mesh mTLS (istiod's `mtlsTCPWithMxcALPNs`).
pub const TCP_ISTIO_ALPNS: [&str; 2] = ["istio-peer-exchange", "istio"];

/// A secret over the ADS stream. The initial fetch keeps Envoy's default deadline (15 s):
/// a secret that never comes then fails handshakes instead of holding the listener or
/// cluster warming forever.
pub fn ads_secret(name: &str) -> SdsSecretConfig {
    SdsSecretConfig {
        name: name.to_string(),
        sds_config: Some(ConfigSource {
            resource_api_version: ApiVersion::V3 as i32,
            config_source_specifier: Some(ConfigSourceSpecifier::Ads(AggregatedConfigSource {})),
            ..Default::default()
        }),
    }
}

/// The workload certificate, and peers verified against `ROOTCA` and `validation` (SAN
/// matchers), TLS 1.2 to 1.3: what both sides of mesh mTLS share.
pub fn mesh_tls_context(
    validation: CertificateValidationContext,
    tls_params: TlsParameters,
    alpn_protocols: Vec<String>,
) -> CommonTlsContext {
    CommonTlsContext {
        tls_params: Some(tls_params),
        tls_certificate_sds_secret_configs: vec![ads_secret(WORKLOAD_SECRET)],
        validation_context_type: Some(ValidationContextType::CombinedValidationContext(
            CombinedCertificateValidationContext {
                default_validation_context: Some(validation),
                validation_context_sds_secret_config: Some(ads_secret(ROOT_SECRET)),
                ..Default::default()
            },
        )),
        alpn_protocols,
        ..Default::default()
    }
}

/// TLS 1.2 to 1.3 (istiod's defaults for mesh mTLS).
pub fn tls_12_to_13(cipher_suites: Vec<String>) -> TlsParameters {
    TlsParameters {
        tls_minimum_protocol_version: TlsProtocol::TlSv12 as i32,
        tls_maximum_protocol_version: TlsProtocol::TlSv13 as i32,
        cipher_suites,
        ..Default::default()
    }
}

/// `spiffe://<trust domain>/ns/<namespace>/sa/<service account>`.
pub fn spiffe_id(trust_domain: &str, namespace: &str, service_account: &str) -> String {
    format!("spiffe://{trust_domain}/ns/{namespace}/sa/{service_account}")
}
