//! `tls` -> the cluster's upstream TLS, as istiod builds it for a sidecar:
//! - `DISABLE`: no transport socket (plaintext).
//! - `SIMPLE` / `MUTUAL` with certificate files: an `UpstreamTlsContext` with TLS 1.2-1.3,
//!   the given SNI, the CA (`caCertificates`, else the system bundle) and SANs to verify,
//!   and for `MUTUAL` the client certificate and key. Stock Envoy has no istio-agent to
//!   serve the files over SDS, so Envoy reads them itself (inline file data sources).
//!   Without an SNI, Envoy sets it from the request's host (`auto_sni`), and without SANs
//!   it also checks the certificate against that host (`auto_san_validation`).
//! - With `credentialName`, istiod gives sidecars no TLS context at all (only gateways may
//!   read Secrets); so does meshd.
//! - `ISTIO_MUTUAL`: accepted, plaintext until meshd issues workload certificates.

use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::core::v3::{
    data_source::Specifier, transport_socket::ConfigType, DataSource, TransportSocket,
    UpstreamHttpProtocolOptions,
};
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    common_tls_context::ValidationContextType, subject_alt_name_matcher::SanType,
    tls_parameters::TlsProtocol, CertificateValidationContext, CommonTlsContext,
    SubjectAltNameMatcher, TlsCertificate, TlsParameters, UpstreamTlsContext,
};
use envoy_types::pb::envoy::extensions::upstreams::http::v3::{
    http_protocol_options::{explicit_http_config::ProtocolConfig, UpstreamProtocolOptions},
    HttpProtocolOptions,
};
use envoy_types::pb::envoy::r#type::matcher::v3::{string_matcher::MatchPattern, StringMatcher};

use super::super::filter::any;
use crate::mesh::traffic::{ClientTls, TlsMode};

/// Name of Envoy's TLS transport socket.
pub const TLS_TRANSPORT_SOCKET: &str = "envoy.transport_sockets.tls";

/// The CA bundle used when a rule names none: istio-agent's "system" roots. Envoy has no
/// notion of system roots, so meshd names the usual bundle of Debian, Ubuntu and Alpine.
pub const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

fn file(path: &str) -> Option<DataSource> {
    Some(DataSource {
        specifier: Some(Specifier::Filename(path.to_string())),
        ..Default::default()
    })
}

/// A SAN to verify, typed by its look: `scheme://...` is a URI (SPIFFE ids), an IP
/// address is one, anything else a DNS name (wildcards as in RFC 6125).
fn san_matcher(san: &str) -> SubjectAltNameMatcher {
    let san_type = if san.contains("://") {
        SanType::Uri
    } else if san.parse::<std::net::IpAddr>().is_ok() {
        SanType::IpAddress
    } else {
        SanType::Dns
    };
    SubjectAltNameMatcher {
        san_type: san_type as i32,
        matcher: Some(StringMatcher {
            match_pattern: Some(MatchPattern::Exact(san.to_string())),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn is_http2(options: &Option<HttpProtocolOptions>) -> bool {
    matches!(
        options.as_ref().and_then(|o| o.upstream_protocol_options.as_ref()),
        Some(UpstreamProtocolOptions::ExplicitHttpConfig(c))
            if matches!(c.protocol_config, Some(ProtocolConfig::Http2ProtocolOptions(_)))
    )
}

/// The TLS context of a `SIMPLE` or `MUTUAL` setting with files; `None` for every other.
pub fn upstream_tls_context(tls: &ClientTls, http2: bool) -> Option<UpstreamTlsContext> {
    let mutual = match tls.mode {
        TlsMode::Simple => false,
        TlsMode::Mutual => true,
        TlsMode::Disable | TlsMode::IstioMutual => return None,
    };
    if tls.credential_name.is_some() {
        return None;
    }
    let mut common = CommonTlsContext {
        tls_params: Some(TlsParameters {
            tls_minimum_protocol_version: TlsProtocol::TlSv12 as i32,
            tls_maximum_protocol_version: TlsProtocol::TlSv13 as i32,
            ..Default::default()
        }),
        ..Default::default()
    };
    if mutual {
        // The model guarantees both for MUTUAL without credentialName.
        common.tls_certificates = vec![TlsCertificate {
            certificate_chain: file(tls.client_certificate.as_deref().unwrap_or_default()),
            private_key: file(tls.private_key.as_deref().unwrap_or_default()),
            ..Default::default()
        }];
    }
    common.validation_context_type = Some(ValidationContextType::ValidationContext(
        if tls.insecure_skip_verify {
            CertificateValidationContext::default()
        } else {
            CertificateValidationContext {
                trusted_ca: file(tls.ca_certificates.as_deref().unwrap_or(SYSTEM_CA_BUNDLE)),
                match_typed_subject_alt_names: tls
                    .subject_alt_names
                    .iter()
                    .map(|s| san_matcher(s))
                    .collect(),
                ..Default::default()
            }
        },
    ));
    if http2 {
        common.alpn_protocols = vec!["h2".to_string()];
    }
    Some(UpstreamTlsContext {
        common_tls_context: Some(common),
        sni: tls.sni.clone().unwrap_or_default(),
        ..Default::default()
    })
}

pub fn apply(cluster: &mut Cluster, options: &mut Option<HttpProtocolOptions>, tls: &ClientTls) {
    let Some(context) = upstream_tls_context(tls, is_http2(options)) else {
        return;
    };
    let auto_sni = tls.sni.is_none();
    let auto_san = auto_sni && tls.subject_alt_names.is_empty() && !tls.insecure_skip_verify;
    if auto_sni || auto_san {
        let upstream = options
            .get_or_insert_with(Default::default)
            .upstream_http_protocol_options
            .get_or_insert_with(UpstreamHttpProtocolOptions::default);
        upstream.auto_sni |= auto_sni;
        upstream.auto_san_validation |= auto_san;
    }
    cluster.transport_socket = Some(TransportSocket {
        name: TLS_TRANSPORT_SOCKET.to_string(),
        config_type: Some(ConfigType::TypedConfig(any(&context))),
    });
}
