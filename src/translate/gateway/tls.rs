//! The downstream TLS of a gateway server that terminates TLS, as istiod builds it: ALPN
//! `h2`, `http/1.1`; the certificate from SDS over the ADS stream as
//! `kubernetes://<credentialName>` (or from files on the gateway with serverCertificate and
//! privateKey); for MUTUAL and OPTIONAL_MUTUAL the client CA from
//! `kubernetes://<credentialName>-cacert` (or caCertificates) and subjectAltNames checked;
//! protocol versions and cipher suites as the server sets them.
//!
//! The SDS config source keeps Envoy's default initial fetch timeout (15 s), as istiod's
//! does: a credential that never arrives (a missing Secret, or secrets not served) then
//! leaves that server's chain without a certificate instead of holding the whole listener,
//! and with it every other server on the port, warming forever.

use envoy_types::pb::envoy::config::core::v3::{
    config_source::ConfigSourceSpecifier, data_source, transport_socket, AggregatedConfigSource,
    ApiVersion, ConfigSource, DataSource, TransportSocket,
};
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    common_tls_context::{CombinedCertificateValidationContext, ValidationContextType},
    subject_alt_name_matcher::SanType,
    tls_parameters::TlsProtocol,
    CertificateValidationContext, CommonTlsContext, DownstreamTlsContext, SdsSecretConfig,
    SubjectAltNameMatcher, TlsCertificate, TlsParameters,
};
use envoy_types::pb::envoy::r#type::matcher::v3::{string_matcher::MatchPattern, StringMatcher};
use envoy_types::pb::google::protobuf::BoolValue;

use crate::mesh::traffic::{ServerTls, ServerTlsMode};
use crate::translate::{filter, naming};

pub const TRANSPORT_SOCKET_NAME: &str = "envoy.transport_sockets.tls";

/// ALPN a terminating gateway offers (istiod's `ALPNHttp`).
pub const ALPN_HTTP: [&str; 2] = ["h2", "http/1.1"];

fn sds(name: String) -> SdsSecretConfig {
    SdsSecretConfig {
        name,
        sds_config: Some(ConfigSource {
            resource_api_version: ApiVersion::V3 as i32,
            config_source_specifier: Some(ConfigSourceSpecifier::Ads(AggregatedConfigSource {})),
            ..Default::default()
        }),
    }
}

fn file(path: &str) -> Option<DataSource> {
    Some(DataSource {
        specifier: Some(data_source::Specifier::Filename(path.to_string())),
        ..Default::default()
    })
}

fn protocol(version: Option<&str>) -> i32 {
    (match version {
        Some("TLSV1_0") => TlsProtocol::TlSv10,
        Some("TLSV1_1") => TlsProtocol::TlSv11,
        Some("TLSV1_2") => TlsProtocol::TlSv12,
        Some("TLSV1_3") => TlsProtocol::TlSv13,
        _ => TlsProtocol::TlsAuto,
    }) as i32
}

/// Any SAN (DNS or URI) equal to one of `names`: the typed form of Istio's untyped match.
fn san_matchers(names: &[String]) -> Vec<SubjectAltNameMatcher> {
    names
        .iter()
        .flat_map(|n| {
            [SanType::Dns, SanType::Uri].map(|t| SubjectAltNameMatcher {
                san_type: t as i32,
                matcher: Some(StringMatcher {
                    match_pattern: Some(MatchPattern::Exact(n.clone())),
                    ..Default::default()
                }),
                ..Default::default()
            })
        })
        .collect()
}

pub fn downstream_tls_context(tls: &ServerTls) -> DownstreamTlsContext {
    let mutual = matches!(
        tls.mode,
        Some(ServerTlsMode::Mutual | ServerTlsMode::OptionalMutual)
    );
    let mut common = CommonTlsContext {
        alpn_protocols: ALPN_HTTP.map(str::to_string).to_vec(),
        ..Default::default()
    };
    let default_validation = CertificateValidationContext {
        match_typed_subject_alt_names: san_matchers(&tls.subject_alt_names),
        ..Default::default()
    };
    if let Some(credential) = tls.credential_name.as_deref() {
        let name = credential
            .strip_prefix(naming::CREDENTIAL_PREFIX)
            .unwrap_or(credential);
        common.tls_certificate_sds_secret_configs = vec![sds(naming::credential_secret(name))];
        if mutual {
            common.validation_context_type =
                Some(ValidationContextType::CombinedValidationContext(
                    CombinedCertificateValidationContext {
                        default_validation_context: Some(default_validation),
                        validation_context_sds_secret_config: Some(sds(
                            naming::credential_ca_secret(name),
                        )),
                        ..Default::default()
                    },
                ));
        } else if !tls.subject_alt_names.is_empty() {
            common.validation_context_type =
                Some(ValidationContextType::ValidationContext(default_validation));
        }
    } else {
        common.tls_certificates = vec![TlsCertificate {
            certificate_chain: tls.server_certificate.as_deref().and_then(file),
            private_key: tls.private_key.as_deref().and_then(file),
            ..Default::default()
        }];
        if mutual || !tls.subject_alt_names.is_empty() {
            common.validation_context_type = Some(ValidationContextType::ValidationContext(
                CertificateValidationContext {
                    trusted_ca: tls.ca_certificates.as_deref().and_then(file),
                    ..default_validation
                },
            ));
        }
    }
    let min = protocol(tls.min_protocol_version.as_deref());
    let max = protocol(tls.max_protocol_version.as_deref());
    if min != TlsProtocol::TlsAuto as i32
        || max != TlsProtocol::TlsAuto as i32
        || !tls.cipher_suites.is_empty()
    {
        common.tls_params = Some(TlsParameters {
            tls_minimum_protocol_version: min,
            tls_maximum_protocol_version: max,
            cipher_suites: tls.cipher_suites.clone(),
            ..Default::default()
        });
    }
    DownstreamTlsContext {
        common_tls_context: Some(common),
        require_client_certificate: Some(BoolValue {
            value: tls.mode == Some(ServerTlsMode::Mutual),
        }),
        ..Default::default()
    }
}

pub fn transport_socket(context: &DownstreamTlsContext) -> TransportSocket {
    TransportSocket {
        name: TRANSPORT_SOCKET_NAME.to_string(),
        config_type: Some(transport_socket::ConfigType::TypedConfig(filter::any(
            context,
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server_tls(mode: ServerTlsMode) -> ServerTls {
        ServerTls {
            https_redirect: false,
            mode: Some(mode),
            credential_name: Some("www-cert".into()),
            server_certificate: None,
            private_key: None,
            ca_certificates: None,
            subject_alt_names: vec![],
            min_protocol_version: Some("TLSV1_2".into()),
            max_protocol_version: None,
            cipher_suites: vec![],
        }
    }

    #[test]
    fn simple_takes_the_certificate_over_sds() {
        let ctx = downstream_tls_context(&server_tls(ServerTlsMode::Simple));
        let common = ctx.common_tls_context.unwrap();
        assert_eq!(common.alpn_protocols, ["h2", "http/1.1"]);
        let sds = &common.tls_certificate_sds_secret_configs[0];
        assert_eq!(sds.name, "kubernetes://www-cert");
        let source = sds.sds_config.as_ref().unwrap();
        assert!(matches!(
            source.config_source_specifier,
            Some(ConfigSourceSpecifier::Ads(_))
        ));
        // Envoy's default fetch timeout: a missing credential must not hold the listener.
        assert!(source.initial_fetch_timeout.is_none());
        assert!(common.validation_context_type.is_none());
        assert_eq!(
            common.tls_params.unwrap().tls_minimum_protocol_version,
            TlsProtocol::TlSv12 as i32
        );
        assert_eq!(
            ctx.require_client_certificate,
            Some(BoolValue { value: false })
        );
    }

    #[test]
    fn mutual_verifies_clients_with_the_cacert_secret() {
        let mut tls = server_tls(ServerTlsMode::Mutual);
        tls.subject_alt_names = vec!["client.example.com".into()];
        let ctx = downstream_tls_context(&tls);
        assert_eq!(
            ctx.require_client_certificate,
            Some(BoolValue { value: true })
        );
        let Some(ValidationContextType::CombinedValidationContext(combined)) =
            ctx.common_tls_context.unwrap().validation_context_type
        else {
            panic!("expected a combined validation context");
        };
        assert_eq!(
            combined.validation_context_sds_secret_config.unwrap().name,
            "kubernetes://www-cert-cacert"
        );
        assert_eq!(
            combined
                .default_validation_context
                .unwrap()
                .match_typed_subject_alt_names
                .len(),
            2
        );
    }
}
