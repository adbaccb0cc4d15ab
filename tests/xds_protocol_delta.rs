//! Delta ADS against the rules of XDS-PROTOCOL.md: a real tonic server and client in
//! process, one test per rule.

mod support;

use envoy_types::pb::envoy::service::discovery::v3::DeltaDiscoveryRequest;
use meshd::xds::server::XdsOptions;
use meshd::xds::type_url::{CLUSTER, ENDPOINT, LISTENER, ROUTE};
use support::*;

#[tokio::test]
async fn delta_refused_before_first_load() {
    let h = Harness::start_with(XdsOptions::default(), 0).await;
    let err = h.try_delta().await.err().expect("refused");
    assert_eq!(err.code(), tonic::Code::Unavailable);
    assert_eq!(err.message(), "configuration not loaded yet");
}

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
async fn delta_rejected_version_never_resent() {
    let h = Harness::start().await;
    h.set(ROUTE, vec![res(ROUTE, "80", 1), res(ROUTE, "90", 1)]);
    h.bump();
    let mut d = h.delta().await;
    d.subscribe(ROUTE, &["80", "90"]).await;
    let r = d.recv().await;
    d.ack(&r).await;

    h.set(ROUTE, vec![res(ROUTE, "80", 2), res(ROUTE, "90", 1)]);
    h.bump();
    let bad = d.recv().await;
    assert_eq!(delta_names(&bad), ["80"]);
    d.send(DeltaDiscoveryRequest {
        type_url: ROUTE.into(),
        response_nonce: bad.nonce.clone(),
        error_detail: rejection("bad route"),
        ..Default::default()
    })
    .await;
    d.expect_silence().await;
    let syncz = h.status.syncz_json();
    assert_eq!(syncz[NODE]["routes"]["last_nack"], "bad route");
    assert!(h
        .status
        .render_metrics()
        .contains("pilot_total_xds_rejects{type=\"rds\"} 1\n"));

    // Another resource changes; the rejected version of "80" is not sent with it.
    h.set(ROUTE, vec![res(ROUTE, "80", 2), res(ROUTE, "90", 2)]);
    h.bump();
    let r = d.recv().await;
    assert_eq!(delta_names(&r), ["90"]);
    d.ack(&r).await;
    // Re-subscribing does not bring the rejected version back either.
    d.send(DeltaDiscoveryRequest {
        type_url: ROUTE.into(),
        resource_names_subscribe: vec!["80".into()],
        ..Default::default()
    })
    .await;
    d.expect_silence().await;
    // A new version of "80" is sent.
    h.set(ROUTE, vec![res(ROUTE, "80", 3), res(ROUTE, "90", 2)]);
    h.bump();
    assert_eq!(delta_names(&d.recv().await), ["80"]);
}

#[tokio::test]
async fn delta_cluster_change_pushes_its_endpoints() {
    let h = Harness::start().await;
    h.set(CLUSTER, vec![res(CLUSTER, "a", 1), res(CLUSTER, "b", 1)]);
    h.set(ENDPOINT, vec![res(ENDPOINT, "a", 1), res(ENDPOINT, "b", 1)]);
    h.bump();
    let mut d = h.delta().await;
    d.subscribe(CLUSTER, &[]).await;
    let cds = d.recv().await;
    d.ack(&cds).await;
    d.subscribe(ENDPOINT, &["a", "b"]).await;
    let eds = d.recv().await;
    assert_eq!(delta_names(&eds), ["a", "b"]);
    d.ack(&eds).await;

    // Only cluster "a" changes; its endpoints are the same but are pushed after it.
    h.set(CLUSTER, vec![res(CLUSTER, "a", 2), res(CLUSTER, "b", 1)]);
    h.bump();
    let cds = d.recv().await;
    assert_eq!(cds.type_url, CLUSTER);
    assert_eq!(delta_names(&cds), ["a"]);
    let eds = d.recv().await;
    assert_eq!(eds.type_url, ENDPOINT);
    assert_eq!(delta_names(&eds), ["a"]);
    assert_eq!(eds.resources[0].version, res(ENDPOINT, "a", 1).version);
}

#[tokio::test]
async fn delta_generate_error_closes_stream_with_message() {
    let h = Harness::start().await;
    h.fail_with("unknown proxy");
    let mut d = h.delta().await;
    d.subscribe(CLUSTER, &[]).await;
    let err = tokio::time::timeout(WAIT, d.responses.message())
        .await
        .expect("closed in time")
        .expect_err("stream fails");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert_eq!(err.message(), "unknown proxy");
}

#[tokio::test]
async fn delta_latest_push_wins() {
    let h = Harness::start().await;
    h.set(CLUSTER, vec![res(CLUSTER, "a", 0)]);
    h.bump();
    let mut d = h.delta().await;
    d.subscribe(CLUSTER, &[]).await;
    let first = d.recv().await;
    d.ack(&first).await;
    for rev in 1..=50 {
        h.set(CLUSTER, vec![res(CLUSTER, "a", rev)]);
        h.bump();
    }
    let latest = res(CLUSTER, "a", 50).version.clone();
    let mut received = 0;
    loop {
        let r = d.recv().await;
        received += 1;
        if r.resources.iter().any(|x| x.version == latest) {
            break;
        }
    }
    assert!(received < 50, "every generation was pushed ({received})");
    d.expect_silence().await;
}
