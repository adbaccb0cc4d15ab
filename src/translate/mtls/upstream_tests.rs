//! Outbound clusters of services with and without sidecars, through the real parser and
//! model builder.

use std::path::Path;

use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::core::v3::transport_socket::ConfigType;
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::UpstreamTlsContext;
use prost::Message;

use super::*;
use crate::mesh::build::build_model;
use crate::source::parse::parse_file;
use crate::source::InputSet;
use crate::translate::subset;

const INPUT: &str = "
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: shop}
spec:
  clusterIP: 10.96.0.20
  selector: {app: reviews}
  ports:
  - {name: http, port: 9080}
  - {name: grpc, port: 7070}
  - {name: tcp-db, port: 5432}
---
apiVersion: v1
kind: Service
metadata: {name: headless, namespace: shop}
spec:
  clusterIP: None
  selector: {app: reviews}
  ports:
  - {name: http, port: 9080}
---
apiVersion: v1
kind: Pod
metadata: {name: reviews-v1, namespace: shop, labels: {app: reviews, security.istio.io/tlsMode: istio}}
spec: {serviceAccountName: bookinfo-reviews, containers: [{name: app}]}
status: {podIP: 10.244.0.11, phase: Running, conditions: [{type: Ready, status: 'True'}]}
---
apiVersion: v1
kind: Pod
metadata: {name: reviews-v2, namespace: shop, labels: {app: reviews, security.istio.io/tlsMode: istio}}
spec: {serviceAccountName: reviews-v2, containers: [{name: app}]}
status: {podIP: 10.244.0.12, phase: Running, conditions: [{type: Ready, status: 'True'}]}
";

fn model(extra: &str) -> MeshModel {
    let parsed = parse_file(Path::new("test.yaml"), &format!("{INPUT}{extra}"));
    assert!(parsed.problems.is_empty(), "{:?}", parsed.problems);
    let built = build_model(&InputSet {
        objects: parsed.objects,
        problems: vec![],
    });
    assert!(built.problems.is_empty(), "{:?}", built.problems);
    built.model
}

/// The cluster a client with a certificate (`identity`) or without gets.
fn cluster_of(model: &MeshModel, identity: bool, name: &str, port: u16) -> Cluster {
    cluster_with(model, &TranslateOptions::default(), identity, name, port)
}

fn cluster_with(
    model: &MeshModel,
    options: &TranslateOptions,
    identity: bool,
    name: &str,
    port: u16,
) -> Cluster {
    let service = model
        .services
        .values()
        .find(|s| s.key.name == name)
        .unwrap();
    let port = service.ports.iter().find(|p| p.port == port).unwrap();
    let rule = model.destination_rules.values().next().map(|r| r.as_ref());
    subset::clusters(model, options, identity, service, port, rule)
        .into_iter()
        .next()
        .unwrap()
}

fn tls(socket: &TransportSocket) -> UpstreamTlsContext {
    let Some(ConfigType::TypedConfig(any)) = &socket.config_type else {
        panic!("typed config");
    };
    UpstreamTlsContext::decode(&any.value[..]).unwrap()
}

fn sans(ctx: &UpstreamTlsContext) -> Vec<String> {
    use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::common_tls_context::ValidationContextType;
    let Some(ValidationContextType::CombinedValidationContext(c)) = &ctx
        .common_tls_context
        .as_ref()
        .unwrap()
        .validation_context_type
    else {
        panic!("combined validation context");
    };
    c.default_validation_context
        .as_ref()
        .unwrap()
        .match_typed_subject_alt_names
        .iter()
        .map(|m| match &m.matcher.as_ref().unwrap().match_pattern {
            Some(MatchPattern::Exact(e)) => e.clone(),
            _ => panic!("exact"),
        })
        .collect()
}

#[test]
fn sidecar_endpoints_get_mtls_by_socket_match_with_the_services_identities() {
    let m = model("");
    let c = cluster_of(&m, true, "reviews", 9080);
    assert!(c.transport_socket.is_none());
    let names: Vec<&str> = c
        .transport_socket_matches
        .iter()
        .map(|t| t.name.as_str())
        .collect();
    assert_eq!(names, [TLS_MODE_ISTIO, TLS_MODE_DISABLED]);
    assert_eq!(
        c.transport_socket_matches[0].r#match,
        Some(istio_tls_mode())
    );
    let ctx = tls(c.transport_socket_matches[0]
        .transport_socket
        .as_ref()
        .unwrap());
    assert_eq!(ctx.sni, "outbound_.9080_._.reviews.shop.svc.cluster.local");
    assert_eq!(
        sans(&ctx),
        [
            "spiffe://cluster.local/ns/shop/sa/bookinfo-reviews",
            "spiffe://cluster.local/ns/shop/sa/reviews-v2"
        ]
    );
    let common = ctx.common_tls_context.unwrap();
    assert_eq!(common.alpn_protocols, ["istio-http/1.1"]);
    assert_eq!(common.tls_certificate_sds_secret_configs[0].name, "default");
    assert_eq!(
        c.transport_socket_matches[1]
            .transport_socket
            .as_ref()
            .unwrap()
            .name,
        RAW_BUFFER_TRANSPORT_SOCKET
    );
    // ALPN follows the port's protocol.
    let grpc = cluster_of(&m, true, "reviews", 7070);
    let alpn = |c: &Cluster| {
        tls(c.transport_socket_matches[0]
            .transport_socket
            .as_ref()
            .unwrap())
        .common_tls_context
        .unwrap()
        .alpn_protocols
    };
    assert_eq!(alpn(&grpc), ["istio-h2"]);
    assert_eq!(alpn(&cluster_of(&m, true, "reviews", 5432)), ["istio"]);
    // Headless: every endpoint has a sidecar, so the one socket is mTLS.
    let headless = cluster_of(&m, true, "headless", 9080);
    assert!(headless.transport_socket_matches.is_empty());
    assert!(headless.transport_socket.is_some());
}

#[test]
fn nothing_changes_without_mtls_or_under_a_disabled_namespace() {
    let m = model("");
    let plain = cluster_of(&m, false, "reviews", 9080);
    assert!(plain.transport_socket.is_none() && plain.transport_socket_matches.is_empty());
    let m = model(
        "---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: shop}
spec: {mtls: {mode: DISABLE}}
",
    );
    let c = cluster_of(&m, true, "reviews", 9080);
    assert!(c.transport_socket.is_none() && c.transport_socket_matches.is_empty());
}

#[test]
fn destination_rules_istio_mutual_and_disable_win_over_auto() {
    let rule = |mode: &str| {
        format!(
            "---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: reviews, namespace: shop}}
spec:
  host: reviews
  trafficPolicy: {{tls: {{mode: {mode}}}}}
"
        )
    };
    let m = model(&rule("ISTIO_MUTUAL"));
    let c = cluster_of(&m, true, "reviews", 9080);
    assert!(c.transport_socket_matches.is_empty());
    let ctx = tls(c.transport_socket.as_ref().unwrap());
    assert_eq!(ctx.sni, "outbound_.9080_._.reviews.shop.svc.cluster.local");
    assert_eq!(sans(&ctx).len(), 2);
    let m = model(&rule("DISABLE"));
    let c = cluster_of(&m, true, "reviews", 9080);
    assert!(c.transport_socket.is_none() && c.transport_socket_matches.is_empty());
}

#[test]
fn without_a_certificate_istio_mutual_fails_closed_and_nothing_names_a_secret() {
    let m = model(
        "---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: shop}
spec:
  host: reviews
  trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}
",
    );
    let c = cluster_of(&m, false, "reviews", 9080);
    assert!(c.transport_socket.is_none() && c.transport_socket_matches.is_empty());
    let limits = &c.circuit_breakers.as_ref().unwrap().thresholds[0];
    assert_eq!(limits.max_connections.as_ref().unwrap().value, 0);
    assert_eq!(limits.max_pending_requests.as_ref().unwrap().value, 0);
    let bytes = c.encode_to_vec();
    let root = super::super::ROOT_SECRET.as_bytes();
    assert!(!bytes.windows(root.len()).any(|w| w == root));
}

#[test]
fn auto_mtls_off_leaves_mtls_to_destination_rules() {
    let off = TranslateOptions {
        auto_mtls: false,
        ..Default::default()
    };
    let m = model("");
    let c = cluster_with(&m, &off, true, "reviews", 9080);
    assert!(c.transport_socket.is_none() && c.transport_socket_matches.is_empty());
    let m = model(
        "---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: shop}
spec:
  host: reviews
  trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}
",
    );
    let c = cluster_with(&m, &off, true, "reviews", 9080);
    assert!(c.transport_socket.is_some(), "ISTIO_MUTUAL still applies");
}
