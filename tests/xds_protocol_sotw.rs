//! State of the World ADS against the rules of XDS-PROTOCOL.md: a real tonic server and
//! client in process, one test per rule.

mod support;

use std::time::Duration;

use envoy_types::pb::envoy::service::discovery::v3::DiscoveryRequest;
use meshd::xds::resource::set_version;
use meshd::xds::server::XdsOptions;
use meshd::xds::type_url::{CLUSTER, ENDPOINT, LISTENER, PUSH_ORDER, ROUTE, SECRET};
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
    // Every generation was made for the node of the first request.
    let nodes = h.generator.nodes.lock().unwrap().clone();
    assert!(nodes.len() >= 2);
    assert!(nodes.iter().all(|n| n == NODE));
    assert!(h.status.syncz_json().get(NODE).is_some());
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
    assert_eq!(names(&s.recv().await), ["80", "9090"]);
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
async fn push_order_clusters_endpoints_listeners_routes_secrets() {
    let options = XdsOptions {
        allow_unauthenticated_secrets: true,
        ..XdsOptions::default()
    };
    let h = Harness::start_with(options, 1).await;
    for t in PUSH_ORDER {
        h.set(t, vec![res(t, "x", 1)]);
    }
    h.bump();
    let mut s = h.sotw().await;
    // Subscribe in reverse order, acknowledging each.
    for t in PUSH_ORDER.iter().rev() {
        let names: &[&str] = if *t == CLUSTER || *t == LISTENER {
            &[]
        } else {
            &["x"]
        };
        s.subscribe(t, names).await;
        let r = s.recv().await;
        s.ack(&r, names).await;
    }
    s.expect_silence().await;
    for t in PUSH_ORDER {
        h.set(t, vec![res(t, "x", 2)]);
    }
    h.bump();
    let mut order = Vec::new();
    for _ in 0..5 {
        order.push(s.recv().await.type_url);
    }
    assert_eq!(order, [CLUSTER, ENDPOINT, LISTENER, ROUTE, SECRET]);
}

#[tokio::test]
async fn latest_push_wins() {
    let h = Harness::start().await;
    h.set(CLUSTER, vec![res(CLUSTER, "a", 0)]);
    h.bump();
    let mut s = h.sotw().await;
    s.subscribe(CLUSTER, &[]).await;
    let first = s.recv().await;
    s.ack(&first, &[]).await;
    s.expect_silence().await;

    // Fifty generations without yielding to the server in between.
    for rev in 1..=50 {
        h.set(CLUSTER, vec![res(CLUSTER, "a", rev)]);
        h.bump();
    }
    let latest = set_version([res(CLUSTER, "a", 50)].iter().map(|r| r.as_ref()));
    let mut received = 0;
    loop {
        let r = s.recv().await;
        received += 1;
        if r.version_info == latest {
            break;
        }
    }
    assert!(received < 50, "every generation was pushed ({received})");
    s.expect_silence().await;
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

#[tokio::test]
async fn message_over_4_mib_passes() {
    let h = Harness::start().await;
    // Six clusters of a little over 1 MiB each.
    let big: Vec<_> = (0..6)
        .map(|i| {
            let cluster = envoy_types::pb::envoy::config::cluster::v3::Cluster {
                name: format!("c{i}"),
                alt_stat_name: "x".repeat(1 << 20),
                ..Default::default()
            };
            std::sync::Arc::new(meshd::xds::Resource::encode(
                cluster.name.clone(),
                CLUSTER,
                &cluster,
            ))
        })
        .collect();
    h.set(CLUSTER, big);
    h.bump();
    let mut s = h.sotw().await;
    s.subscribe(CLUSTER, &[]).await;
    let cds = s.recv().await;
    let size: usize = cds.resources.iter().map(|r| r.value.len()).sum();
    assert!(size > 6 << 20, "response of {size} bytes");
    assert_eq!(cds.resources.len(), 6);
}

#[tokio::test]
async fn stream_closed_gracefully_at_max_age() {
    let options = XdsOptions {
        max_connection_age: Some(Duration::from_millis(200)),
        max_connection_age_jitter: 0.0,
        ..XdsOptions::default()
    };
    let h = Harness::start_with(options, 1).await;
    let mut s = h.sotw().await;
    s.subscribe(CLUSTER, &[]).await;
    s.recv().await;
    let end = tokio::time::timeout(WAIT, s.responses.message())
        .await
        .expect("closed in time");
    assert!(matches!(end, Ok(None)), "graceful end, got {end:?}");
    // The proxy is gone from the status once its stream ends.
    tokio::time::timeout(WAIT, async {
        while h.status.connected() != 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("unregistered");
}

#[tokio::test]
async fn metrics_count_connections_and_pushes() {
    let h = Harness::start().await;
    h.set(CLUSTER, vec![res(CLUSTER, "a", 1)]);
    h.bump();
    let mut s = h.sotw().await;
    s.subscribe(CLUSTER, &[]).await;
    s.recv().await;
    let text = h.status.render_metrics();
    assert!(text.contains("pilot_xds 1\n"), "{text}");
    assert!(
        text.contains("pilot_xds_pushes{type=\"cds\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("pilot_xds_push_time_count{type=\"cds\"} 1\n"),
        "{text}"
    );
    assert_eq!(h.status.connected(), 1);
}

#[tokio::test]
async fn new_streams_rate_limited() {
    let options = XdsOptions {
        new_stream_rate: 0.5,
        new_stream_burst: 1,
        new_stream_max_wait: Duration::from_millis(10),
        ..XdsOptions::default()
    };
    let h = Harness::start_with(options, 1).await;
    let _first = h.sotw().await;
    let err = h.try_sotw().await.err().expect("second stream refused");
    assert_eq!(err.code(), tonic::Code::ResourceExhausted);
    assert!(h
        .status
        .render_metrics()
        .contains("meshd_xds_streams_refused_total{reason=\"rate_limited\"} 1\n"));
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
async fn secrets_withheld_from_unauthenticated_streams() {
    let h = Harness::start().await;
    h.set(SECRET, vec![res(SECRET, "default", 1)]);
    h.bump();
    let mut s = h.sotw().await;
    s.subscribe(SECRET, &["default"]).await;
    let sds = s.recv().await;
    assert_eq!(sds.type_url, SECRET);
    assert!(sds.resources.is_empty());
    let mut d = h.delta().await;
    d.subscribe(SECRET, &["default"]).await;
    let r = d.recv().await;
    assert!(r.resources.is_empty());
    assert_eq!(r.removed_resources, ["default"]);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generation_fans_out_to_every_stream_with_bounded_concurrency() {
    let options = XdsOptions {
        max_concurrent_pushes: 2,
        ..XdsOptions::default()
    };
    let h = Harness::start_with(options, 1).await;
    h.set(CLUSTER, vec![res(CLUSTER, "a", 1)]);
    h.bump();
    let mut streams = Vec::new();
    for _ in 0..20 {
        let mut s = h.sotw().await;
        s.subscribe(CLUSTER, &[]).await;
        let r = s.recv().await;
        s.ack(&r, &[]).await;
        streams.push(s);
    }
    assert_eq!(h.status.connected(), 20);
    h.set(CLUSTER, vec![res(CLUSTER, "a", 2)]);
    h.bump();
    let latest = set_version([res(CLUSTER, "a", 2)].iter().map(|r| r.as_ref()));
    for s in &mut streams {
        assert_eq!(s.recv().await.version_info, latest);
    }
}
