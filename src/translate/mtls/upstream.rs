//! The client side of mesh mTLS on an outbound cluster, as istiod decides it:
//! - DestinationRule `ISTIO_MUTUAL`: always mTLS (the rule's SNI and SANs, else the
//!   cluster's SNI `outbound_.<port>_.<subset>_.<fqdn>` and the service's identities).
//! - No TLS setting (automatic mTLS): endpoints with a sidecar (endpoint metadata
//!   `tlsMode: istio`) get mTLS through the transport socket match `tlsMode-istio`, the
//!   others plaintext through `tlsMode-disabled`; not for services outside the mesh, nor
//!   when the service's namespace (or the mesh) says DISABLE. A cluster that connects where
//!   the client dialled (headless, PASSTHROUGH) cannot choose per endpoint: it is mTLS when
//!   every endpoint has a sidecar, else plaintext.
//! - `DISABLE`, `SIMPLE`, `MUTUAL`: what the rule says (`traffic_policy::tls`).

use std::collections::{BTreeSet, HashMap};

use envoy_types::pb::envoy::config::cluster::v3::{
    cluster::{ClusterDiscoveryType, DiscoveryType, TransportSocketMatch},
    Cluster,
};
use envoy_types::pb::envoy::config::core::v3::{transport_socket::ConfigType, TransportSocket};
use envoy_types::pb::envoy::extensions::transport_sockets::raw_buffer::v3::RawBuffer;
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    subject_alt_name_matcher::SanType, CertificateValidationContext, SubjectAltNameMatcher,
    UpstreamTlsContext,
};
use envoy_types::pb::envoy::extensions::upstreams::http::v3::{
    http_protocol_options::{explicit_http_config::ProtocolConfig, UpstreamProtocolOptions},
    HttpProtocolOptions,
};
use envoy_types::pb::envoy::r#type::matcher::v3::{string_matcher::MatchPattern, StringMatcher};
use envoy_types::pb::google::protobuf::{value::Kind, Struct, Value};
use prost::Message;

use super::{
    mesh_tls_context, spiffe_id, tls_12_to_13, ALPN_ISTIO, ALPN_ISTIO_H2, ALPN_ISTIO_HTTP11,
};
use crate::mesh::peer_authentication::{namespace_mode, MtlsMode};
use crate::mesh::traffic::{ClientTls, TlsMode};
use crate::mesh::{MeshModel, ObjectKey, Protocol, Service, ServiceOrigin, ServicePort};
use crate::translate::cluster::HTTP_PROTOCOL_OPTIONS_KEY;
use crate::translate::filter::any;
use crate::translate::naming;
use crate::translate::scope::TranslateOptions;
use crate::translate::traffic_policy::tls::TLS_TRANSPORT_SOCKET;

/// Name of Envoy's plaintext transport socket.
pub const RAW_BUFFER_TRANSPORT_SOCKET: &str = "envoy.transport_sockets.raw_buffer";
/// Transport socket match of endpoints with a sidecar.
pub const TLS_MODE_ISTIO: &str = "tlsMode-istio";
/// Transport socket match of every other endpoint.
pub const TLS_MODE_DISABLED: &str = "tlsMode-disabled";

/// What a cluster's mTLS depends on besides the cluster itself.
pub struct Target<'a> {
    pub model: &'a MeshModel,
    pub options: &'a TranslateOptions,
    /// Whether the client proxy holds a workload certificate (`Scope::identity`).
    pub identity: bool,
    pub service: &'a Service,
    pub port: &'a ServicePort,
    pub subset: &'a str,
}

/// Applies mesh mTLS to an outbound cluster whose traffic policy (TLS included) is applied.
pub fn apply(cluster: &mut Cluster, tls: Option<&ClientTls>, target: &Target) {
    if !target.identity {
        if tls.is_some_and(|t| t.mode == TlsMode::IstioMutual) {
            super::no_identity::fail_closed(cluster);
        }
        return;
    }
    let sni = naming::outbound_sni(target.port.port, target.subset, &target.service.hostname);
    match tls {
        Some(t) if t.mode == TlsMode::IstioMutual => {
            let sans = if t.subject_alt_names.is_empty() {
                service_identities(target.model, &target.options.trust_domain, target.service)
            } else {
                t.subject_alt_names.clone()
            };
            let sni = t.sni.clone().unwrap_or(sni);
            cluster.transport_socket = Some(tls_socket(&context(
                cluster,
                target.port.protocol,
                &sans,
                sni,
            )));
        }
        Some(_) => {}
        None if target.options.auto_mtls => auto(cluster, target, sni),
        None => {}
    }
}

fn auto(cluster: &mut Cluster, target: &Target, sni: String) {
    let service = target.service;
    if service.mesh_external()
        || namespace_mode(
            target.model,
            &target.options.root_namespace,
            &service.key.namespace,
        ) == Some(MtlsMode::Disable)
    {
        return;
    }
    let sans = service_identities(target.model, &target.options.trust_domain, service);
    let socket = tls_socket(&context(cluster, target.port.protocol, &sans, sni));
    let original_dst = cluster.cluster_discovery_type
        == Some(ClusterDiscoveryType::Type(
            DiscoveryType::OriginalDst as i32,
        ));
    if original_dst {
        let endpoints = target.model.endpoints_of(&service.key, target.port.port);
        let all_sidecars = endpoints
            .is_some_and(|e| !e.endpoints.is_empty() && e.endpoints.iter().all(|e| e.mtls_ready));
        if all_sidecars {
            cluster.transport_socket = Some(socket);
        }
        return;
    }
    cluster.transport_socket_matches = vec![
        TransportSocketMatch {
            name: TLS_MODE_ISTIO.to_string(),
            r#match: Some(istio_tls_mode()),
            transport_socket: Some(socket),
        },
        TransportSocketMatch {
            name: TLS_MODE_DISABLED.to_string(),
            r#match: Some(Struct::default()),
            transport_socket: Some(raw_buffer()),
        },
    ];
}

fn istio_tls_mode() -> Struct {
    Struct {
        fields: HashMap::from([(
            "tlsMode".to_string(),
            Value {
                kind: Some(Kind::StringValue("istio".to_string())),
            },
        )]),
    }
}

fn raw_buffer() -> TransportSocket {
    TransportSocket {
        name: RAW_BUFFER_TRANSPORT_SOCKET.to_string(),
        config_type: Some(ConfigType::TypedConfig(any(&RawBuffer::default()))),
    }
}

fn tls_socket(context: &UpstreamTlsContext) -> TransportSocket {
    TransportSocket {
        name: TLS_TRANSPORT_SOCKET.to_string(),
        config_type: Some(ConfigType::TypedConfig(any(context))),
    }
}

/// Whether the cluster speaks HTTP/1.1, HTTP/2 (declared, or upgraded by a
/// DestinationRule) or neither (sniffed ports follow the client, TCP ports carry bytes):
/// the ALPN that tells the server's sidecar.
fn alpn(cluster: &Cluster, protocol: Protocol) -> &'static str {
    if !protocol.is_http() {
        return ALPN_ISTIO;
    }
    let options = cluster
        .typed_extension_protocol_options
        .get(HTTP_PROTOCOL_OPTIONS_KEY)
        .and_then(|a| HttpProtocolOptions::decode(&a.value[..]).ok());
    match options.and_then(|o| o.upstream_protocol_options) {
        Some(UpstreamProtocolOptions::ExplicitHttpConfig(c)) => match c.protocol_config {
            Some(ProtocolConfig::Http2ProtocolOptions(_)) => ALPN_ISTIO_H2,
            _ => ALPN_ISTIO_HTTP11,
        },
        _ => ALPN_ISTIO_HTTP11,
    }
}

/// The UpstreamTlsContext of mesh mTLS (istiod's ISTIO_MUTUAL context).
pub fn context(
    cluster: &Cluster,
    protocol: Protocol,
    sans: &[String],
    sni: String,
) -> UpstreamTlsContext {
    let validation = CertificateValidationContext {
        match_typed_subject_alt_names: sans.iter().map(|s| uri_san(s)).collect(),
        ..Default::default()
    };
    UpstreamTlsContext {
        common_tls_context: Some(mesh_tls_context(
            validation,
            tls_12_to_13(Vec::new()),
            vec![alpn(cluster, protocol).to_string()],
        )),
        sni,
        ..Default::default()
    }
}

/// An exact SAN: a URI for SPIFFE ids (and anything with a scheme), else a DNS name, as
/// istiod's untyped `match_subject_alt_names` matches either.
fn uri_san(san: &str) -> SubjectAltNameMatcher {
    let san_type = if san.contains("://") {
        SanType::Uri
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

/// The identities a client accepts from the service's servers, sorted: the SPIFFE ids of
/// the service accounts of its endpoints (any port), and a ServiceEntry's
/// `subjectAltNames`.
pub fn service_identities(model: &MeshModel, trust_domain: &str, service: &Service) -> Vec<String> {
    let mut out = BTreeSet::new();
    for (namespace, account) in service_accounts(model, &service.key) {
        out.insert(spiffe_id(trust_domain, &namespace, &account));
    }
    if let ServiceOrigin::ServiceEntry(e) = &service.origin {
        if let Some(entry) = model.service_entries.get(&e.entry) {
            out.extend(entry.subject_alt_names.iter().cloned());
        }
    }
    out.into_iter().collect()
}

/// (namespace, service account) of the endpoints of a service, on any port.
fn service_accounts(model: &MeshModel, service: &ObjectKey) -> BTreeSet<(String, String)> {
    model
        .endpoints
        .range((service.clone(), 0)..=(service.clone(), u16::MAX))
        .flat_map(|(_, e)| e.endpoints.iter())
        .filter_map(|e| {
            let account = e.service_account.clone()?;
            let namespace = e
                .workload
                .as_ref()
                .map_or_else(|| service.namespace.clone(), |w| w.namespace.clone());
            Some((namespace, account))
        })
        .collect()
}

/// What clusters take from endpoints under mTLS (their identities, and whether each has a
/// sidecar): when it changes, clusters must be built again even if only endpoints moved.
pub fn endpoint_inputs(model: &MeshModel) -> BTreeSet<EndpointInput<'_>> {
    model
        .endpoints
        .iter()
        .flat_map(|((service, port), endpoints)| {
            endpoints.endpoints.iter().map(move |e| {
                (
                    service,
                    *port,
                    e.workload.as_ref().map(|w| w.namespace.as_str()),
                    e.service_account.as_deref(),
                    e.mtls_ready,
                )
            })
        })
        .collect()
}

/// Service, port, namespace and service account of the pod, sidecar or not.
pub type EndpointInput<'a> = (&'a ObjectKey, u16, Option<&'a str>, Option<&'a str>, bool);

#[cfg(test)]
#[path = "upstream_tests.rs"]
mod tests;
