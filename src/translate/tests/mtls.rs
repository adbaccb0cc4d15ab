//! Mesh mTLS through the translator: PeerAuthentication per workload in the inbound
//! listener, shared between proxies with the same modes, a new generation when a policy or
//! an endpoint's identity changes, and what a proxy without certificate gets instead.

use super::*;
use crate::mesh::peer_authentication::{MtlsMode, PeerAuthentication};
use envoy_types::pb::envoy::config::cluster::v3::Cluster;

fn with_mtls(model: MeshModel) -> Translator {
    Translator::new(Arc::new(model))
}

/// `proxy` as its authenticated stream presents it.
fn with_identity(mut proxy: ProxyId) -> ProxyId {
    proxy.identity = Some(format!(
        "spiffe://cluster.local/ns/{}/sa/default",
        proxy.namespace
    ));
    proxy
}

/// Whether any resource of `resources` refers to an SDS secret (an `sdsConfig`, or
/// `ROOTCA` by name).
fn names_a_secret(resources: &ProxyResources) -> bool {
    resources
        .by_type
        .values()
        .flat_map(|m| m.values())
        .any(|r| {
            let json = crate::envoy::json::resource_to_json(r).unwrap().to_string();
            json.contains("sdsConfig") || json.contains(crate::translate::mtls::ROOT_SECRET)
        })
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
    let reviews = t.proxy_resources(&with_identity(reviews_proxy()));
    let productpage = t.proxy_resources(&with_identity(proxy(
        "sidecar~10.244.1.10~productpage-v1.default~default.svc.cluster.local",
    )));
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
    // Without a certificate the same proxy gets no TLS chain.
    let plain = t.proxy_resources(&reviews_proxy());
    assert_eq!(tls_chains(&inbound(&plain)), 0);
}

#[test]
fn a_new_identity_behind_a_service_rebuilds_its_clusters() {
    let name = "outbound|9080||reviews.default.svc.cluster.local";
    let first = with_mtls(model());
    let before: Cluster = decode(
        &first.proxy_resources(&with_identity(reviews_proxy())),
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
        &next.proxy_resources(&with_identity(reviews_proxy())),
        type_url::CLUSTER,
        name,
    );
    assert_ne!(before, after, "the SAN list names the new service account");
}

#[test]
fn the_same_node_with_and_without_identity() {
    let t = with_mtls(model());
    let node = "sidecar~10.244.1.10~productpage-v1.default~default.svc.cluster.local";
    let cluster = "outbound|9080||reviews.default.svc.cluster.local";
    let with = t.proxy_resources(&with_identity(proxy(node)));
    let without = t.proxy_resources(&proxy(node));
    // With: automatic mTLS to the sidecar endpoints, and PERMISSIVE inbound chains.
    let c: Cluster = decode(&with, type_url::CLUSTER, cluster);
    let matches: Vec<&str> = c
        .transport_socket_matches
        .iter()
        .map(|m| m.name.as_str())
        .collect();
    assert_eq!(matches, ["tlsMode-istio", "tlsMode-disabled"]);
    assert_eq!(tls_chains(&inbound(&with)), 1);
    assert!(names_a_secret(&with));
    // Without: plaintext everywhere and no secret named anywhere.
    let c: Cluster = decode(&without, type_url::CLUSTER, cluster);
    assert!(c.transport_socket_matches.is_empty() && c.transport_socket.is_none());
    assert_eq!(tls_chains(&inbound(&without)), 0);
    assert!(!names_a_secret(&without));
    assert!(t.identity_problems(&proxy(node)).is_empty());
    // Never shared between the two.
    assert_ne!(
        with.of_type(type_url::CLUSTER),
        without.of_type(type_url::CLUSTER)
    );
}

#[test]
fn a_strict_port_refuses_a_proxy_without_certificate() {
    let t = with_mtls(with_policies(vec![policy(
        "default",
        "reviews",
        Some("reviews"),
        MtlsMode::Strict,
    )]));
    let l = inbound(&t.proxy_resources(&reviews_proxy()));
    assert_eq!(tls_chains(&l), 0);
    let refused: Vec<&str> = l
        .filter_chains
        .iter()
        .chain(l.default_filter_chain.as_ref())
        .filter(|c| {
            c.filters.first().map(|f| f.name.as_str())
                == Some(crate::translate::authz::NETWORK_RBAC)
        })
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(refused, ["0.0.0.0_9080", naming::PASSTHROUGH_CHAIN]);
    let problems = t.identity_problems(&reviews_proxy());
    assert_eq!(problems.len(), 1);
    assert!(problems[0].contains("STRICT") && problems[0].contains("9080"));
}
