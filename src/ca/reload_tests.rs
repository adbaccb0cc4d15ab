//! Unit tests of the CA's hot reload: each stage of a root rotation is applied with the
//! right change and trust bundle, every kind of bad file set is refused by file and
//! reason (and the authority in use stays), and SDS entries follow a replaced authority.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use x509_parser::prelude::*;

use super::pem::pem_of;
use super::reload::{Change, Polled, Reloader};
use super::*;

const URI: &str = "spiffe://cluster.local/ns/a/sa/b";

fn write(dir: &Path, file: &str, text: &str) {
    std::fs::write(dir.join(file), text).unwrap();
}

/// A second root with its key, as PEM.
fn new_root() -> (String, String) {
    Authority::new_root_pems().unwrap()
}

/// An intermediate CA signed by `root` (PEM cert and key of a self-signed root).
fn intermediate(root: &(String, String)) -> (String, String) {
    let parent = Authority::from_pems(&root.0, &root.1, None, None, "parent").unwrap();
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = rcgen::CertificateParams::default();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "intermediate");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let cert = params.signed_by(&key, &parent.issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

fn applied(polled: Polled) -> (Authority, Change) {
    match polled {
        Polled::Apply(a, change) => (*a, change),
        other => panic!("expected a new authority, got {other:?}"),
    }
}

fn refused(polled: Polled) -> String {
    match polled {
        Polled::Refused(e) => e.to_string(),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// The DER root that the issued chain ends with.
fn issued_root(ca: &Authority) -> Vec<u8> {
    let issued = ca.issue(URI, Duration::from_secs(60)).unwrap();
    let certs = certs_in(&issued.chain_pem);
    for pair in certs.windows(2) {
        let (_, child) = X509Certificate::from_der(&pair[0]).unwrap();
        let (_, parent) = X509Certificate::from_der(&pair[1]).unwrap();
        child.verify_signature(Some(parent.public_key())).unwrap();
    }
    certs.last().unwrap().clone()
}

#[test]
fn each_stage_of_a_root_rotation_is_applied() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let mut ca = Authority::load_or_create(p).unwrap();
    let old_root = ca.root_pem();
    let mut reloader = Reloader::new(p.to_path_buf());
    assert!(matches!(reloader.poll(&ca), Polled::Same), "the CA in use");
    assert!(matches!(reloader.poll(&ca), Polled::Unchanged));

    // Stage 1: the bundle holds old and new roots; the same CA signs.
    let next = new_root();
    write(p, "root-cert.pem", &(old_root.clone() + &next.0));
    let (stage1, change) = applied(reloader.poll(&ca));
    assert_eq!(
        change,
        Change {
            bundle: true,
            signer: false
        }
    );
    assert_eq!(stage1.trust_bundle(), old_root.clone() + &next.0);
    assert!(stage1.same_signer(&ca));
    assert_eq!(pem_of(&issued_root(&stage1)), old_root);
    ca = stage1;
    assert!(matches!(reloader.poll(&ca), Polled::Unchanged));

    // Stage 2: an intermediate under the new root signs (written in Istio's plug-in
    // layout); the bundle still holds both, the signing root first.
    let inter = intermediate(&next);
    write(p, "ca-cert.pem", &inter.0);
    write(p, "ca-key.pem", &inter.1);
    write(p, "cert-chain.pem", &(inter.0.clone() + &next.0));
    let (stage2, change) = applied(reloader.poll(&ca));
    assert_eq!(
        change,
        Change {
            bundle: true,
            signer: true
        }
    );
    assert_eq!(stage2.trust_bundle(), next.0.clone() + &old_root);
    assert_eq!(pem_of(&issued_root(&stage2)), next.0);
    ca = stage2;

    // Stage 3: the old root leaves the bundle.
    write(p, "root-cert.pem", &next.0);
    let (stage3, change) = applied(reloader.poll(&ca));
    assert_eq!(
        change,
        Change {
            bundle: true,
            signer: false
        }
    );
    assert_eq!(stage3.trust_bundle(), next.0);
    assert!(stage3.same_signer(&ca));
    assert!(matches!(reloader.poll(&stage3), Polled::Unchanged));
    // The same files rewritten: a new hash only if the content differs.
    write(p, "root-cert.pem", &next.0);
    assert!(matches!(reloader.poll(&stage3), Polled::Unchanged));
}

#[test]
fn bad_file_sets_are_refused_by_file_and_reason_once() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let ca = Authority::load_or_create(p).unwrap();
    let good_cert = std::fs::read_to_string(p.join("ca-cert.pem")).unwrap();
    let good_key = std::fs::read_to_string(p.join("ca-key.pem")).unwrap();
    let good_root = ca.root_pem();
    let mut reloader = Reloader::new(p.to_path_buf());
    assert!(matches!(reloader.poll(&ca), Polled::Same));
    let other = new_root();

    // A certificate whose key is not the one beside it (e.g. the key not yet written).
    write(p, "ca-cert.pem", &other.0);
    let err = refused(reloader.poll(&ca));
    assert!(
        err.contains("ca-cert.pem") && err.contains("does not match the key"),
        "{err}"
    );
    assert!(
        matches!(reloader.poll(&ca), Polled::Unchanged),
        "reported once"
    );

    // The new pair, but not under any root of the bundle.
    write(p, "ca-key.pem", &other.1);
    let err = refused(reloader.poll(&ca));
    assert!(
        err.contains("ca-cert.pem") && err.contains("is not under any root of root-cert.pem"),
        "{err}"
    );

    // An intermediate whose chain file leads to the wrong root.
    let inter = intermediate(&other);
    write(p, "ca-cert.pem", &inter.0);
    write(p, "ca-key.pem", &inter.1);
    write(p, "cert-chain.pem", &(inter.0.clone() + &good_root));
    write(p, "root-cert.pem", &(good_root.clone() + &other.0));
    let err = refused(reloader.poll(&ca));
    assert!(
        err.contains("cert-chain.pem") && err.contains("is not signed by the certificate after"),
        "{err}"
    );

    // Back to the CA in use, with a half-written bundle.
    write(p, "ca-cert.pem", &good_cert);
    write(p, "ca-key.pem", &good_key);
    std::fs::remove_file(p.join("cert-chain.pem")).unwrap();
    let half = &other.0[..other.0.len() / 2];
    write(p, "root-cert.pem", &(good_root.clone() + half));
    let err = refused(reloader.poll(&ca));
    assert!(
        err.contains("root-cert.pem") && err.contains("half-written"),
        "{err}"
    );

    // A key that is not a key.
    write(p, "root-cert.pem", &good_root);
    write(p, "ca-key.pem", "-----BEGIN PRIVATE KEY-----\nAAAA\n");
    let err = refused(reloader.poll(&ca));
    assert!(
        err.contains("ca-key.pem") && err.contains("not a private key"),
        "{err}"
    );

    // A missing key, and an unreadable bundle (a directory where the file should be).
    std::fs::remove_file(p.join("ca-key.pem")).unwrap();
    let err = refused(reloader.poll(&ca));
    assert!(
        err.contains("ca-key.pem") && err.contains("missing"),
        "{err}"
    );
    write(p, "ca-key.pem", &good_key);
    std::fs::remove_file(p.join("root-cert.pem")).unwrap();
    std::fs::create_dir(p.join("root-cert.pem")).unwrap();
    let err = refused(reloader.poll(&ca));
    assert!(err.contains("root-cert.pem"), "{err}");

    // Repaired: the same CA as the one in use, nothing to apply.
    std::fs::remove_dir(p.join("root-cert.pem")).unwrap();
    write(p, "root-cert.pem", &good_root);
    assert!(matches!(reloader.poll(&ca), Polled::Same));
}

fn sds(ca: LiveAuthority, window: Duration) -> SdsIssuer {
    SdsIssuer::new(
        ca,
        Arc::new(TokenSigner::in_memory().unwrap()),
        SdsOptions {
            trust_domain: "cluster.local".into(),
            workload_cert_ttl: Duration::from_secs(3600),
            reissue_window: window,
        },
    )
}

fn inline(secret: &resource_secret::Secret) -> String {
    use envoy_types::pb::envoy::config::core::v3::data_source::Specifier;
    use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::secret::Type;
    let source = match secret.r#type.as_ref().unwrap() {
        Type::TlsCertificate(t) => t.certificate_chain.clone(),
        Type::ValidationContext(v) => v.trusted_ca.clone(),
        _ => None,
    };
    match source.and_then(|s| s.specifier) {
        Some(Specifier::InlineBytes(b)) => String::from_utf8(b).unwrap(),
        _ => String::new(),
    }
}

mod resource_secret {
    pub use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::Secret;
}

fn decoded(map: &crate::envoy::resource::ResourceMap, name: &str) -> String {
    use prost::Message;
    let secret = resource_secret::Secret::decode(map[name].body.value.clone()).unwrap();
    inline(&secret)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_follow_a_new_bundle_at_once_and_a_new_signer_within_the_window() {
    let start = new_root();
    let first = Authority::from_pems(&start.0, &start.1, None, None, "start").unwrap();
    let old_root = first.root_pem();
    let next = new_root();
    let (live, tx) = LiveAuthority::new(Arc::new(first));
    let issuer = sds(live, Duration::from_millis(300));
    let id = Identity {
        namespace: "a".into(),
        service_account: "b".into(),
    };
    let mut rx = issuer.subscribe(&id);
    rx.wait_for(|s| !s.is_empty()).await.unwrap();
    let before = rx.borrow_and_update().clone();

    // Stage 1: the bundle grows; the certificate stays.
    let both = Authority::from_pems(
        &start.0,
        &start.1,
        Some(&(old_root.clone() + &next.0)),
        None,
        "stage 1",
    )
    .unwrap();
    tx.send_replace(Arc::new(both));
    tokio::time::timeout(Duration::from_secs(5), rx.changed())
        .await
        .unwrap()
        .unwrap();
    let stage1 = rx.borrow_and_update().clone();
    assert_eq!(decoded(&stage1, "ROOTCA"), old_root.clone() + &next.0);
    assert_eq!(
        decoded(&stage1, "default"),
        decoded(&before, "default"),
        "same certificate"
    );

    // Stage 2: the new root signs; the stream is issued a certificate under it.
    let signer = Authority::from_pems(
        &next.0,
        &next.1,
        Some(&(next.0.clone() + &old_root)),
        None,
        "stage 2",
    )
    .unwrap();
    tx.send_replace(Arc::new(signer));
    let reissued = tokio::time::timeout(
        Duration::from_secs(5),
        rx.wait_for(|s| decoded(s, "default").ends_with(&next.0)),
    )
    .await
    .expect("reissued within the window")
    .unwrap()
    .clone();
    assert_eq!(decoded(&reissued, "ROOTCA"), next.0.clone() + &old_root);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_streams_of_one_identity_get_the_same_san_and_different_keys() {
    let issuer = sds(Authority::in_memory().unwrap().into(), Duration::ZERO);
    let id = Identity {
        namespace: "shop".into(),
        service_account: "cart".into(),
    };
    let mut one = issuer.subscribe(&id);
    let mut two = issuer.subscribe(&id);
    assert_eq!(issuer.entries(), 2, "one entry per stream");
    one.wait_for(|s| !s.is_empty()).await.unwrap();
    two.wait_for(|s| !s.is_empty()).await.unwrap();
    let (a, b) = (one.borrow().clone(), two.borrow().clone());
    let leaf =
        |map: &crate::envoy::resource::ResourceMap| certs_in(&decoded(map, "default")).remove(0);
    let (la, lb) = (leaf(&a), leaf(&b));
    let (_, ca) = X509Certificate::from_der(&la).unwrap();
    let (_, cb) = X509Certificate::from_der(&lb).unwrap();
    assert_ne!(
        ca.public_key().raw,
        cb.public_key().raw,
        "a key is never shared"
    );
    let san = |c: &X509Certificate| format!("{:?}", c.subject_alternative_name().unwrap());
    assert_eq!(san(&ca), san(&cb));
    drop(one);
    for _ in 0..50 {
        if issuer.entries() == 1 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the entry outlived its stream");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_serving_certificate_is_issued_again_under_a_new_signer_only() {
    let start = new_root();
    let first = Authority::from_pems(&start.0, &start.1, None, None, "start").unwrap();
    let (live, tx) = LiveAuthority::new(Arc::new(first));
    let names = vec!["istiod.istio-system.svc".to_string()];
    let serving = serving::ServingCert::start(live, names, Duration::from_secs(3600)).unwrap();
    let root_of = |chain: Vec<Vec<u8>>| chain.last().cloned().unwrap();
    let old_root = certs_in(&start.0).remove(0);
    assert_eq!(root_of(serving.chain()), old_root);
    let leaf = serving.chain().remove(0);

    // A new bundle alone keeps the serving certificate.
    let next = new_root();
    let both = Authority::from_pems(
        &start.0,
        &start.1,
        Some(&(start.0.clone() + &next.0)),
        None,
        "stage 1",
    )
    .unwrap();
    tx.send_replace(Arc::new(both));
    // A new signer replaces it; by then the bundle-only change has been seen too (the
    // watch delivers changes in order).
    let signer = Authority::from_pems(&next.0, &next.1, None, None, "stage 2").unwrap();
    let new_root = certs_in(&next.0).remove(0);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(serving.chain()[0], leaf, "a new bundle does not reissue it");
    tx.send_replace(Arc::new(signer));
    for _ in 0..100 {
        if root_of(serving.chain()) == new_root {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the serving certificate was not issued again under the new signer");
}
