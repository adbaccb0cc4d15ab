//! The admin debug views over real HTTP, fed by a real xDS server with real gRPC clients:
//! syncz pages and names, config_dump from a connected proxy's stream, and who may read
//! the debug views (loopback only, unless opened).

mod common;
mod support;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::connect_info::MockConnectInfo;
use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::envoy::service::discovery::v3::DiscoveryRequest;
use meshd::admin::{router, serve, AdminState};
use meshd::pipeline::generator::MeshGenerator;
use meshd::xds::server::XdsOptions;
use meshd::xds::type_url::{CLUSTER, ENDPOINT, SECRET};
use serde_json::Value;
use support::*;
use tokio::sync::watch;

/// Serves the admin router of `h`'s xDS status on 127.0.0.1. With `peer`, every request
/// is treated as coming from that address (the router runs without the real peer address);
/// otherwise the real peer (loopback) is used, as `meshd serve` does.
async fn admin(h: &Harness, peer: Option<SocketAddr>, debug_on_http: bool) -> SocketAddr {
    let (_tx, generations) = watch::channel(1u64);
    let state = AdminState::new(
        h.status.clone(),
        Arc::new(MeshGenerator::default()),
        generations,
    )
    .with_debug_on_http(debug_on_http);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    match peer {
        Some(peer) => {
            let app = router(state).layer(MockConnectInfo(peer));
            tokio::spawn(async move { axum::serve(listener, app).await });
        }
        None => {
            tokio::spawn(serve(listener, state));
        }
    }
    addr
}

async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let path = path.to_string();
    tokio::task::spawn_blocking(move || common::http_get(addr, &path))
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("GET: {e}"))
}

async fn get_json(addr: SocketAddr, path: &str) -> Value {
    let (status, body) = get(addr, path).await;
    assert_eq!(status, 200, "GET {path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"))
}

fn node_id(i: usize) -> String {
    format!("sidecar~10.0.0.{i}~p{i}.default~default.svc.cluster.local")
}

/// Connects proxy `i` over SotW: clusters, then endpoints `e1`, each ACKed.
async fn connect_proxy(h: &Harness, i: usize) -> Sotw {
    let mut s = h.sotw().await;
    let node = Some(Node {
        id: node_id(i),
        ..Default::default()
    });
    s.send(DiscoveryRequest {
        node: node.clone(),
        type_url: CLUSTER.into(),
        ..Default::default()
    })
    .await;
    let cds = s.recv().await;
    s.ack(&cds, &[]).await;
    s.send(DiscoveryRequest {
        node,
        type_url: ENDPOINT.into(),
        resource_names: vec!["e1".into()],
        ..Default::default()
    })
    .await;
    let eds = s.recv().await;
    s.ack(&eds, &["e1"]).await;
    s
}

async fn harness() -> Harness {
    let h = Harness::start().await;
    h.set(CLUSTER, vec![res(CLUSTER, "c1", 1), res(CLUSTER, "c2", 1)]);
    h.set(
        ENDPOINT,
        vec![res(ENDPOINT, "e1", 1), res(ENDPOINT, "e2", 1)],
    );
    h.bump();
    h
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syncz_pages_by_node_id_and_lists_names_on_request() {
    let h = harness().await;
    let mut proxies = Vec::new();
    for i in 1..=5 {
        proxies.push(connect_proxy(&h, i).await);
    }
    wait_for(&h, |syncz| {
        (1..=5).all(|i| syncz[node_id(i)]["endpoints"]["nonce_acked"] != "")
    })
    .await;
    let addr = admin(&h, None, false).await;

    // The whole fleet, summary: counts of names, not the names.
    let all = get_json(addr, "/debug/syncz").await;
    let all = all.as_object().unwrap();
    assert_eq!(all.len(), 5);
    let one = &all[&node_id(3)];
    assert_eq!(one["delta"], false);
    assert_eq!(one["endpoints"]["name_count"], 1);
    assert!(one["endpoints"].get("names").is_none(), "{one}");
    assert_ne!(one["endpoints"]["version_acked"], "");
    assert_eq!(one["clusters"]["wildcard"], true);

    // Names on request.
    let named = get_json(addr, "/debug/syncz?names=true").await;
    assert_eq!(
        named[node_id(3)]["endpoints"]["names"],
        serde_json::json!(["e1"])
    );

    // Pages of two, following the last node id of each page.
    let mut seen = Vec::new();
    let mut path = "/debug/syncz?limit=2".to_string();
    loop {
        let page = get_json(addr, &path).await;
        let keys: Vec<String> = page.as_object().unwrap().keys().cloned().collect();
        assert!(keys.len() <= 2, "{keys:?}");
        seen.extend(keys.iter().cloned());
        if keys.len() < 2 {
            break;
        }
        path = format!("/debug/syncz?limit=2&after={}", keys.last().unwrap());
    }
    let mut expected: Vec<String> = (1..=5).map(node_id).collect();
    expected.sort();
    assert_eq!(seen, expected);

    // One proxy, with its names by default.
    let single = get_json(addr, &format!("/debug/syncz?proxyID={}", node_id(2))).await;
    assert_eq!(single.as_object().unwrap().len(), 1);
    assert_eq!(
        single[node_id(2)]["endpoints"]["names"],
        serde_json::json!(["e1"])
    );
    let (status, body) = get(addr, &format!("/debug/syncz?proxyID={}", node_id(9))).await;
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("no xDS stream connected"), "{body}");
    let (status, body) = get(addr, "/debug/syncz?limit=0").await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = get(addr, "/debug/syncz?limit=many").await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("limit"), "{body}");

    // A proxy that leaves is gone from the view.
    drop(proxies.remove(0));
    wait_for(&h, |syncz| syncz.get(node_id(1)).is_none()).await;
    let all = get_json(addr, "/debug/syncz").await;
    assert_eq!(all.as_object().unwrap().len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_dump_shows_what_the_connected_stream_holds() {
    let options = XdsOptions {
        allow_unauthenticated_secrets: true,
        ..Default::default()
    };
    let h = Harness::start_with(options, 1).await;
    h.set(CLUSTER, vec![res(CLUSTER, "c1", 1), res(CLUSTER, "c2", 1)]);
    h.set(
        ENDPOINT,
        vec![res(ENDPOINT, "e1", 1), res(ENDPOINT, "e2", 1)],
    );
    h.set(SECRET, vec![res(SECRET, "s1", 7)]);
    h.bump();
    let addr = admin(&h, None, false).await;

    let (status, body) = get(addr, &format!("/debug/config_dump?proxyID={NODE}")).await;
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("no xDS stream connected"), "{body}");
    let (status, _) = get(addr, "/debug/config_dump?proxyID=not-a-node-id").await;
    assert_eq!(status, 400);
    let (status, _) = get(addr, "/debug/config_dump").await;
    assert_eq!(status, 400);

    let mut s = h.sotw().await;
    s.subscribe(CLUSTER, &[]).await;
    let cds = s.recv().await;
    s.ack(&cds, &[]).await;
    s.subscribe(ENDPOINT, &["e2"]).await;
    let eds = s.recv().await;
    s.ack(&eds, &["e2"]).await;
    s.subscribe(SECRET, &["s1"]).await;
    let sds = s.recv().await;
    s.ack(&sds, &["s1"]).await;
    h.wait_syncz("secrets", "nonce_acked", &sds.nonce).await;

    let dump = get_json(addr, &format!("/debug/config_dump?proxyID={NODE}")).await;
    let names = |key: &str| -> Vec<String> {
        dump[key]
            .as_array()
            .unwrap_or_else(|| panic!("{key} in {dump}"))
            .iter()
            .map(|r| {
                r["name"]
                    .as_str()
                    .or(r["clusterName"].as_str())
                    .unwrap()
                    .to_string()
            })
            .collect()
    };
    assert_eq!(names("clusters"), ["c1", "c2"]);
    // Only the endpoints this proxy subscribed to.
    assert_eq!(names("endpoints"), ["e2"]);
    assert_eq!(names("listeners"), Vec::<String>::new());
    assert_eq!(
        dump["clusters"][0]["@type"],
        "type.googleapis.com/envoy.config.cluster.v3.Cluster"
    );
    assert_eq!(
        dump["versions"]["clusters"]["version_sent"],
        cds.version_info
    );
    assert_eq!(
        dump["versions"]["endpoints"]["version_acked"],
        eds.version_info
    );
    assert_eq!(dump["generation"], 2);
    // Secret values are redacted.
    let secret = dump["secrets"][0].to_string();
    assert!(secret.contains("[redacted]"), "{secret}");
    assert!(!secret.contains("rev7"), "{secret}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_views_answer_loopback_callers_unless_opened() {
    let h = harness().await;
    let _proxy = connect_proxy(&h, 1).await;
    let outside: SocketAddr = "192.0.2.10:40000".parse().unwrap();
    let mapped_loopback: SocketAddr = "[::ffff:127.0.0.1]:40000".parse().unwrap();

    let closed = admin(&h, Some(outside), false).await;
    for path in [
        "/debug/syncz",
        &format!("/debug/config_dump?proxyID={}", node_id(1)),
        "/debug/configz",
    ] {
        let (status, body) = get(closed, path).await;
        assert_eq!(status, 403, "{path}: {body}");
        assert!(body.contains("--debug-on-http"), "{body}");
        assert!(body.contains("192.0.2.10"), "{body}");
    }
    let (status, _) = get(closed, "/ready").await;
    assert_eq!(status, 200);
    let (status, body) = get(closed, "/metrics").await;
    assert_eq!(status, 200);
    assert!(body.contains("pilot_xds 1\n"), "{body}");

    let opened = admin(&h, Some(outside), true).await;
    let syncz = get_json(opened, "/debug/syncz").await;
    assert!(syncz.get(node_id(1)).is_some(), "{syncz}");
    let (status, _) = get(opened, "/debug/configz").await;
    assert_eq!(status, 200);

    let mapped = admin(&h, Some(mapped_loopback), false).await;
    let (status, _) = get(mapped, "/debug/configz").await;
    assert_eq!(status, 200);

    // A real loopback connection, with the peer address from the connection itself.
    let real = admin(&h, None, false).await;
    let (status, body) = get(real, &format!("/debug/config_dump?proxyID={}", node_id(1))).await;
    assert_eq!(status, 200, "{body}");
}

/// Waits until `cond` holds on the whole syncz view.
async fn wait_for(h: &Harness, cond: impl Fn(&Value) -> bool) {
    let reached = tokio::time::timeout(WAIT, async {
        while !cond(&h.status.syncz_json()) {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    })
    .await;
    assert!(reached.is_ok(), "syncz never reached the expected state");
}
