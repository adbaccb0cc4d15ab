//! Unit tests of the CA: certificate contents, the CA directory, and every refusal of a
//! caller's token.

use std::time::{Duration, SystemTime};

use serde_json::json;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::*;

use super::*;

fn identity(ns: &str, sa: &str) -> Identity {
    Identity {
        namespace: ns.into(),
        service_account: sa.into(),
    }
}

fn parse(der: &[u8]) -> X509Certificate<'_> {
    X509Certificate::from_der(der).unwrap().1
}

#[test]
fn workload_certificate_has_the_spiffe_san_usages_validity_and_chain() {
    let ca = Authority::in_memory().unwrap();
    let uri = identity("shop", "cart").spiffe("cluster.local");
    assert_eq!(uri, "spiffe://cluster.local/ns/shop/sa/cart");
    let issued = ca.issue(&uri, Duration::from_secs(3600)).unwrap();
    let certs = certs_in(&issued.chain_pem);
    assert_eq!(certs.len(), 2, "leaf then root");
    let leaf = parse(&certs[0]);
    let root = parse(&certs[1]);
    let san = leaf.subject_alternative_name().unwrap().unwrap();
    let names: Vec<_> = san.value.general_names.iter().collect();
    assert_eq!(names, vec![&GeneralName::URI(&uri)]);
    let usage = leaf.key_usage().unwrap().unwrap().value;
    assert!(usage.digital_signature() && usage.key_encipherment());
    assert!(!usage.key_cert_sign());
    let eku = leaf.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.server_auth && eku.client_auth);
    assert!(!leaf.is_ca());
    let life = leaf.validity().not_after.timestamp() - leaf.validity().not_before.timestamp();
    assert_eq!(life, 3600 + issue::BACKDATE.as_secs() as i64);
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!(
        leaf.validity().not_before.timestamp() < now - 60,
        "backdated"
    );
    assert!(
        leaf.tbs_certificate.raw_serial().len() >= 16,
        "random serial"
    );
    // The chain verifies: leaf signed by the root, root self-signed and a CA.
    leaf.verify_signature(Some(root.public_key())).unwrap();
    root.verify_signature(None).unwrap();
    assert!(root.is_ca());
    assert!(root.key_usage().unwrap().unwrap().value.key_cert_sign());
    assert!(issued.key_pem.contains("PRIVATE KEY"));
    assert!(!format!("{issued:?}").contains("PRIVATE"));
    // A new key and serial each time.
    let again = ca.issue(&uri, Duration::from_secs(3600)).unwrap();
    assert_ne!(again.key_pem, issued.key_pem);
    let again_leaf = certs_in(&again.chain_pem).remove(0);
    assert_ne!(
        parse(&again_leaf).tbs_certificate.raw_serial(),
        leaf.tbs_certificate.raw_serial()
    );
}

#[test]
fn ca_directory_is_made_once_and_reused() {
    let dir = tempfile::tempdir().unwrap();
    let first = Authority::load_or_create(dir.path()).unwrap();
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.path().join("ca-key.pem"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let second = Authority::load_or_create(dir.path()).unwrap();
    assert_eq!(first.root_pem(), second.root_pem());
    assert_eq!(
        std::fs::read_to_string(dir.path().join("root-cert.pem")).unwrap(),
        first.root_pem()
    );
    // Issued by the reloaded CA, verified by the first one's root.
    let issued = second
        .issue("spiffe://cluster.local/ns/a/sa/b", Duration::from_secs(60))
        .unwrap();
    let certs = certs_in(&issued.chain_pem);
    let root_der = certs_in(&first.root_pem()).remove(0);
    parse(&certs[0])
        .verify_signature(Some(parse(&root_der).public_key()))
        .unwrap();
}

#[test]
fn plug_in_intermediate_signs_with_the_root_last_and_old_roots_are_trusted() {
    // An organisation root, and an intermediate it signed, laid out as Istio's plug-in CA.
    let root_dir = tempfile::tempdir().unwrap();
    let org = Authority::load_or_create(root_dir.path()).unwrap();
    let inter_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = rcgen::CertificateParams::default();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let inter = params.signed_by(&inter_key, &org.issuer).unwrap();
    let old_root = Authority::in_memory().unwrap().root_pem();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    std::fs::write(p.join("ca-cert.pem"), inter.pem()).unwrap();
    std::fs::write(p.join("ca-key.pem"), inter_key.serialize_pem()).unwrap();
    std::fs::write(p.join("root-cert.pem"), org.root_pem()).unwrap();
    std::fs::write(p.join("cert-chain.pem"), inter.pem() + &org.root_pem()).unwrap();
    std::fs::write(p.join("old-root-cert.pem"), &old_root).unwrap();
    let ca = Authority::load_or_create(p).unwrap();
    let issued = ca
        .issue("spiffe://cluster.local/ns/a/sa/b", Duration::from_secs(60))
        .unwrap();
    let certs = certs_in(&issued.chain_pem);
    assert_eq!(certs.len(), 3, "leaf, intermediate, root");
    assert_eq!(certs[1], inter.der().to_vec());
    assert_eq!(super::pem::pem_of(&certs[2]), org.root_pem());
    parse(&certs[0])
        .verify_signature(Some(parse(&certs[1]).public_key()))
        .unwrap();
    assert_eq!(ca.trust_bundle(), org.root_pem() + &old_root);
}

#[test]
fn ca_directory_with_a_missing_or_wrong_key_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    Authority::load_or_create(dir.path()).unwrap();
    let other = tempfile::tempdir().unwrap();
    Authority::load_or_create(other.path()).unwrap();
    std::fs::copy(
        other.path().join("ca-key.pem"),
        dir.path().join("ca-key.pem"),
    )
    .unwrap();
    let err = Authority::load_or_create(dir.path())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("ca-cert.pem") && err.contains("does not match"),
        "{err}"
    );
    std::fs::remove_file(dir.path().join("ca-key.pem")).unwrap();
    let err = Authority::load_or_create(dir.path())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("ca-key.pem") && err.contains("missing"),
        "{err}"
    );
}

#[test]
fn tokens_prove_their_service_account() {
    let dir = tempfile::tempdir().unwrap();
    let signer = TokenSigner::load_or_create(dir.path()).unwrap();
    let id = identity("shop", "cart");
    let token = signer.mint(&id, Duration::from_secs(600)).unwrap();
    assert_eq!(signer.verify(&token, SystemTime::now()), Ok(id.clone()));
    // The same key after a restart.
    let again = TokenSigner::load_or_create(dir.path()).unwrap();
    assert_eq!(again.verify(&token, SystemTime::now()), Ok(id));
}

#[tokio::test]
async fn every_refusal_of_a_token() {
    let signer = TokenSigner::in_memory().unwrap();
    let other = TokenSigner::in_memory().unwrap();
    let id = identity("shop", "cart");
    let now = SystemTime::now();
    let secs = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = |sub: &str, aud: serde_json::Value, exp: u64| json!({"iss": "meshd", "sub": sub, "aud": aud, "iat": secs, "exp": exp});
    let good_sub = "system:serviceaccount:shop:cart";
    assert_eq!(
        signer.authenticate(None).await,
        Err(AuthError::NoToken),
        "no token"
    );
    assert_eq!(
        signer.authenticate(Some(" ")).await,
        Err(AuthError::NoToken)
    );
    for bad in ["abc", "a.b", "a.b.c.d", "!!.??.**"] {
        assert!(
            matches!(signer.verify(bad, now), Err(AuthError::Malformed(_))),
            "{bad}"
        );
    }
    let foreign = other.mint(&id, Duration::from_secs(600)).unwrap();
    assert_eq!(signer.verify(&foreign, now), Err(AuthError::BadSignature));
    let expired = signer
        .sign(&claims(good_sub, json!(["istio-ca"]), secs - 3600))
        .unwrap();
    assert_eq!(signer.verify(&expired, now), Err(AuthError::Expired));
    let wrong_aud = signer
        .sign(&claims(good_sub, json!(["kubernetes"]), secs + 600))
        .unwrap();
    assert_eq!(
        signer.verify(&wrong_aud, now),
        Err(AuthError::WrongAudience)
    );
    let user = signer
        .sign(&claims("admin", json!("istio-ca"), secs + 600))
        .unwrap();
    assert_eq!(
        signer.verify(&user, now),
        Err(AuthError::NotServiceAccount("admin".into()))
    );
    let mut wrong_iss = claims(good_sub, json!("istio-ca"), secs + 600);
    wrong_iss["iss"] = json!("someone");
    let wrong_iss = signer.sign(&wrong_iss).unwrap();
    assert_eq!(
        signer.verify(&wrong_iss, now),
        Err(AuthError::WrongIssuer("someone".into()))
    );
    // A tampered payload no longer matches its signature.
    let good = signer.mint(&id, Duration::from_secs(600)).unwrap();
    let parts: Vec<&str> = good.split('.').collect();
    use base64::Engine;
    let forged = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(
        claims(
            "system:serviceaccount:shop:admin",
            json!("istio-ca"),
            secs + 600,
        )
        .to_string(),
    );
    let tampered = format!("{}.{forged}.{}", parts[0], parts[2]);
    assert_eq!(signer.verify(&tampered, now), Err(AuthError::BadSignature));
    assert_eq!(signer.authenticate(Some(&good)).await, Ok(id));
}

#[test]
fn secrets_carry_chain_key_and_trust_bundle() {
    use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{secret, Secret};
    use prost::Message;
    let ca = Authority::in_memory().unwrap();
    let issued = ca
        .issue("spiffe://cluster.local/ns/a/sa/b", Duration::from_secs(60))
        .unwrap();
    let map = sds::secrets(&issued, ca.trust_bundle());
    let names: Vec<&str> = map.keys().map(String::as_str).collect();
    assert_eq!(names, ["ROOTCA", "default"]);
    let default = Secret::decode(&map["default"].body.value[..]).unwrap();
    let Some(secret::Type::TlsCertificate(c)) = default.r#type else {
        panic!("default is a tls certificate");
    };
    assert!(c.private_key.is_some() && c.certificate_chain.is_some());
    let root = Secret::decode(&map["ROOTCA"].body.value[..]).unwrap();
    assert!(matches!(
        root.r#type,
        Some(secret::Type::ValidationContext(_))
    ));
    let renew = sds::renew_after(&issued);
    assert!(
        renew >= Duration::from_secs(25) && renew <= Duration::from_secs(34),
        "{renew:?}"
    );
}

#[test]
fn bearer_is_read_from_the_authorization_metadata() {
    let mut headers = tonic::codegen::http::HeaderMap::new();
    assert_eq!(sds::bearer_token(&headers), None);
    headers.insert("authorization", "Bearer abc.def.ghi".parse().unwrap());
    assert_eq!(sds::bearer_token(&headers), Some("abc.def.ghi"));
    headers.insert("authorization", "Basic abc".parse().unwrap());
    assert_eq!(sds::bearer_token(&headers), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sds_entries_are_renewed_and_dropped_with_their_stream() {
    use std::sync::Arc;
    let authority = Arc::new(Authority::in_memory().unwrap());
    let issuer = SdsIssuer::new(
        authority,
        Arc::new(TokenSigner::in_memory().unwrap()),
        SdsOptions {
            trust_domain: "cluster.local".into(),
            workload_cert_ttl: Duration::from_secs(2),
            reissue_window: Duration::from_secs(1),
        },
    );
    let id = identity("shop", "cart");
    let mut first = issuer.subscribe(&id);
    assert_eq!(issuer.entries(), 1);
    first.wait_for(|s| !s.is_empty()).await.unwrap();
    let issued = first.borrow_and_update().clone();
    // Renewed at about half of 2 s, and the watch wakes the stream.
    tokio::time::timeout(Duration::from_secs(5), first.changed())
        .await
        .expect("renewed within 5 s")
        .unwrap();
    assert_ne!(
        first.borrow()["default"].version,
        issued["default"].version,
        "a new certificate"
    );
    drop(first);
    for _ in 0..50 {
        if issuer.entries() == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the entry outlived its stream");
}

#[test]
fn istiod_rsa_and_openssl_ec_ca_keys_sign_workload_certificates() {
    // istiod's self-signed CA stores an RSA key as PKCS#1; OpenSSL writes EC keys as SEC1.
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/ca/legacy-keys");
    let read = |name: &str| std::fs::read_to_string(format!("{fixtures}/{name}")).unwrap();
    let rsa = Authority::from_pems(
        &read("rsa-ca-cert.pem"),
        &read("rsa-ca-key.pem"),
        None,
        None,
        "istio-ca-secret",
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca-cert.pem"), read("ec-ca-cert.pem")).unwrap();
    std::fs::write(dir.path().join("ca-key.pem"), read("ec-ca-key.pem")).unwrap();
    let ec = Authority::load_or_create(dir.path()).unwrap();
    for (ca, root) in [(rsa, "rsa-ca-cert.pem"), (ec, "ec-ca-cert.pem")] {
        let issued = ca
            .issue("spiffe://cluster.local/ns/a/sa/b", Duration::from_secs(60))
            .unwrap();
        let certs = certs_in(&issued.chain_pem);
        let root_der = certs_in(&read(root)).remove(0);
        assert_eq!(certs.last(), Some(&root_der), "{root}: root last");
        parse(&certs[0])
            .verify_signature(Some(parse(&root_der).public_key()))
            .unwrap();
    }
}
