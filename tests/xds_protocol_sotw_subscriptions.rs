//! State of the World ADS, XDS-PROTOCOL.md rules on what is sent for a subscription
//! (wildcard and named types, names that grow, shrink or appear later): a real tonic
//! server and client in process, one test per rule.

mod support;

use meshd::xds::type_url::{CLUSTER, ENDPOINT, LISTENER, ROUTE, SECRET};
use support::*;

#[tokio::test]
async fn wildcard_empty_set_answered() {
    let h = Harness::start().await;
    let mut s = h.sotw().await;
    s.subscribe(LISTENER, &[]).await;
    let lds = s.recv().await;
    assert_eq!(lds.type_url, LISTENER);
    assert!(lds.resources.is_empty());
    s.subscribe(CLUSTER, &[]).await;
    let cds = s.recv().await;
    assert_eq!(cds.type_url, CLUSTER);
    assert!(cds.resources.is_empty());
}

#[tokio::test]
async fn wildcard_sends_full_set_and_deletion_by_omission() {
    let h = Harness::start().await;
    h.set(CLUSTER, vec![res(CLUSTER, "a", 1), res(CLUSTER, "b", 1)]);
    h.bump();
    let mut s = h.sotw().await;
    s.subscribe(CLUSTER, &["ignored"]).await;
    let first = s.recv().await;
    assert_eq!(names(&first), ["a", "b"]);
    s.ack(&first, &[]).await;
    h.set(CLUSTER, vec![res(CLUSTER, "a", 2)]);
    h.bump();
    assert_eq!(names(&s.recv().await), ["a"]);
}

#[tokio::test]
async fn named_types_send_only_requested_names_that_exist() {
    let h = Harness::start().await;
    h.set(
        ENDPOINT,
        vec![
            res(ENDPOINT, "a", 1),
            res(ENDPOINT, "b", 1),
            res(ENDPOINT, "c", 1),
        ],
    );
    h.set(ROUTE, vec![res(ROUTE, "80", 1), res(ROUTE, "8080", 1)]);
    h.bump();
    let mut s = h.sotw().await;
    s.subscribe(ENDPOINT, &["a", "c", "missing"]).await;
    assert_eq!(names(&s.recv().await), ["a", "c"]);
    s.subscribe(ROUTE, &["8080"]).await;
    assert_eq!(names(&s.recv().await), ["8080"]);
}

#[tokio::test]
async fn subscribed_names_grow_sent_at_once() {
    let h = Harness::start().await;
    h.set(ENDPOINT, vec![res(ENDPOINT, "a", 1), res(ENDPOINT, "b", 1)]);
    h.bump();
    let mut s = h.sotw().await;
    s.subscribe(ENDPOINT, &["a"]).await;
    let first = s.recv().await;
    assert_eq!(names(&first), ["a"]);
    // Same version, more names: no new generation needed.
    s.ack(&first, &["a", "b"]).await;
    let grown = s.recv().await;
    assert_eq!(names(&grown), ["a", "b"]);
    // Fewer names at the same version need no response.
    s.ack(&grown, &["a"]).await;
    s.expect_silence().await;
}

#[tokio::test]
async fn missing_name_sent_when_it_appears() {
    let h = Harness::start().await;
    h.set(ROUTE, vec![res(ROUTE, "80", 1)]);
    h.bump();
    let mut s = h.sotw().await;
    s.subscribe(ROUTE, &["80", "9090"]).await;
    let first = s.recv().await;
    assert_eq!(names(&first), ["80"]);
    s.ack(&first, &["80", "9090"]).await;
    s.expect_silence().await;
    h.set(ROUTE, vec![res(ROUTE, "80", 1), res(ROUTE, "9090", 1)]);
    h.bump();
    // The proxy acknowledged "80": only what changed is sent (Envoy keeps the others).
    assert_eq!(names(&s.recv().await), ["9090"]);
}

#[tokio::test]
async fn unwatched_named_type_not_pushed() {
    let h = Harness::start().await;
    h.set(ROUTE, vec![res(ROUTE, "80", 1)]);
    h.bump();
    let mut s = h.sotw().await;
    s.subscribe(ROUTE, &["80"]).await;
    let first = s.recv().await;
    // The proxy drops its last route name.
    s.ack(&first, &[]).await;
    h.wait_syncz("routes", "nonce_acked", &first.nonce).await;
    h.set(ROUTE, vec![res(ROUTE, "80", 2)]);
    h.bump();
    s.expect_silence().await;
    // Watching again: answered at once with the current content.
    s.ack(&first, &["80"]).await;
    let again = s.recv().await;
    assert_eq!(names(&again), ["80"]);
    assert_ne!(again.version_info, first.version_info);
}

#[tokio::test]
async fn endpoint_request_after_cluster_push_answered() {
    let h = Harness::start().await;
    h.set(CLUSTER, vec![res(CLUSTER, "a", 1)]);
    h.set(ENDPOINT, vec![res(ENDPOINT, "a", 1)]);
    h.bump();
    let mut s = h.sotw().await;
    s.subscribe(CLUSTER, &[]).await;
    let cds = s.recv().await;
    s.subscribe(ENDPOINT, &["a"]).await;
    let eds = s.recv().await;
    s.ack(&cds, &[]).await;
    s.ack(&eds, &["a"]).await;
    // Without a cluster push, repeating the ACK gets nothing.
    s.ack(&eds, &["a"]).await;
    s.expect_silence().await;

    // Only the cluster changes.
    h.set(CLUSTER, vec![res(CLUSTER, "a", 2)]);
    h.bump();
    let cds2 = s.recv().await;
    assert_eq!(cds2.type_url, CLUSTER);
    s.ack(&cds2, &[]).await;
    // Envoy re-sends its last endpoint ACK and waits for an answer to finish warming.
    s.ack(&eds, &["a"]).await;
    let again = s.recv().await;
    assert_eq!(again.type_url, ENDPOINT);
    assert_eq!(again.version_info, eds.version_info);
    assert_ne!(again.nonce, eds.nonce);
    s.ack(&again, &["a"]).await;
    s.expect_silence().await;
}

#[tokio::test]
async fn secrets_withheld_from_unauthenticated_streams() {
    let h = Harness::start().await;
    h.set(SECRET, vec![res(SECRET, "default", 1)]);
    h.bump();
    let mut s = h.sotw().await;
    s.subscribe(SECRET, &["default"]).await;
    let sds = s.recv().await;
    assert_eq!(sds.type_url, SECRET);
    assert!(sds.resources.is_empty());
    s.ack(&sds, &["default"]).await;
    // A new version of the secret is withheld too.
    h.set(SECRET, vec![res(SECRET, "default", 2)]);
    h.bump();
    s.expect_silence().await;
}

/// "Drop queued responses that no longer match the subscription", for a subscription
/// change (config churn is `latest_push_wins`).
#[tokio::test]
async fn queued_push_follows_narrowed_subscription() {
    let h = Harness::start().await;
    h.set(CLUSTER, vec![res(CLUSTER, "a", 1)]);
    h.set(ENDPOINT, vec![res(ENDPOINT, "a", 1)]);
    h.set(LISTENER, vec![res(LISTENER, "l", 1)]);
    h.set(ROUTE, vec![res(ROUTE, "80", 1), res(ROUTE, "90", 1)]);
    h.bump();
    let mut s = h.sotw().await;
    s.subscribe(CLUSTER, &[]).await;
    let cds = s.recv().await;
    s.ack(&cds, &[]).await;
    s.subscribe(ENDPOINT, &["a"]).await;
    let eds = s.recv().await;
    s.ack(&eds, &["a"]).await;
    s.subscribe(LISTENER, &[]).await;
    let lds = s.recv().await;
    s.ack(&lds, &[]).await;
    s.subscribe(ROUTE, &["80", "90"]).await;
    let rds = s.recv().await;
    s.ack(&rds, &["80", "90"]).await;
    h.wait_syncz("routes", "nonce_acked", &rds.nonce).await;

    stall_route_push(&h, &lds.nonce, &rds.nonce).await;

    // The proxy drops route "90" meanwhile.
    s.ack(&rds, &["80"]).await;
    wait_until(&h.status, "routes narrowed to 80", |v| {
        v["routes"]["names"] == serde_json::json!(["80"])
    })
    .await;
    let cds2 = s.recv().await;
    assert_eq!(cds2.type_url, CLUSTER);
    assert_eq!(cds2.resources.len(), 8);
    assert_eq!(s.recv().await.type_url, ENDPOINT);
    assert_eq!(s.recv().await.type_url, LISTENER);
    let rds2 = s.recv().await;
    assert_eq!(rds2.type_url, ROUTE);
    assert_eq!(names(&rds2), ["80"]);
    s.expect_silence().await;
    // Nor is "90" sent when it changes again.
    s.ack(&rds2, &["80"]).await;
    h.set(ROUTE, vec![res(ROUTE, "80", 2), res(ROUTE, "90", 3)]);
    h.bump();
    s.expect_silence().await;
}
