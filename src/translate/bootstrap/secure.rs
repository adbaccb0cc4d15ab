//! The secure connection of a bootstrap to meshd's authenticated xDS port: the `xds-grpc`
//! cluster gets TLS that checks meshd's certificate against the given root for the server
//! name (SNI and DNS SAN), and the ADS gRPC service presents the caller's bearer token.
//!
//! The token is read when the bootstrap is made and sent as `initial_metadata` on every
//! ADS stream: Envoy's own gRPC client (`envoy_grpc`) has no call credentials that re-read a
//! file, so a rotated token file needs a new bootstrap (see SECURITY.md).

use std::path::PathBuf;

use envoy_types::pb::envoy::config::core::v3::{
    data_source, transport_socket, DataSource, HeaderValue, TransportSocket,
};
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    common_tls_context::ValidationContextType, subject_alt_name_matcher::SanType,
    CertificateValidationContext, CommonTlsContext, SubjectAltNameMatcher, UpstreamTlsContext,
};
use envoy_types::pb::envoy::r#type::matcher::v3::{string_matcher::MatchPattern, StringMatcher};

use crate::translate::filter::any;

/// How a bootstrap reaches meshd's secure port.
#[derive(Debug, Clone)]
pub struct SecureXds {
    /// meshd's root certificate (PEM file), read by Envoy.
    pub root_cert: PathBuf,
    /// The bearer token, without the `Bearer ` prefix.
    pub token: String,
    /// The name meshd's certificate must have (and the SNI sent).
    pub server_name: String,
}

/// TLS to meshd, checking its certificate against the root for the server name.
pub fn transport_socket(secure: &SecureXds) -> TransportSocket {
    let context = UpstreamTlsContext {
        sni: secure.server_name.clone(),
        common_tls_context: Some(CommonTlsContext {
            alpn_protocols: vec!["h2".to_string()],
            validation_context_type: Some(ValidationContextType::ValidationContext(
                CertificateValidationContext {
                    trusted_ca: Some(DataSource {
                        specifier: Some(data_source::Specifier::Filename(
                            secure.root_cert.display().to_string(),
                        )),
                        ..Default::default()
                    }),
                    match_typed_subject_alt_names: vec![SubjectAltNameMatcher {
                        san_type: SanType::Dns as i32,
                        matcher: Some(StringMatcher {
                            match_pattern: Some(MatchPattern::Exact(secure.server_name.clone())),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }],
                    ..Default::default()
                },
            )),
            ..Default::default()
        }),
        ..Default::default()
    };
    TransportSocket {
        name: "envoy.transport_sockets.tls".to_string(),
        config_type: Some(transport_socket::ConfigType::TypedConfig(any(&context))),
    }
}

/// The `authorization` metadata of every ADS stream.
pub fn initial_metadata(secure: &SecureXds) -> Vec<HeaderValue> {
    vec![HeaderValue {
        key: "authorization".to_string(),
        value: format!("Bearer {}", secure.token.trim()),
        ..Default::default()
    }]
}
