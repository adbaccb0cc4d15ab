//! State of the World ADS, XDS-PROTOCOL.md rules on pushing and connections (push order,
//! latest wins, fan-out, message size, connection age, admission, metrics): a real tonic
//! server and client in process, one test per rule.

mod support;

use std::time::Duration;

use meshd::envoy::resource::set_version;
use meshd::xds::server::XdsOptions;
use meshd::xds::type_url::{CLUSTER, ENDPOINT, LISTENER, PUSH_ORDER, ROUTE, SECRET};
use support::*;

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
    // The test's runtime has one thread: the server runs only once the fifty generations
    // are in place, so it regenerates once and pushes the latest alone.
    assert_eq!(received, 1, "responses until the latest");
    s.expect_silence().await;
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
async fn new_streams_refused_when_the_admission_queue_is_full() {
    // One stream set up at a time, none may wait: the first, still without a request,
    // holds the only place.
    let options = XdsOptions {
        new_streams_in_progress: 1,
        new_stream_queue: 0,
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
    // From here every `generate` call waits until two run at once: the server's bound of
    // two must be reached, and a server without a bound would let all twenty pile up.
    h.generator.in_flight.arm(2);
    h.set(CLUSTER, vec![res(CLUSTER, "a", 2)]);
    h.bump();
    let latest = set_version([res(CLUSTER, "a", 2)].iter().map(|r| r.as_ref()));
    for s in &mut streams {
        assert_eq!(s.recv().await.version_info, latest);
    }
    assert_eq!(
        h.generator.in_flight.peak(),
        2,
        "most generate calls running at once"
    );
    // Twenty at connect, and one per stream for the new generation.
    assert_eq!(h.generator.nodes.lock().unwrap().len(), 40);
}
