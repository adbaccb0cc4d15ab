//! Delta ADS, XDS-PROTOCOL.md rules on subscriptions (wildcard and explicit names,
//! subscribe/unsubscribe, initial versions, removals): a real tonic server and client in
//! process, one test per rule.

mod support;

use envoy_types::pb::envoy::service::discovery::v3::DeltaDiscoveryRequest;
use meshd::xds::type_url::{CLUSTER, ENDPOINT, LISTENER, ROUTE, SECRET};
use support::*;

#[tokio::test]
async fn delta_wildcard_first_request_sends_all_with_versions() {
    let h = Harness::start().await;
    let a = res(CLUSTER, "a", 1);
    h.set(CLUSTER, vec![a.clone(), res(CLUSTER, "b", 1)]);
    h.bump();
    let mut d = h.delta().await;
    d.subscribe(CLUSTER, &[]).await;
    let r = d.recv().await;
    assert_eq!(delta_names(&r), ["a", "b"]);
    assert_eq!(r.resources[0].version, a.version);
    assert_eq!(r.resources[0].resource.as_ref().unwrap(), &a.body);
    d.ack(&r).await;
    d.expect_silence().await;
    let syncz = h.status.syncz_json();
    assert_eq!(syncz[NODE]["delta"], true);
    assert_eq!(
        syncz[NODE]["clusters"]["version_acked"],
        r.system_version_info
    );
    assert_eq!(syncz[NODE]["clusters"]["wildcard"], true);

    // An empty wildcard set is answered too.
    d.subscribe(LISTENER, &["*"]).await;
    let lds = d.recv().await;
    assert_eq!(lds.type_url, LISTENER);
    assert!(lds.resources.is_empty() && lds.removed_resources.is_empty());
}

#[tokio::test]
async fn delta_subscribe_and_unsubscribe_honoured_on_stale_nonce() {
    let h = Harness::start().await;
    h.set(ENDPOINT, vec![res(ENDPOINT, "a", 1), res(ENDPOINT, "b", 1)]);
    h.bump();
    let mut d = h.delta().await;
    d.subscribe(ENDPOINT, &["a"]).await;
    let first = d.recv().await;
    assert_eq!(delta_names(&first), ["a"]);
    d.ack(&first).await;

    d.send(DeltaDiscoveryRequest {
        type_url: ENDPOINT.into(),
        response_nonce: "stale".into(),
        resource_names_subscribe: vec!["b".into()],
        ..Default::default()
    })
    .await;
    assert_eq!(delta_names(&d.recv().await), ["b"]);

    d.send(DeltaDiscoveryRequest {
        type_url: ENDPOINT.into(),
        response_nonce: "stale".into(),
        resource_names_unsubscribe: vec!["a".into()],
        ..Default::default()
    })
    .await;
    d.expect_silence().await;
    // "a" changes: no longer subscribed, so not sent; "b" is.
    h.set(ENDPOINT, vec![res(ENDPOINT, "a", 2), res(ENDPOINT, "b", 2)]);
    h.bump();
    let r = d.recv().await;
    assert_eq!(delta_names(&r), ["b"]);
    assert!(r.removed_resources.is_empty());
    assert_eq!(
        h.status.syncz_json()[NODE]["endpoints"]["names"],
        serde_json::json!(["b"])
    );
}

#[tokio::test]
async fn delta_initial_resource_versions_seed_sent_and_removed() {
    let h = Harness::start().await;
    let a = res(CLUSTER, "a", 1);
    h.set(CLUSTER, vec![a.clone(), res(CLUSTER, "b", 1)]);
    h.bump();
    let mut d = h.delta().await;
    // A reconnecting proxy: it has "a" at the current version, "b" at an old one, and
    // "gone" which no longer exists.
    d.send(DeltaDiscoveryRequest {
        node: node(),
        type_url: CLUSTER.into(),
        initial_resource_versions: [
            ("a".to_string(), a.version.clone()),
            ("b".to_string(), "old".to_string()),
            ("gone".to_string(), "old".to_string()),
        ]
        .into_iter()
        .collect(),
        ..Default::default()
    })
    .await;
    let r = d.recv().await;
    assert_eq!(delta_names(&r), ["b"]);
    assert_eq!(r.removed_resources, ["gone"]);
}

#[tokio::test]
async fn delta_nonexistent_subscribed_names_removed() {
    let h = Harness::start().await;
    h.set(ENDPOINT, vec![res(ENDPOINT, "a", 1)]);
    h.bump();
    let mut d = h.delta().await;
    d.subscribe(ENDPOINT, &["a", "missing"]).await;
    let r = d.recv().await;
    assert_eq!(delta_names(&r), ["a"]);
    assert_eq!(r.removed_resources, ["missing"]);
    d.ack(&r).await;
    // Told once; when it appears it is sent.
    h.bump();
    d.expect_silence().await;
    h.set(
        ENDPOINT,
        vec![res(ENDPOINT, "a", 1), res(ENDPOINT, "missing", 1)],
    );
    h.bump();
    let r = d.recv().await;
    assert_eq!(delta_names(&r), ["missing"]);
    assert!(r.removed_resources.is_empty());
    // And when a held resource disappears, it is removed.
    d.ack(&r).await;
    h.set(ENDPOINT, vec![res(ENDPOINT, "missing", 1)]);
    h.bump();
    let r = d.recv().await;
    assert!(r.resources.is_empty());
    assert_eq!(r.removed_resources, ["a"]);
}

#[tokio::test]
async fn delta_wildcard_mixes_with_explicit_and_unsubscribe_keeps_view() {
    let h = Harness::start().await;
    h.set(CLUSTER, vec![res(CLUSTER, "a", 1), res(CLUSTER, "b", 1)]);
    h.bump();
    let mut d = h.delta().await;
    d.subscribe(CLUSTER, &["*", "a", "extra"]).await;
    let r = d.recv().await;
    assert_eq!(delta_names(&r), ["a", "b"]);
    // The explicit name outside the set does not exist.
    assert_eq!(r.removed_resources, ["extra"]);
    d.ack(&r).await;

    // Unsubscribing "a" explicitly while the wildcard is on: the proxy must still end up
    // with "a", so its current state is sent again.
    d.send(DeltaDiscoveryRequest {
        type_url: CLUSTER.into(),
        resource_names_unsubscribe: vec!["a".into()],
        ..Default::default()
    })
    .await;
    let r = d.recv().await;
    assert_eq!(delta_names(&r), ["a"]);
    assert!(r.removed_resources.is_empty());
    d.ack(&r).await;

    // Wildcard off: explicit names only; what the proxy still holds is removed.
    d.send(DeltaDiscoveryRequest {
        type_url: CLUSTER.into(),
        resource_names_subscribe: vec!["b".into()],
        resource_names_unsubscribe: vec!["*".into()],
        ..Default::default()
    })
    .await;
    let r = d.recv().await;
    assert_eq!(r.removed_resources, ["a"]);
    assert_eq!(delta_names(&r), ["b"]);
}

#[tokio::test]
async fn delta_secrets_withheld_from_unauthenticated_streams() {
    let h = Harness::start().await;
    h.set(SECRET, vec![res(SECRET, "default", 1)]);
    h.bump();
    let mut d = h.delta().await;
    d.subscribe(SECRET, &["default"]).await;
    let r = d.recv().await;
    assert_eq!(r.type_url, SECRET);
    assert!(r.resources.is_empty());
    assert_eq!(r.removed_resources, ["default"]);
    d.ack(&r).await;
    // A new version of the secret is withheld too, and the removal is not repeated.
    h.set(SECRET, vec![res(SECRET, "default", 2)]);
    h.bump();
    d.expect_silence().await;
}

/// "Drop queued responses that no longer match the subscription", for a subscription
/// change (config churn is `delta_latest_push_wins`).
#[tokio::test]
async fn delta_queued_push_follows_unsubscribe() {
    let h = Harness::start().await;
    h.set(CLUSTER, vec![res(CLUSTER, "a", 1)]);
    h.set(ENDPOINT, vec![res(ENDPOINT, "a", 1)]);
    h.set(LISTENER, vec![res(LISTENER, "l", 1)]);
    h.set(ROUTE, vec![res(ROUTE, "80", 1), res(ROUTE, "90", 1)]);
    h.bump();
    let mut d = h.delta().await;
    d.subscribe(CLUSTER, &[]).await;
    let cds = d.recv().await;
    d.ack(&cds).await;
    d.subscribe(ENDPOINT, &["a"]).await;
    let eds = d.recv().await;
    d.ack(&eds).await;
    d.subscribe(LISTENER, &[]).await;
    let lds = d.recv().await;
    d.ack(&lds).await;
    d.subscribe(ROUTE, &["80", "90"]).await;
    let rds = d.recv().await;
    assert_eq!(delta_names(&rds), ["80", "90"]);
    d.ack(&rds).await;
    h.wait_syncz("routes", "nonce_acked", &rds.nonce).await;

    stall_route_push(&h, &lds.nonce, &rds.nonce).await;

    // The proxy unsubscribes route "90" meanwhile.
    d.send(DeltaDiscoveryRequest {
        type_url: ROUTE.into(),
        resource_names_unsubscribe: vec!["90".into()],
        ..Default::default()
    })
    .await;
    wait_until(&h.status, "routes narrowed to 80", |v| {
        v["routes"]["names"] == serde_json::json!(["80"])
    })
    .await;
    let cds2 = d.recv().await;
    assert_eq!(cds2.type_url, CLUSTER);
    assert_eq!(cds2.resources.len(), 8);
    assert_eq!(cds2.removed_resources, ["a"]);
    assert_eq!(d.recv().await.type_url, ENDPOINT);
    assert_eq!(d.recv().await.type_url, LISTENER);
    let rds2 = d.recv().await;
    assert_eq!(rds2.type_url, ROUTE);
    assert_eq!(delta_names(&rds2), ["80"]);
    assert!(rds2.removed_resources.is_empty());
    d.expect_silence().await;
    // Nor is "90" sent when it changes again.
    d.ack(&rds2).await;
    h.set(ROUTE, vec![res(ROUTE, "80", 2), res(ROUTE, "90", 3)]);
    h.bump();
    d.expect_silence().await;
}
