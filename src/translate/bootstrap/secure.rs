//! The secure connection of a bootstrap to meshd's authenticated xDS port: the `xds-grpc`
//! cluster gets TLS that checks meshd's certificate against the given root for the server
//! name (SNI and DNS SAN), and the ADS gRPC service presents the caller's bearer token.
//!
//! Two ways to present the token, both checked with Envoy 1.40 (see SECURITY.md):
//! - default: Envoy's own gRPC client (`envoy_grpc`) over the `xds-grpc` cluster, the token
//!   read when the bootstrap is made and sent as `initial_metadata` on every ADS stream; it
//!   has no call credentials that re-read a file, so a rotated token needs a new bootstrap.
//! - `watch_token_file`: the Google gRPC client, TLS from its own channel credentials (the
//!   same root and server name) and the `envoy.grpc_credentials.file_based_metadata` call
//!   credentials, which read the token file again for every new stream: a token rotated on
//!   disk is used from the next reconnect on, with no new bootstrap.

use std::path::PathBuf;

use envoy_types::pb::envoy::config::core::v3::{
    data_source, transport_socket, DataSource, HeaderValue, TransportSocket,
};
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    common_tls_context::ValidationContextType, subject_alt_name_matcher::SanType,
    CertificateValidationContext, CommonTlsContext, SubjectAltNameMatcher, UpstreamTlsContext,
};
use envoy_types::pb::envoy::r#type::matcher::v3::{string_matcher::MatchPattern, StringMatcher};

use envoy_types::pb::envoy::config::core::v3::grpc_service::{google_grpc, GoogleGrpc};
use envoy_types::pb::envoy::config::grpc_credential::v3::FileBasedMetadataConfig;

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
    /// Read the token from this file for every new stream (Google gRPC client) instead of
    /// sending `token` fixed in the bootstrap.
    pub watch_token_file: Option<PathBuf>,
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

/// The Google gRPC client to meshd at `target` (HOST:PORT) that presents the token read
/// from `token_file` on every new stream and checks meshd's certificate against the root
/// for the server name.
pub fn google_grpc(secure: &SecureXds, target: &str, token_file: &std::path::Path) -> GoogleGrpc {
    use google_grpc::call_credentials::{
        metadata_credentials_from_plugin, MetadataCredentialsFromPlugin,
    };
    use google_grpc::channel_args::{value::ValueSpecifier, Value};
    let file = |path: &std::path::Path| {
        Some(DataSource {
            specifier: Some(data_source::Specifier::Filename(path.display().to_string())),
            ..Default::default()
        })
    };
    let credentials = FileBasedMetadataConfig {
        secret_data: file(token_file),
        header_key: "authorization".to_string(),
        header_prefix: "Bearer ".to_string(),
    };
    GoogleGrpc {
        target_uri: target.to_string(),
        stat_prefix: "xds-grpc".to_string(),
        channel_credentials: Some(google_grpc::ChannelCredentials {
            credential_specifier: Some(
                google_grpc::channel_credentials::CredentialSpecifier::SslCredentials(
                    google_grpc::SslCredentials {
                        root_certs: file(&secure.root_cert),
                        ..Default::default()
                    },
                ),
            ),
        }),
        call_credentials: vec![google_grpc::CallCredentials {
            credential_specifier: Some(
                google_grpc::call_credentials::CredentialSpecifier::FromPlugin(
                    MetadataCredentialsFromPlugin {
                        name: FILE_BASED_METADATA.to_string(),
                        config_type: Some(
                            metadata_credentials_from_plugin::ConfigType::TypedConfig(any(
                                &credentials,
                            )),
                        ),
                    },
                ),
            ),
        }],
        credentials_factory_name: FILE_BASED_METADATA.to_string(),
        // gRPC checks the server's certificate for this name (and sends it as SNI).
        channel_args: Some(google_grpc::ChannelArgs {
            args: [(
                "grpc.ssl_target_name_override".to_string(),
                Value {
                    value_specifier: Some(ValueSpecifier::StringValue(secure.server_name.clone())),
                },
            )]
            .into(),
        }),
        ..Default::default()
    }
}

const FILE_BASED_METADATA: &str = "envoy.grpc_credentials.file_based_metadata";
