//! Bad clients beside a healthy one (issue 9, item 5): a proxy that never reads its
//! responses (its HTTP/2 window exhausted), one that never ACKs, one that NACKs everything
//! and one that disconnects in the middle of a push. For each, the healthy proxy on its own
//! connection still receives every change, and what the server holds for the bad stream
//! stays bounded, read from what the server exposes: its /debug/syncz view (responses built
//! per type, the generation the stream holds, whether it is registered at all) and its
//! rejection counter. A real tonic server and real HTTP/2 clients in process.

mod support;

use std::time::Duration;

use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse,
};
use meshd::xds::status::metric_type;
use meshd::xds::type_url::{CLUSTER, ENDPOINT};
use meshd::xds::Resource;
use std::sync::Arc;
use support::*;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Channel, Endpoint};
use tonic::Streaming;

const BAD: &str = "sidecar~10.0.0.9~bad-0.default~default.svc.cluster.local";
/// Configuration changes made while the bad client misbehaves.
const CHANGES: u32 = 8;
/// Responses the server may hold for a stream that does not read: the one its HTTP/2 body
/// is sending plus the two-slot outbox behind it (`OUTBOX`, src/xds/service.rs).
const HELD_FOR_A_STALLED_STREAM: u64 = 3;

fn bad_node() -> Option<Node> {
    Some(Node {
        id: BAD.into(),
        ..Default::default()
    })
}

/// Clusters whose encoding totals about `total` bytes and whose content depends on `rev`.
fn heavy_clusters(rev: u32, total: usize) -> Vec<Arc<Resource>> {
    let each = total / 4;
    (0..4)
        .map(|i| {
            let name = format!("heavy-{i}");
            Arc::new(Resource::encode(
                &name,
                CLUSTER,
                &Cluster {
                    name: name.clone(),
                    alt_stat_name: format!("rev{rev}-{}", "x".repeat(each)),
                    ..Default::default()
                },
            ))
        })
        .collect()
}

/// A client connection; `small_window` gives it a 64 KiB HTTP/2 window, which a proxy
/// that does not read exhausts with the first large response.
async fn connect(h: &Harness, small_window: bool) -> AggregatedDiscoveryServiceClient<Channel> {
    let mut endpoint = Endpoint::from_shared(format!("http://{}", h.addr)).unwrap();
    if small_window {
        endpoint = endpoint
            .initial_stream_window_size(65_535)
            .initial_connection_window_size(65_535);
    }
    AggregatedDiscoveryServiceClient::new(endpoint.connect().await.unwrap())
        .max_decoding_message_size(64 * 1024 * 1024)
}

struct BadSotw {
    tx: mpsc::Sender<DiscoveryRequest>,
    responses: Streaming<DiscoveryResponse>,
}

async fn bad_sotw(h: &Harness, small_window: bool) -> BadSotw {
    let (tx, rx) = mpsc::channel(16);
    let responses = connect(h, small_window)
        .await
        .stream_aggregated_resources(ReceiverStream::new(rx))
        .await
        .expect("stream accepted")
        .into_inner();
    BadSotw { tx, responses }
}

impl BadSotw {
    async fn send(&self, request: DiscoveryRequest) {
        self.tx.send(request).await.expect("request stream open");
    }

    async fn subscribe(&self, type_url: &str, names: &[&str]) {
        self.send(DiscoveryRequest {
            node: bad_node(),
            type_url: type_url.into(),
            resource_names: names.iter().map(|n| n.to_string()).collect(),
            ..Default::default()
        })
        .await;
    }

    async fn recv(&mut self) -> DiscoveryResponse {
        tokio::time::timeout(WAIT, self.responses.message())
            .await
            .expect("a response in time")
            .expect("stream ok")
            .expect("stream open")
    }

    async fn expect_silence(&mut self) {
        if let Ok(r) = tokio::time::timeout(QUIET, self.responses.message()).await {
            panic!("unexpected response: {r:?}");
        }
    }
}

struct BadDelta {
    tx: mpsc::Sender<DeltaDiscoveryRequest>,
    responses: Streaming<DeltaDiscoveryResponse>,
}

async fn bad_delta(h: &Harness) -> BadDelta {
    let (tx, rx) = mpsc::channel(16);
    let responses = connect(h, false)
        .await
        .delta_aggregated_resources(ReceiverStream::new(rx))
        .await
        .expect("stream accepted")
        .into_inner();
    BadDelta { tx, responses }
}

impl BadDelta {
    async fn send(&self, request: DeltaDiscoveryRequest) {
        self.tx.send(request).await.expect("request stream open");
    }

    async fn recv(&mut self) -> DeltaDiscoveryResponse {
        tokio::time::timeout(WAIT, self.responses.message())
            .await
            .expect("a response in time")
            .expect("stream ok")
            .expect("stream open")
    }

    async fn expect_silence(&mut self) {
        if let Ok(r) = tokio::time::timeout(QUIET, self.responses.message()).await {
            panic!("unexpected response: {r:?}");
        }
    }
}

/// The bad proxy's syncz entry (Null once its stream is gone).
fn bad_view(h: &Harness) -> serde_json::Value {
    h.status.syncz_json()[BAD].clone()
}

/// Waits until the bad proxy's syncz entry satisfies `cond`.
async fn wait_bad(h: &Harness, what: &str, cond: impl Fn(&serde_json::Value) -> bool) {
    let reached = tokio::time::timeout(WAIT, async {
        while !cond(&bad_view(h)) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    assert!(
        reached.is_ok(),
        "syncz never showed {what}: {}",
        bad_view(h)
    );
}

/// A healthy SotW proxy subscribed to clusters (`NODE`), synced with the first response.
async fn healthy_on_clusters(h: &Harness) -> (Sotw, DiscoveryResponse) {
    let mut healthy = h.sotw().await;
    healthy.subscribe(CLUSTER, &[]).await;
    let first = healthy.recv().await;
    healthy.ack(&first, &[]).await;
    (healthy, first)
}

/// Makes change `rev` to the clusters and checks that the healthy proxy receives it (a new
/// version carrying the new content) and ACKs it.
async fn healthy_gets_change(h: &Harness, healthy: &mut Sotw, rev: u32, total: usize) {
    h.set(CLUSTER, heavy_clusters(rev, total));
    h.bump();
    let response = healthy.recv().await;
    assert_eq!(response.type_url, CLUSTER);
    let marker = format!("rev{rev}-");
    assert!(
        response.resources.iter().all(|r| r
            .value
            .windows(marker.len())
            .any(|w| w == marker.as_bytes())),
        "the healthy proxy got change {rev}"
    );
    healthy.ack(&response, &[]).await;
}

#[tokio::test]
async fn a_proxy_that_never_reads_holds_at_most_a_few_responses() {
    let h = Harness::start().await;
    // 1 MiB responses: far over the bad client's 64 KiB window and the server's HTTP/2
    // send buffer, so its stream stalls at the first one.
    let total = 1 << 20;
    h.set(CLUSTER, heavy_clusters(0, total));
    h.bump();
    let bad = bad_sotw(&h, true).await;
    bad.subscribe(CLUSTER, &[]).await;
    wait_bad(&h, "the first response built", |v| {
        v["clusters"]["responses"] == 1
    })
    .await;
    let (mut healthy, _) = healthy_on_clusters(&h).await;

    for rev in 1..=CHANGES {
        healthy_gets_change(&h, &mut healthy, rev, total).await;
    }
    // The bad stream has picked up the last generation too: it follows the configuration
    // but builds responses only when its outbox has room.
    let last = h.status.syncz_json()[NODE]["generation"].clone();
    wait_bad(&h, "the latest generation held", |v| {
        v["generation"] == last
    })
    .await;
    tokio::time::sleep(QUIET).await;
    let built = bad_view(&h)["clusters"]["responses"].as_u64().unwrap();
    assert!(
        built <= HELD_FOR_A_STALLED_STREAM,
        "{built} responses built for a stream that reads nothing, after {CHANGES} changes"
    );
    assert_eq!(h.status.connected(), 2);

    // Once the proxy goes, so does everything the server held for it.
    drop(bad);
    wait_bad(&h, "the stream gone", |v| v.is_null()).await;
    assert_eq!(h.status.connected(), 1);
    healthy_gets_change(&h, &mut healthy, CHANGES + 1, total).await;
}

#[tokio::test]
async fn a_proxy_that_never_acks_gets_each_change_once() {
    let h = Harness::start().await;
    h.set(ENDPOINT, vec![res(ENDPOINT, "a", 0)]);
    h.set(CLUSTER, heavy_clusters(0, 4096));
    h.bump();
    let mut bad = bad_sotw(&h, false).await;
    bad.subscribe(ENDPOINT, &["a"]).await;
    let mut received = vec![bad.recv().await.version_info];
    let (mut healthy, _) = healthy_on_clusters(&h).await;

    for rev in 1..=CHANGES {
        h.set(ENDPOINT, vec![res(ENDPOINT, "a", rev)]);
        healthy_gets_change(&h, &mut healthy, rev, 4096).await;
        // Pushed without waiting for the ACK of the previous one: the newest wins.
        let response = bad.recv().await;
        assert_eq!(response.type_url, ENDPOINT);
        received.push(response.version_info);
    }
    bad.expect_silence().await;
    let distinct: std::collections::BTreeSet<_> = received.iter().collect();
    assert_eq!(
        distinct.len(),
        received.len(),
        "each version sent once: {received:?}"
    );
    let view = bad_view(&h);
    assert_eq!(view["endpoints"]["responses"], u64::from(CHANGES) + 1);
    assert_eq!(view["endpoints"]["version_acked"], "");
    assert_eq!(
        view["endpoints"]["version_sent"],
        *received.last().unwrap(),
        "the server holds only the latest version for it"
    );
}

/// How many rejections `/metrics` counts for `metric_type` (e.g. "eds").
fn rejections(h: &Harness, metric_type: &str) -> u64 {
    let wanted = format!("pilot_total_xds_rejects{{type=\"{metric_type}\"}} ");
    h.status
        .render_metrics()
        .lines()
        .find_map(|l| l.strip_prefix(wanted.as_str()))
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or(0)
}

#[tokio::test]
async fn a_sotw_proxy_that_nacks_everything_gets_no_resends() {
    let h = Harness::start().await;
    h.set(ENDPOINT, vec![res(ENDPOINT, "a", 0)]);
    h.set(CLUSTER, heavy_clusters(0, 4096));
    h.bump();
    let mut bad = bad_sotw(&h, false).await;
    bad.subscribe(ENDPOINT, &["a"]).await;
    let (mut healthy, _) = healthy_on_clusters(&h).await;
    let mut response = bad.recv().await;
    for rev in 1..=CHANGES {
        bad.send(DiscoveryRequest {
            version_info: String::new(),
            type_url: ENDPOINT.into(),
            response_nonce: response.nonce.clone(),
            resource_names: vec!["a".into()],
            error_detail: rejection("bad endpoints"),
            ..Default::default()
        })
        .await;
        // The same content is not sent again: no NACK loop.
        bad.expect_silence().await;
        h.set(ENDPOINT, vec![res(ENDPOINT, "a", rev)]);
        healthy_gets_change(&h, &mut healthy, rev, 4096).await;
        response = bad.recv().await;
    }
    let view = bad_view(&h);
    assert_eq!(view["endpoints"]["responses"], u64::from(CHANGES) + 1);
    assert_eq!(view["endpoints"]["last_nack"], "bad endpoints");
    assert_eq!(rejections(&h, metric_type(ENDPOINT)), u64::from(CHANGES));
}

#[tokio::test]
async fn a_delta_proxy_that_nacks_everything_gets_no_resends() {
    let h = Harness::start().await;
    h.set(ENDPOINT, vec![res(ENDPOINT, "a", 0)]);
    h.set(CLUSTER, heavy_clusters(0, 4096));
    h.bump();
    let mut bad = bad_delta(&h).await;
    bad.send(DeltaDiscoveryRequest {
        node: bad_node(),
        type_url: ENDPOINT.into(),
        resource_names_subscribe: vec!["a".into()],
        ..Default::default()
    })
    .await;
    let (mut healthy, _) = healthy_on_clusters(&h).await;
    let mut response = bad.recv().await;
    for rev in 1..=CHANGES {
        assert_eq!(delta_names(&response), ["a"], "change {rev}");
        bad.send(DeltaDiscoveryRequest {
            type_url: ENDPOINT.into(),
            response_nonce: response.nonce.clone(),
            error_detail: rejection("a: bad endpoints"),
            ..Default::default()
        })
        .await;
        bad.expect_silence().await;
        h.set(ENDPOINT, vec![res(ENDPOINT, "a", rev)]);
        healthy_gets_change(&h, &mut healthy, rev, 4096).await;
        response = bad.recv().await;
    }
    let view = bad_view(&h);
    assert_eq!(view["endpoints"]["responses"], u64::from(CHANGES) + 1);
    assert_eq!(rejections(&h, metric_type(ENDPOINT)), u64::from(CHANGES));
}

#[tokio::test]
async fn a_proxy_that_disconnects_mid_push_leaves_nothing_behind() {
    let h = Harness::start().await;
    let total = 1 << 20;
    h.set(CLUSTER, heavy_clusters(0, total));
    h.bump();
    let (mut healthy, _) = healthy_on_clusters(&h).await;
    for rev in 1..=CHANGES {
        // Connects, asks for clusters, and goes while the server is still writing them
        // (the response does not fit the client's window, so it cannot be complete).
        let bad = bad_sotw(&h, true).await;
        bad.subscribe(CLUSTER, &[]).await;
        wait_bad(&h, "a response being sent", |v| {
            v["clusters"]["responses"] == 1
        })
        .await;
        drop(bad);
        wait_bad(&h, "the stream gone", |v| v.is_null()).await;
        assert_eq!(h.status.connected(), 1, "only the healthy proxy remains");
        healthy_gets_change(&h, &mut healthy, rev, total).await;
    }
}
