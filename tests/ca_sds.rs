//! The CA over real gRPC and TLS: `meshd serve --ca-dir` with its secure port, a tonic
//! client that checks meshd's certificate against the CA's root and presents tokens from
//! `meshd token`. A token gets its own identity only; no token, an expired one or one from
//! another signer gets no stream; the plaintext port serves no workload secret; a restart
//! with the same CA directory keeps the root.

mod common;

use std::fs::File;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime};

use common::{bookinfo_dir, copy_dir, free_port, Meshd};
use envoy_types::pb::envoy::config::core::v3::{data_source, Node};
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{secret, Secret};
use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
use envoy_types::pb::envoy::service::discovery::v3::{DiscoveryRequest, DiscoveryResponse};
use envoy_types::pb::google::protobuf::{value::Kind, Struct, Value};
use meshd::xds::type_url;
use prost::Message;
use tokio_stream::StreamExt;
use tonic::transport::{Certificate, Channel, ClientTlsConfig};
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::*;

/// productpage runs as service account `bookinfo-productpage` in `default`.
const NODE: &str = "sidecar~10.244.0.10~productpage-v1.default~default.svc.cluster.local";
const SERVER_NAME: &str = "istiod.istio-system.svc";

struct Secure {
    meshd: Meshd,
    port: u16,
    _config: tempfile::TempDir,
}

fn start(ca: &Path, log: &Path) -> Secure {
    let config = tempfile::tempdir().unwrap();
    copy_dir(&bookinfo_dir(), config.path());
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let meshd = Meshd::spawn(
        config.path(),
        &["--secure-xds-addr", &addr, "--ca-dir", ca.to_str().unwrap()],
        File::create(log).unwrap(),
    );
    meshd.wait_ready(Duration::from_secs(30));
    Secure {
        meshd,
        port,
        _config: config,
    }
}

fn token(ca: &Path, namespace: &str, service_account: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_meshd"))
        .args(["token", "--ca-dir"])
        .arg(ca)
        .args([
            "--namespace",
            namespace,
            "--service-account",
            service_account,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

async fn tls_channel(port: u16, ca: &Path) -> Channel {
    let root = std::fs::read_to_string(ca.join("root-cert.pem")).unwrap();
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(root))
        .domain_name(SERVER_NAME);
    Channel::from_shared(format!("https://127.0.0.1:{port}"))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .expect("TLS connection to the secure port, meshd's certificate checked")
}

/// A node claiming service account `claimed` in its metadata.
fn secret_request(claimed: &str) -> DiscoveryRequest {
    let metadata = Struct {
        fields: [(
            "SERVICE_ACCOUNT".to_string(),
            Value {
                kind: Some(Kind::StringValue(claimed.into())),
            },
        )]
        .into(),
    };
    DiscoveryRequest {
        node: Some(Node {
            id: NODE.into(),
            metadata: Some(metadata),
            ..Default::default()
        }),
        type_url: type_url::SECRET.into(),
        resource_names: vec!["default".into(), "ROOTCA".into()],
        ..Default::default()
    }
}

/// Opens an ADS stream with `token` (if any) and asks for the secrets.
async fn ask_secrets(
    channel: Channel,
    token: Option<&str>,
) -> Result<DiscoveryResponse, tonic::Status> {
    open_secrets(channel, token)
        .await
        .map(|(response, _)| response)
}

/// As `ask_secrets`, with the stream kept open while the second value lives.
async fn open_secrets(
    channel: Channel,
    token: Option<&str>,
) -> Result<(DiscoveryResponse, Box<dyn std::any::Any + Send>), tonic::Status> {
    let mut client = AggregatedDiscoveryServiceClient::new(channel);
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tx.send(secret_request("bookinfo-reviews")).await.unwrap();
    let mut request = tonic::Request::new(tokio_stream::wrappers::ReceiverStream::new(rx));
    if let Some(token) = token {
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    let mut responses = client
        .stream_aggregated_resources(request)
        .await?
        .into_inner();
    let response = tokio::time::timeout(Duration::from_secs(15), responses.next())
        .await
        .expect("a response within 15s")
        .expect("the stream stays open")?;
    Ok((response, Box::new((tx, responses))))
}

fn secrets(response: &DiscoveryResponse) -> Vec<Secret> {
    response
        .resources
        .iter()
        .map(|any| Secret::decode(any.value.as_slice()).unwrap())
        .collect()
}

fn inline(source: &Option<envoy_types::pb::envoy::config::core::v3::DataSource>) -> String {
    match source.as_ref().and_then(|s| s.specifier.as_ref()) {
        Some(data_source::Specifier::InlineBytes(b)) => String::from_utf8(b.clone()).unwrap(),
        other => panic!("inline bytes expected, got {other:?}"),
    }
}

/// The URI SANs of the first certificate of `chain_pem`, and the chain's DER.
fn leaf_uris(chain_pem: &str) -> (Vec<String>, Vec<Vec<u8>>) {
    let chain = meshd::ca::certs_in(chain_pem);
    let (_, leaf) = X509Certificate::from_der(&chain[0]).unwrap();
    let uris = leaf
        .subject_alternative_name()
        .unwrap()
        .unwrap()
        .value
        .general_names
        .iter()
        .filter_map(|n| match n {
            GeneralName::URI(u) => Some(u.to_string()),
            _ => None,
        })
        .collect();
    (uris, chain)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_gets_only_its_own_identity_and_the_root() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca");
    let s = start(&ca, &dir.path().join("meshd.log"));
    let token = token(&ca, "default", "bookinfo-productpage");
    // The node metadata claims bookinfo-reviews: only the token counts.
    let (response, _open) = open_secrets(tls_channel(s.port, &ca).await, Some(&token))
        .await
        .expect("an authenticated stream is served");
    let by_name: std::collections::BTreeMap<String, Secret> = secrets(&response)
        .into_iter()
        .map(|s| (s.name.clone(), s))
        .collect();
    assert_eq!(
        by_name.keys().collect::<Vec<_>>(),
        ["ROOTCA", "default"],
        "both secrets, nothing else"
    );
    let Some(secret::Type::TlsCertificate(cert)) = &by_name["default"].r#type else {
        panic!("default is a certificate");
    };
    let (uris, chain) = leaf_uris(&inline(&cert.certificate_chain));
    assert_eq!(
        uris,
        ["spiffe://cluster.local/ns/default/sa/bookinfo-productpage"]
    );
    assert!(inline(&cert.private_key).contains("PRIVATE KEY"));
    let root_pem = std::fs::read_to_string(ca.join("root-cert.pem")).unwrap();
    let root = meshd::ca::certs_in(&root_pem).remove(0);
    assert_eq!(
        chain.last(),
        Some(&root),
        "the chain ends with meshd's root"
    );
    let (_, leaf) = X509Certificate::from_der(&chain[0]).unwrap();
    let (_, root_cert) = X509Certificate::from_der(&root).unwrap();
    leaf.verify_signature(Some(root_cert.public_key())).unwrap();
    let Some(secret::Type::ValidationContext(roots)) = &by_name["ROOTCA"].r#type else {
        panic!("ROOTCA is a validation context");
    };
    assert_eq!(inline(&roots.trusted_ca), root_pem);
    // The debug views show no key material for the connected stream (JSON shows inline
    // bytes as base64).
    use base64::Engine;
    let key_b64 = base64::engine::general_purpose::STANDARD.encode(inline(&cert.private_key));
    for path in [
        format!("/debug/config_dump?proxyID={NODE}"),
        format!("/debug/syncz?proxyID={NODE}"),
        "/debug/configz".to_string(),
    ] {
        let (code, body) = s.meshd.get(&path);
        assert_eq!(code, 200, "{path}: {body}");
        assert!(
            !body.contains("PRIVATE KEY") && !body.contains(&key_b64[..40]),
            "{path} shows a key: {body}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_token_an_expired_token_or_another_signers_token_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca");
    let s = start(&ca, &dir.path().join("meshd.log"));
    let other_ca = dir.path().join("other");
    let foreign = token(&other_ca, "default", "bookinfo-productpage");
    let signer = meshd::ca::TokenSigner::load_or_create(&ca).unwrap();
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let expired = signer
        .sign(&serde_json::json!({
            "iss": "meshd", "aud": ["istio-ca"], "iat": now - 7200, "exp": now - 3600,
            "sub": "system:serviceaccount:default:bookinfo-productpage",
        }))
        .unwrap();
    for (what, token) in [
        ("no token", None),
        ("a token from another signer", Some(foreign.as_str())),
        ("an expired token", Some(expired.as_str())),
        ("garbage", Some("not-a-token")),
    ] {
        let status = ask_secrets(tls_channel(s.port, &ca).await, token)
            .await
            .expect_err(what);
        assert_eq!(
            status.code(),
            tonic::Code::Unauthenticated,
            "{what}: {status:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plaintext_port_serves_no_workload_secret() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca");
    let s = start(&ca, &dir.path().join("meshd.log"));
    let token = token(&ca, "default", "bookinfo-productpage");
    let plain = Channel::from_shared(format!("http://{}", s.meshd.xds))
        .unwrap()
        .connect()
        .await
        .unwrap();
    // Even with a valid token: plaintext never carries a private key.
    let response = ask_secrets(plain, Some(&token)).await.unwrap();
    assert!(
        response.resources.is_empty(),
        "secrets on the plaintext port: {:?}",
        secrets(&response)
            .iter()
            .map(|s| &s.name)
            .collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_with_the_same_ca_dir_keeps_the_root_and_the_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca");
    let first = start(&ca, &dir.path().join("meshd-1.log"));
    let root = std::fs::read_to_string(ca.join("root-cert.pem")).unwrap();
    let token = token(&ca, "default", "bookinfo-productpage");
    drop(first);
    let second = start(&ca, &dir.path().join("meshd-2.log"));
    assert_eq!(
        std::fs::read_to_string(ca.join("root-cert.pem")).unwrap(),
        root
    );
    // The old root still verifies the new server, and the old token is still accepted.
    let response = ask_secrets(tls_channel(second.port, &ca).await, Some(&token))
        .await
        .expect("served after the restart");
    let roots: Vec<String> = secrets(&response)
        .iter()
        .filter_map(|s| match &s.r#type {
            Some(secret::Type::ValidationContext(v)) => Some(inline(&v.trusted_ca)),
            _ => None,
        })
        .collect();
    assert_eq!(roots, [root]);
}

/// Calls Istio's CreateCertificate on the secure port.
async fn create_certificate(
    channel: Channel,
    token: Option<&str>,
    csr: String,
    validity_seconds: i64,
) -> Result<Vec<String>, tonic::Status> {
    use meshd::ca::certificate_service::IstioCertificateRequest;
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let mut request = tonic::Request::new(IstioCertificateRequest {
        csr,
        validity_duration: validity_seconds,
        metadata: None,
    });
    if let Some(token) = token {
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    let path = tonic::codegen::http::uri::PathAndQuery::from_static(
        "/istio.v1.auth.IstioCertificateService/CreateCertificate",
    );
    let response: tonic::Response<meshd::ca::certificate_service::IstioCertificateResponse> = grpc
        .unary(request, path, tonic_prost::ProstCodec::default())
        .await?;
    Ok(response.into_inner().cert_chain)
}

/// A CSR asking for another identity (and a DNS name) than the caller's.
fn greedy_csr() -> String {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["evil.example".to_string()]).unwrap();
    params.subject_alt_names.push(rcgen::SanType::URI(
        "spiffe://cluster.local/ns/kube-system/sa/admin"
            .try_into()
            .unwrap(),
    ));
    params.serialize_request(&key).unwrap().pem().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_certificate_signs_for_the_token_identity_only_and_caps_the_lifetime() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca");
    let s = start(&ca, &dir.path().join("meshd.log"));
    let token = token(&ca, "default", "bookinfo-ratings");
    let ten_years = 10 * 365 * 24 * 3600;
    let chain = create_certificate(
        tls_channel(s.port, &ca).await,
        Some(&token),
        greedy_csr(),
        ten_years,
    )
    .await
    .expect("a valid token gets a certificate");
    let root_pem = std::fs::read_to_string(ca.join("root-cert.pem")).unwrap();
    assert_eq!(chain.len(), 2, "leaf then root");
    assert_eq!(chain.last().unwrap(), &root_pem, "the root last");
    let (uris, ders) = leaf_uris(&chain[0]);
    assert_eq!(
        uris,
        ["spiffe://cluster.local/ns/default/sa/bookinfo-ratings"],
        "the SAN is the token's identity, not the CSR's"
    );
    let (_, leaf) = X509Certificate::from_der(&ders[0]).unwrap();
    let dns = leaf
        .subject_alternative_name()
        .unwrap()
        .unwrap()
        .value
        .general_names
        .iter()
        .any(|n| matches!(n, GeneralName::DNSName(_)));
    assert!(!dns, "no DNS SAN from the CSR");
    let life = leaf.validity().not_after.timestamp() - leaf.validity().not_before.timestamp();
    assert!(
        life <= 24 * 3600 + 600,
        "lifetime capped at --workload-cert-ttl (24h), got {life}s"
    );

    let bad_csr = create_certificate(
        tls_channel(s.port, &ca).await,
        Some(&token),
        "not a csr".into(),
        0,
    )
    .await
    .expect_err("a CSR that does not parse");
    assert_eq!(bad_csr.code(), tonic::Code::InvalidArgument);
    let other_ca = dir.path().join("other");
    let foreign = self::token(&other_ca, "default", "bookinfo-ratings");
    for (what, token) in [
        ("no token", None),
        ("another signer's token", Some(foreign.as_str())),
    ] {
        let status = create_certificate(tls_channel(s.port, &ca).await, token, greedy_csr(), 0)
            .await
            .expect_err(what);
        assert_eq!(
            status.code(),
            tonic::Code::Unauthenticated,
            "{what}: {status:?}"
        );
    }
}
