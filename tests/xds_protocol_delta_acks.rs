//! Delta ADS, XDS-PROTOCOL.md rules on the stream's start, ACKs, NACKs and nonces: a real
//! tonic server and client in process, one test per rule.

mod support;

use envoy_types::pb::envoy::service::discovery::v3::DeltaDiscoveryRequest;
use meshd::xds::server::XdsOptions;
use meshd::xds::type_url::{CLUSTER, LISTENER, ROUTE};
use support::*;

#[tokio::test]
async fn delta_refused_before_first_load() {
    let h = Harness::start_with(XdsOptions::default(), 0).await;
    let err = h.try_delta().await.err().expect("refused");
    assert_eq!(err.code(), tonic::Code::Unavailable);
    assert_eq!(err.message(), "configuration not loaded yet");
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
    d.nack(&bad, "bad route").await;
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
async fn delta_rejected_name_dropped_and_asked_for_again_is_sent_once_more() {
    let h = Harness::start().await;
    h.set(ROUTE, vec![res(ROUTE, "80", 1)]);
    h.bump();
    let mut d = h.delta().await;
    d.subscribe(ROUTE, &["80"]).await;
    let bad = d.recv().await;
    d.nack(&bad, "bad route").await;
    d.expect_silence().await;
    // The proxy drops the name, then asks for it again (say for a rebuilt listener): it
    // holds nothing for it, so it gets the version it rejected once more rather than
    // waiting forever.
    d.send(DeltaDiscoveryRequest {
        type_url: ROUTE.into(),
        resource_names_unsubscribe: vec!["80".into()],
        ..Default::default()
    })
    .await;
    d.send(DeltaDiscoveryRequest {
        type_url: ROUTE.into(),
        resource_names_subscribe: vec!["80".into()],
        ..Default::default()
    })
    .await;
    let again = d.recv().await;
    assert_eq!(delta_names(&again), ["80"]);
    assert_eq!(again.resources[0].version, bad.resources[0].version);
}

#[tokio::test]
async fn delta_first_request_answered_despite_error_detail_and_empty_nonce() {
    let h = Harness::start().await;
    h.set(LISTENER, vec![res(LISTENER, "l", 1)]);
    h.bump();
    let mut d = h.delta().await;
    // As after a reconnect: no nonce, and the last rejection carried over.
    d.send(DeltaDiscoveryRequest {
        node: node(),
        type_url: LISTENER.into(),
        response_nonce: String::new(),
        error_detail: rejection("rejected before the reconnect"),
        ..Default::default()
    })
    .await;
    let lds = d.recv().await;
    assert_eq!(lds.type_url, LISTENER);
    assert_eq!(delta_names(&lds), ["l"]);
    let syncz = h.status.syncz_json();
    assert_eq!(
        syncz[NODE]["listeners"]["last_nack"],
        "rejected before the reconnect"
    );
    assert_eq!(syncz[NODE]["listeners"]["nacked"], false);
}

#[tokio::test]
async fn delta_stale_nonce_ignored() {
    let h = Harness::start().await;
    h.set(ROUTE, vec![res(ROUTE, "80", 1)]);
    h.bump();
    let mut d = h.delta().await;
    d.subscribe(ROUTE, &["80"]).await;
    let first = d.recv().await;
    assert_eq!(delta_names(&first), ["80"]);

    // An ACK of a nonce never sent: neither recorded nor answered.
    d.send(DeltaDiscoveryRequest {
        type_url: ROUTE.into(),
        response_nonce: "stale".into(),
        ..Default::default()
    })
    .await;
    d.expect_silence().await;
    assert_eq!(h.status.syncz_json()[NODE]["routes"]["nonce_acked"], "");

    // A NACK of a nonce never sent: the version is not marked rejected, so subscribing
    // "80" again brings it back (a rejected version would not be, see
    // delta_rejected_version_never_resent).
    d.send(DeltaDiscoveryRequest {
        type_url: ROUTE.into(),
        response_nonce: "stale".into(),
        error_detail: rejection("about something else"),
        ..Default::default()
    })
    .await;
    d.expect_silence().await;
    assert!(h
        .status
        .render_metrics()
        .contains("pilot_total_xds_rejects{type=\"rds\"} 0\n"));
    assert_eq!(
        h.status.syncz_json()[NODE]["routes"]["last_nack"],
        serde_json::Value::Null
    );
    d.send(DeltaDiscoveryRequest {
        type_url: ROUTE.into(),
        resource_names_subscribe: vec!["80".into()],
        ..Default::default()
    })
    .await;
    let again = d.recv().await;
    assert_eq!(delta_names(&again), ["80"]);
    assert_eq!(again.resources[0].version, first.resources[0].version);

    // The real nonce is recorded.
    d.ack(&again).await;
    h.wait_syncz("routes", "nonce_acked", &again.nonce).await;
}

/// Envoy's cluster and listener managers apply the valid resources of a Delta response and
/// name the refused ones in the NACK message: only those are rejected; the others count as
/// held by the proxy (not resent when re-subscribed).
#[tokio::test]
async fn delta_nack_rejects_only_the_named_resources() {
    let h = Harness::start().await;
    h.set(CLUSTER, vec![res(CLUSTER, "a", 1), res(CLUSTER, "b", 1)]);
    h.bump();
    let mut d = h.delta().await;
    d.subscribe(CLUSTER, &[]).await;
    let first = d.recv().await;
    assert_eq!(delta_names(&first), ["a", "b"]);
    d.nack(&first, "Error adding/updating cluster(s) a: bad lb policy")
        .await;
    d.expect_silence().await;
    // Asking for both again brings back the held one at its version, not the rejected one.
    let resubscribe = DeltaDiscoveryRequest {
        type_url: CLUSTER.into(),
        resource_names_subscribe: vec!["a".into(), "b".into()],
        ..Default::default()
    };
    d.send(resubscribe.clone()).await;
    let again = d.recv().await;
    assert_eq!(delta_names(&again), ["b"]);
    d.ack(&again).await;
    // A new version of "a" is sent.
    h.set(CLUSTER, vec![res(CLUSTER, "a", 2), res(CLUSTER, "b", 1)]);
    h.bump();
    assert_eq!(delta_names(&d.recv().await), ["a"]);
}

/// A NACK whose message names none of the response's resources rejects all of them.
#[tokio::test]
async fn delta_nack_naming_nothing_rejects_the_whole_response() {
    let h = Harness::start().await;
    h.set(CLUSTER, vec![res(CLUSTER, "a", 1), res(CLUSTER, "b", 1)]);
    h.bump();
    let mut d = h.delta().await;
    d.subscribe(CLUSTER, &[]).await;
    let first = d.recv().await;
    d.nack(&first, "bad config").await;
    d.expect_silence().await;
    d.send(DeltaDiscoveryRequest {
        type_url: CLUSTER.into(),
        resource_names_subscribe: vec!["a".into(), "b".into()],
        ..Default::default()
    })
    .await;
    d.expect_silence().await;
    h.set(CLUSTER, vec![res(CLUSTER, "a", 1), res(CLUSTER, "b", 2)]);
    h.bump();
    assert_eq!(delta_names(&d.recv().await), ["b"]);
}
