use std::collections::BTreeMap;

use base64::Engine;

use super::*;
use crate::source::objects::ObjectMeta;

fn pem_pair() -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["www.example.com".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    (cert.pem(), key.serialize_pem())
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn secret(
    secret_type: Option<&str>,
    data: &[(&str, String)],
    string_data: &[(&str, String)],
) -> Secret {
    let map = |kv: &[(&str, String)]| -> BTreeMap<String, String> {
        kv.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
    };
    Secret {
        metadata: ObjectMeta {
            name: Some("www-cert".into()),
            namespace: Some("istio-system".into()),
            ..Default::default()
        },
        secret_type: secret_type.map(str::to_string),
        data: map(data),
        string_data: map(string_data),
    }
}

#[test]
fn reads_kubernetes_tls_and_generic_layouts() {
    let (cert, key) = pem_pair();
    let tls = check(&secret(
        Some(TLS_TYPE),
        &[("tls.crt", b64(&cert)), ("tls.key", b64(&key))],
        &[("ca.crt", cert.clone())],
    ))
    .unwrap()
    .unwrap();
    let identity = tls.identity.unwrap();
    assert_eq!(identity.cert_chain, cert.as_bytes());
    assert_eq!(identity.private_key, key.as_bytes());
    assert_eq!(tls.ca_cert.as_deref(), Some(cert.as_bytes()));

    let generic = check(&secret(
        None,
        &[
            ("cert", b64(&cert)),
            ("key", b64(&key)),
            ("cacert", b64(&cert)),
        ],
        &[],
    ))
    .unwrap()
    .unwrap();
    assert!(generic.identity.is_some() && generic.ca_cert.is_some());

    // A CA bundle alone (a `<name>-cacert` secret) is a credential too.
    let ca_only = check(&secret(Some(OPAQUE_TYPE), &[("ca.crt", b64(&cert))], &[]))
        .unwrap()
        .unwrap();
    assert!(ca_only.identity.is_none() && ca_only.ca_cert.is_some());
}

#[test]
fn other_secrets_are_not_credentials() {
    assert_eq!(
        check(&secret(Some("kubernetes.io/dockerconfigjson"), &[], &[])).unwrap(),
        None
    );
    assert_eq!(
        check(&secret(None, &[("password", b64("hunter2"))], &[])).unwrap(),
        None
    );
}

#[test]
fn rejects_naming_the_field_and_never_the_value() {
    let (cert, key) = pem_pair();
    let cases: Vec<(Secret, &str, &str)> = vec![
        (
            secret(
                Some(TLS_TYPE),
                &[("tls.crt", "%%%".into()), ("tls.key", b64(&key))],
                &[],
            ),
            "data[\"tls.crt\"]",
            "not valid base64",
        ),
        (
            secret(
                Some(TLS_TYPE),
                &[("tls.crt", b64("hello")), ("tls.key", b64(&key))],
                &[],
            ),
            "data[\"tls.crt\"]",
            "not PEM",
        ),
        (
            secret(
                Some(TLS_TYPE),
                &[("tls.crt", b64(&key)), ("tls.key", b64(&key))],
                &[],
            ),
            "data[\"tls.crt\"]",
            "expected a certificate",
        ),
        (
            secret(
                Some(TLS_TYPE),
                &[("tls.crt", b64(&cert)), ("tls.key", b64(&cert))],
                &[],
            ),
            "data[\"tls.key\"]",
            "expected a private key",
        ),
        (
            secret(Some(TLS_TYPE), &[("tls.crt", b64(&cert))], &[]),
            "data[\"tls.key\"]",
            "missing",
        ),
        (
            secret(None, &[("tls.key", b64(&key))], &[]),
            "data[\"tls.crt\"]",
            "missing",
        ),
        (
            secret(Some(TLS_TYPE), &[], &[]),
            "data",
            "needs tls.crt and tls.key",
        ),
        (
            secret(
                Some(TLS_TYPE),
                &[("tls.crt", b64(&cert)), ("tls.key", b64(&key))],
                &[("ca.crt", "junk".into())],
            ),
            "stringData[\"ca.crt\"]",
            "not PEM",
        ),
    ];
    for (s, field, reason) in cases {
        let e = check(&s).expect_err(field);
        assert_eq!(e.field, field);
        assert!(e.reason.contains(reason), "{field}: {}", e.reason);
        assert!(!e.reason.contains("PRIVATE KEY-----"), "{}", e.reason);
        assert!(!e.reason.contains(&b64(&key)[..20]), "{}", e.reason);
    }
}
