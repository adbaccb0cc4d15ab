//! Mesh mTLS through the translator: PeerAuthentication per workload in the inbound
//! listener, shared between proxies with the same modes, and a new generation when a
//! policy or an endpoint's identity changes.

use super::*;
use crate::mesh::peer_authentication::{MtlsMode, PeerAuthentication};
use envoy_types::pb::envoy::config::cluster::v3::Cluster;

fn with_mtls(model: MeshModel) -> Translator {
    Translator::with_options(
        Arc::new(model),
        Arc::new(TranslateOptions {
            mtls: true,
            ..Default::default()
        }),
    )
}

fn policy(ns: &str, name: &str, app: Option<&str>, mode: MtlsMode) -> PeerAuthentication {
    PeerAuthentication {
        key: key(ns, name),
        selector: app.map(|a| BTreeMap::from([("app".to_string(), a.to_string())])),
        mode,
        port_level: BTreeMap::new(),
        created: None,
    }
}

fn with_policies(policies: Vec<PeerAuthentication>) -> MeshModel {
    let mut m = model();
    for p in policies {
        m.peer_authentications.insert(p.key.clone(), Arc::new(p));
    }
    m
}

fn inbound(resources: &ProxyResources) -> Listener {
    decode(resources, type_url::LISTENER, "virtualInbound")
}

fn tls_chains(l: &Listener) -> usize {
    l.filter_chains
        .iter()
        .filter(|c| c.transport_socket.is_some())
        .count()
}

#[test]
fn inbound_chains_follow_each_workloads_policy_and_are_shared_by_mode() {
    let t = with_mtls(with_policies(vec![policy(
        "default",
        "reviews",
        Some("reviews"),
        MtlsMode::Strict,
    )]));
    let reviews = t.proxy_resources(&reviews_proxy());
    let productpage = t.proxy_resources(&proxy(
        "sidecar~10.244.1.10~productpage-v1.default~default.svc.cluster.local",
    ));
    // Same ports (9080 HTTP), different modes: different listeners.
    let strict = inbound(&reviews);
    let permissive = inbound(&productpage);
    assert_ne!(strict, permissive);
    assert_eq!(tls_chains(&strict), 1, "one mTLS-only chain for 9080");
    assert!(strict
        .default_filter_chain
        .unwrap()
        .transport_socket
        .is_some());
    assert_eq!(tls_chains(&permissive), 1);
    assert_eq!(
        permissive.filter_chains.len(),
        3,
        "blackhole, mTLS, plaintext"
    );
    assert!(permissive
        .default_filter_chain
        .unwrap()
        .transport_socket
        .is_none());
    let filters: Vec<&str> = permissive
        .listener_filters
        .iter()
        .map(|f| f.name.as_str())
        .collect();
    assert_eq!(
        filters,
        [
            crate::translate::filter::original_dst::NAME,
            crate::translate::filter::tls_inspector::NAME
        ]
    );
    // Without --mtls the same model gives the plaintext listener.
    let plain = Translator::new(t.model().clone()).proxy_resources(&reviews_proxy());
    assert_eq!(tls_chains(&inbound(&plain)), 0);
}

#[test]
fn a_new_identity_behind_a_service_rebuilds_its_clusters() {
    let name = "outbound|9080||reviews.default.svc.cluster.local";
    let first = with_mtls(model());
    let before: Cluster = decode(
        &first.proxy_resources(&reviews_proxy()),
        type_url::CLUSTER,
        name,
    );
    assert_eq!(before.transport_socket_matches.len(), 2);
    let mut m = model();
    let mut endpoints = (**m.endpoints_of(&key("default", "reviews"), 9080).unwrap()).clone();
    endpoints.endpoints[0].service_account = Some("reviews".into());
    m.endpoints
        .insert((key("default", "reviews"), 9080), Arc::new(endpoints));
    let next = Translator::next(&first, Arc::new(m));
    let after: Cluster = decode(
        &next.proxy_resources(&reviews_proxy()),
        type_url::CLUSTER,
        name,
    );
    assert_ne!(before, after, "the SAN list names the new service account");
}
