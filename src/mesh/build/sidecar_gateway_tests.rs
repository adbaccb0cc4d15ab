use super::*;
use crate::mesh::build::istio_test_support::{assert_rejects, istio};

fn object<S: serde::de::DeserializeOwned>(yaml_spec: &str) -> wire::IstioObject<S> {
    istio("scope", "shop", yaml_spec)
}

#[test]
fn sidecar_hosts_take_istios_namespace_forms() {
    let s = check_sidecar(&object(
        "egress:\n- hosts: [./*, istio-system/*, '*/api.example.com', ~/*]\noutboundTrafficPolicy: {mode: REGISTRY_ONLY}\n",
    ))
    .unwrap();
    let scopes: Vec<_> = s.egress[0]
        .hosts
        .iter()
        .map(|h| h.namespace.clone())
        .collect();
    assert_eq!(
        scopes,
        [
            NamespaceScope::ProxyNamespace,
            NamespaceScope::Named("istio-system".into()),
            NamespaceScope::Any,
            NamespaceScope::None,
        ]
    );
    assert_eq!(
        s.outbound_traffic_policy,
        Some(OutboundPolicy::RegistryOnly)
    );
}

#[test]
fn gateway_servers_with_tls() {
    let g = check_gateway(&object(
        "selector: {istio: ingressgateway}\nservers:\n- port: {number: 443, name: https, protocol: HTTPS}\n  hosts: [shop/www.example.com]\n  tls: {mode: SIMPLE, credentialName: www-cert}\n- port: {number: 80, name: http, protocol: HTTP}\n  hosts: ['*']\n  tls: {httpsRedirect: true}\n",
    ))
    .unwrap();
    assert_eq!(
        g.servers[0].tls.as_ref().unwrap().mode,
        Some(ServerTlsMode::Simple)
    );
    assert_eq!(g.servers[1].hosts[0].namespace, NamespaceScope::Any);
    assert!(g.servers[1].tls.as_ref().unwrap().https_redirect);
}

#[test]
fn rejects_with_field_and_reason() {
    let sidecar_cases = [
        ("egress:\n- hosts: [reviews]\n", "spec.egress[0].hosts[0]", "must be namespace/host"),
        ("egress:\n- hosts: []\n", "spec.egress[0].hosts", "at least one host"),
        (
            "outboundTrafficPolicy: {mode: DENY}\n",
            "spec.outboundTrafficPolicy.mode",
            "not ALLOW_ANY or REGISTRY_ONLY",
        ),
        (
            "ingress:\n- port: {number: 9080, name: http, protocol: HTTP}\n  defaultEndpoint: 10.0.0.1:80\n",
            "spec.ingress[0].defaultEndpoint",
            "not 127.0.0.1:PORT",
        ),
    ];
    assert_rejects(&sidecar_cases, |spec| check_sidecar(&object(spec)));
    let gateway_cases = [
        ("selector: {a: b}\n", "spec.servers", "at least one server"),
        (
            "servers:\n- port: {number: 443, name: https, protocol: HTTPS}\n  hosts: ['*']\n",
            "spec.servers[0].tls",
            "needs tls settings",
        ),
        (
            "servers:\n- port: {number: 443, name: https, protocol: HTTPS}\n  hosts: ['*']\n  tls: {mode: SIMPLE}\n",
            "spec.servers[0].tls",
            "SIMPLE and MUTUAL need credentialName",
        ),
        (
            "servers:\n- port: {number: 80, name: http, protocol: HTTP}\n  hosts: ['a*.com']\n",
            "spec.servers[0].hosts[0]",
            "not a valid host name",
        ),
    ];
    assert_rejects(&gateway_cases, |spec| check_gateway(&object(spec)));
}
