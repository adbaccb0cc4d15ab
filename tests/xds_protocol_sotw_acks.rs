//! State of the World ADS, XDS-PROTOCOL.md rules on the stream's start, ACKs, NACKs and
//! nonces: a real tonic server and client in process, one test per rule.

mod support;

use envoy_types::pb::envoy::service::discovery::v3::DiscoveryRequest;
use meshd::envoy::resource::set_version;
use meshd::xds::server::XdsOptions;
use meshd::xds::type_url::{CLUSTER, ENDPOINT, LISTENER};
use support::*;

#[tokio::test]
async fn refused_before_first_load() {
    let h = Harness::start_with(XdsOptions::default(), 0).await;
    let err = h.try_sotw().await.err().expect("refused");
    assert_eq!(err.code(), tonic::Code::Unavailable);
    assert_eq!(err.message(), "configuration not loaded yet");
    let err = h.try_delta().await.err().expect("refused");
    assert_eq!(err.code(), tonic::Code::Unavailable);
    assert!(h
        .status
        .render_metrics()
        .contains("meshd_xds_streams_refused_total{reason=\"not_ready\"} 2\n"));

    // Once loaded, streams are accepted.
    h.bump();
    let mut s = h.sotw().await;
    s.subscribe(CLUSTER, &[]).await;
    assert_eq!(s.recv().await.type_url, CLUSTER);
}

#[tokio::test]
async fn node_remembered_from_first_request() {
    let h = Harness::start().await;
    h.set(CLUSTER, vec![res(CLUSTER, "a", 1)]);
    h.set(ENDPOINT, vec![res(ENDPOINT, "a", 1)]);
    h.bump();
    let mut s = h.sotw().await;
    s.subscribe(CLUSTER, &[]).await;
    let cds = s.recv().await;
    // Later requests carry no node.
    s.send(DiscoveryRequest {
        type_url: ENDPOINT.into(),
        resource_names: vec!["a".into()],
        ..Default::default()
    })
    .await;
    let eds = s.recv().await;
    assert_eq!(names(&eds), ["a"]);
    s.ack(&cds, &[]).await;
    s.ack(&eds, &["a"]).await;

    h.set(ENDPOINT, vec![res(ENDPOINT, "a", 2)]);
    h.bump();
    let eds2 = s.recv().await;
    assert_eq!(eds2.type_url, ENDPOINT);
    assert_ne!(eds2.version_info, eds.version_info);
    // Both generations (at connect, then the change) were made for the node of the first
    // request.
    let nodes = h.generator.nodes.lock().unwrap().clone();
    assert_eq!(nodes.len(), 2, "{nodes:?}");
    assert!(nodes.iter().all(|n| n == NODE));
    assert!(h.status.syncz_json().get(NODE).is_some());
}

#[tokio::test]
async fn first_request_without_node_refused() {
    let h = Harness::start().await;
    let mut s = h.sotw().await;
    s.send(DiscoveryRequest {
        type_url: CLUSTER.into(),
        ..Default::default()
    })
    .await;
    let err = tokio::time::timeout(WAIT, s.responses.message())
        .await
        .expect("closed in time")
        .expect_err("stream fails");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
}

#[tokio::test]
async fn ack_recorded_and_not_answered() {
    let h = Harness::start().await;
    h.set(CLUSTER, vec![res(CLUSTER, "a", 1), res(CLUSTER, "b", 1)]);
    h.bump();
    let mut s = h.sotw().await;
    s.subscribe(CLUSTER, &[]).await;
    let cds = s.recv().await;
    assert_eq!(names(&cds), ["a", "b"]);
    assert_eq!(
        cds.version_info,
        set_version(
            [res(CLUSTER, "a", 1), res(CLUSTER, "b", 1)]
                .iter()
                .map(|r| r.as_ref())
        )
    );
    assert!(cds.resources.iter().all(|r| r.type_url == CLUSTER));
    s.ack(&cds, &[]).await;
    s.expect_silence().await;
    let syncz = h.status.syncz_json();
    assert_eq!(syncz[NODE]["clusters"]["version_acked"], cds.version_info);
    assert_eq!(syncz[NODE]["clusters"]["nonce_sent"], cds.nonce);
    assert_eq!(syncz[NODE]["delta"], false);
}

#[tokio::test]
async fn nack_recorded_and_not_resent_until_config_changes() {
    let h = Harness::start().await;
    h.set(CLUSTER, vec![res(CLUSTER, "a", 1)]);
    h.bump();
    let mut s = h.sotw().await;
    s.subscribe(CLUSTER, &[]).await;
    let first = s.recv().await;
    s.ack(&first, &[]).await;
    h.wait_syncz("clusters", "version_acked", &first.version_info)
        .await;

    h.set(CLUSTER, vec![res(CLUSTER, "a", 2)]);
    h.bump();
    let bad = s.recv().await;
    s.nack(&bad, &first.version_info, &[]).await;
    s.expect_silence().await;

    // A new generation with the same content for this proxy: still not resent.
    h.bump();
    s.expect_silence().await;
    let syncz = h.status.syncz_json();
    assert_eq!(syncz[NODE]["clusters"]["last_nack"], "bad config");
    assert_eq!(syncz[NODE]["clusters"]["nacked"], true);
    assert_eq!(syncz[NODE]["clusters"]["version_acked"], first.version_info);
    assert!(h
        .status
        .render_metrics()
        .contains("pilot_total_xds_rejects{type=\"cds\"} 1\n"));

    // The configuration changes: pushed again.
    h.set(CLUSTER, vec![res(CLUSTER, "a", 3)]);
    h.bump();
    let fixed = s.recv().await;
    assert_ne!(fixed.version_info, bad.version_info);
}

#[tokio::test]
async fn stale_nonce_ignored() {
    let h = Harness::start().await;
    h.set(ENDPOINT, vec![res(ENDPOINT, "a", 1), res(ENDPOINT, "b", 1)]);
    h.bump();
    let mut s = h.sotw().await;
    s.subscribe(ENDPOINT, &["a"]).await;
    let first = s.recv().await;
    s.ack(&first, &["a"]).await;
    h.set(ENDPOINT, vec![res(ENDPOINT, "a", 2), res(ENDPOINT, "b", 1)]);
    h.bump();
    let second = s.recv().await;

    // Asking for more names with the older nonce: ignored.
    s.ack(&first, &["a", "b"]).await;
    s.expect_silence().await;
    // The same with the latest nonce is answered at once.
    s.ack(&second, &["a", "b"]).await;
    assert_eq!(names(&s.recv().await), ["a", "b"]);
}

#[tokio::test]
async fn first_request_answered_despite_error_detail_and_empty_nonce() {
    let h = Harness::start().await;
    h.set(LISTENER, vec![res(LISTENER, "l", 1)]);
    h.bump();
    let mut s = h.sotw().await;
    // As after a reconnect: an old version, no nonce, and the last rejection carried over.
    s.send(DiscoveryRequest {
        node: node(),
        version_info: "old".into(),
        type_url: LISTENER.into(),
        response_nonce: String::new(),
        error_detail: rejection("rejected before the reconnect"),
        ..Default::default()
    })
    .await;
    let lds = s.recv().await;
    assert_eq!(names(&lds), ["l"]);
}

#[tokio::test]
async fn generate_error_closes_stream_with_message() {
    let h = Harness::start().await;
    h.fail_with("node id \"bogus\" is not a sidecar id");
    let mut s = h.sotw().await;
    s.subscribe(CLUSTER, &[]).await;
    let err = tokio::time::timeout(WAIT, s.responses.message())
        .await
        .expect("closed in time")
        .expect_err("stream fails");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert_eq!(err.message(), "node id \"bogus\" is not a sidecar id");
}

/// A NACK that also subscribes to new names (Envoy folds a grown endpoint subscription into
/// the request that rejects the last response) is answered with the current set for the
/// grown subscription; a NACK alone is not.
#[tokio::test]
async fn nack_that_adds_names_is_answered_for_the_grown_subscription() {
    let h = Harness::start().await;
    h.set(ENDPOINT, vec![res(ENDPOINT, "a", 1), res(ENDPOINT, "b", 1)]);
    h.bump();
    let mut s = h.sotw().await;
    s.subscribe(ENDPOINT, &["a"]).await;
    let first = s.recv().await;
    assert_eq!(names(&first), ["a"]);
    s.nack(&first, "", &["a"]).await;
    s.expect_silence().await;

    s.nack(&first, "", &["a", "b"]).await;
    let grown = s.recv().await;
    assert_eq!(names(&grown), ["a", "b"]);
    assert_ne!(grown.nonce, first.nonce);
    // Rejected again with the same names: not answered.
    s.nack(&grown, "", &["a", "b"]).await;
    s.expect_silence().await;
    assert!(h
        .status
        .render_metrics()
        .contains("pilot_total_xds_rejects{type=\"eds\"} 3\n"));
    // Fewer names on a NACK: nothing new to send.
    s.nack(&grown, "", &["a"]).await;
    s.expect_silence().await;
}
