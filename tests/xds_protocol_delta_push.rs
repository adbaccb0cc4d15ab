//! Delta ADS, XDS-PROTOCOL.md rules on pushing (push order, endpoints after a cluster
//! change, latest wins): a real tonic server and client in process, one test per rule.

mod support;

use meshd::xds::server::XdsOptions;
use meshd::xds::type_url::{CLUSTER, ENDPOINT, LISTENER, PUSH_ORDER, ROUTE, SECRET};
use support::*;

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
    // The test's runtime has one thread: the server runs only once the fifty generations
    // are in place, so it regenerates once and pushes the latest alone.
    assert_eq!(received, 1, "responses until the latest");
    d.expect_silence().await;
}

#[tokio::test]
async fn delta_push_order_clusters_endpoints_listeners_routes_secrets() {
    let options = XdsOptions {
        allow_unauthenticated_secrets: true,
        ..XdsOptions::default()
    };
    let h = Harness::start_with(options, 1).await;
    for t in PUSH_ORDER {
        h.set(t, vec![res(t, "x", 1)]);
    }
    h.bump();
    let mut d = h.delta().await;
    // Subscribe in reverse order, acknowledging each.
    for t in PUSH_ORDER.iter().rev() {
        let names: &[&str] = if *t == CLUSTER || *t == LISTENER {
            &[]
        } else {
            &["x"]
        };
        d.subscribe(t, names).await;
        let r = d.recv().await;
        assert_eq!(r.type_url, *t);
        assert_eq!(delta_names(&r), ["x"]);
        d.ack(&r).await;
    }
    // The clusters just sent are followed by their endpoints (rule: a cluster change
    // pushes its endpoints).
    let eds = d.recv().await;
    assert_eq!(eds.type_url, ENDPOINT);
    d.ack(&eds).await;
    d.expect_silence().await;
    for t in PUSH_ORDER {
        h.set(t, vec![res(t, "x", 2)]);
    }
    h.bump();
    let mut order = Vec::new();
    for _ in 0..5 {
        let r = d.recv().await;
        assert_eq!(delta_names(&r), ["x"]);
        order.push(r.type_url);
    }
    assert_eq!(order, [CLUSTER, ENDPOINT, LISTENER, ROUTE, SECRET]);
    d.expect_silence().await;
}
