//! `meshd serve` as a process: readiness, admin views, and a real ADS client receiving the
//! bundled example's configuration and its changes.

mod common;

use std::time::Duration;

use common::{bookinfo_dir, copy_dir, Meshd};
use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
use envoy_types::pb::envoy::service::discovery::v3::{DiscoveryRequest, DiscoveryResponse};
use meshd::xds::type_url;
use tokio_stream::StreamExt;

const PRODUCTPAGE: &str = "sidecar~10.244.0.10~productpage-v1.default~default.svc.cluster.local";

fn request(type_url: &str, names: &[&str], version: &str, nonce: &str) -> DiscoveryRequest {
    DiscoveryRequest {
        node: Some(Node {
            id: PRODUCTPAGE.into(),
            ..Default::default()
        }),
        type_url: type_url.into(),
        resource_names: names.iter().map(|s| s.to_string()).collect(),
        version_info: version.into(),
        response_nonce: nonce.into(),
        ..Default::default()
    }
}

async fn next(stream: &mut tonic::Streaming<DiscoveryResponse>) -> DiscoveryResponse {
    tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("response within 10s")
        .expect("stream open")
        .expect("response ok")
}

fn cluster_names(response: &DiscoveryResponse) -> Vec<String> {
    use prost::Message;
    response
        .resources
        .iter()
        .map(|any| {
            envoy_types::pb::envoy::config::cluster::v3::Cluster::decode(any.value.as_slice())
                .expect("cluster decodes")
                .name
        })
        .collect()
}

/// An ADS stream to `meshd` (as productpage) that has asked for clusters: the request
/// sender (for ACKs) and the responses.
async fn cds_stream(
    meshd: &Meshd,
) -> (
    tokio::sync::mpsc::Sender<DiscoveryRequest>,
    tonic::Streaming<DiscoveryResponse>,
) {
    let mut client = AggregatedDiscoveryServiceClient::connect(format!("http://{}", meshd.xds))
        .await
        .expect("connect to xds");
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tx.send(request(type_url::CLUSTER, &[], "", ""))
        .await
        .unwrap();
    let responses = client
        .stream_aggregated_resources(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .expect("ads stream")
        .into_inner();
    (tx, responses)
}

#[test]
fn admin_views_report_the_loaded_configuration() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&bookinfo_dir(), dir.path());
    std::fs::write(
        dir.path().join("istio.yaml"),
        "apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: productpage-route, namespace: default}
spec:
  hosts: [productpage]
  http:
  - route:
    - destination: {host: productpage}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: broken, namespace: default}
spec:
  host: productpage
  trafficPolicy:
    connectionPool:
      tcp: {connectTimeout: soon}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec:
  mtls: {mode: STRICT}
",
    )
    .unwrap();
    let meshd = Meshd::start(dir.path());

    let (status, body) = meshd.get("/metrics");
    assert_eq!(status, 200);
    assert!(body.contains("pilot_xds"), "metrics: {body}");
    assert!(
        body.contains("meshd_config_generation 1"),
        "metrics: {body}"
    );

    // config_dump shows what a connected proxy's stream holds; this one is not connected.
    let (status, body) = meshd.get(&format!("/debug/config_dump?proxyID={PRODUCTPAGE}"));
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("no xDS stream connected"), "{body}");

    let (status, _) = meshd.get("/debug/config_dump?proxyID=not-a-node-id");
    assert_eq!(status, 400);

    let (status, body) = meshd.get("/debug/configz");
    assert_eq!(status, 200);
    assert!(body.contains("reviews.default.svc.cluster.local"), "{body}");
    // Istio objects in use by kind; the rejected one only among the problems, with its field.
    let configz: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        configz["istio"]["VirtualService"],
        serde_json::json!([
            "default/productpage-route",
            "default/ratings",
            "default/reviews"
        ])
    );
    assert_eq!(
        configz["istio"]["DestinationRule"],
        serde_json::json!(["default/reviews"])
    );
    assert_eq!(
        configz["istio"]["PeerAuthentication"],
        serde_json::json!(["istio-system/default"])
    );
    let problems = configz["problems"].to_string();
    assert!(
        problems.contains("default/broken") && problems.contains("connectTimeout"),
        "{problems}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_service_file_is_pushed_to_a_connected_proxy() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&bookinfo_dir(), dir.path());
    let meshd = Meshd::start(dir.path());

    let (tx, mut responses) = cds_stream(&meshd).await;
    let first = next(&mut responses).await;
    assert_eq!(first.type_url, type_url::CLUSTER);
    let names = cluster_names(&first);
    assert!(
        names.contains(&"outbound|9080||ratings.default.svc.cluster.local".to_string()),
        "{names:?}"
    );
    assert!(!names.iter().any(|n| n.contains("extra.default")));
    tx.send(request(
        type_url::CLUSTER,
        &[],
        &first.version_info,
        &first.nonce,
    ))
    .await
    .unwrap();

    std::fs::write(
        dir.path().join("extra-service.yaml"),
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: extra\n  namespace: default\nspec:\n  clusterIP: 10.96.99.99\n  selector:\n    app: extra\n  ports:\n  - name: http\n    port: 8080\n",
    )
    .unwrap();
    let pushed = next(&mut responses).await;
    assert_eq!(pushed.type_url, type_url::CLUSTER);
    assert_ne!(pushed.version_info, first.version_info);
    let names = cluster_names(&pushed);
    assert!(
        names.contains(&"outbound|8080||extra.default.svc.cluster.local".to_string()),
        "{names:?}"
    );

    let (_, syncz) = meshd.get("/debug/syncz");
    assert!(syncz.contains(PRODUCTPAGE), "syncz: {syncz}");

    // The stream's own configuration, as Envoy JSON, with the version it was sent.
    let (status, body) = meshd.get(&format!("/debug/config_dump?proxyID={PRODUCTPAGE}"));
    assert_eq!(status, 200, "{body}");
    let dump: serde_json::Value = serde_json::from_str(&body).unwrap();
    let clusters = dump["clusters"].as_array().unwrap();
    for name in [
        "outbound|9080||reviews.default.svc.cluster.local",
        "outbound|8080||extra.default.svc.cluster.local",
    ] {
        assert!(
            clusters.iter().any(|c| c["name"] == name),
            "{name} in clusters: {clusters:?}"
        );
    }
    assert_eq!(
        dump["versions"]["clusters"]["version_sent"],
        pushed.version_info
    );
}

/// Waits until meshd's configz reports at least `generation`.
fn wait_generation(meshd: &Meshd, generation: u64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (_, body) = meshd.get("/debug/configz");
        let configz: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        if configz["generation"].as_u64().unwrap_or(0) >= generation {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "generation {generation} never came: {body}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

fn service_yaml(name: &str, namespace: &str, ip: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  namespace: {namespace}\nspec:\n  \
         clusterIP: {ip}\n  selector:\n    app: {name}\n  ports:\n  - name: http\n    port: 8080\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_is_not_pushed_changes_of_services_its_sidecar_hides() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&bookinfo_dir(), dir.path());
    std::fs::write(
        dir.path().join("sidecar.yaml"),
        "apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata:\n  name: default\n  \
         namespace: default\nspec:\n  egress:\n  - hosts: [\"./*\"]\n",
    )
    .unwrap();
    let meshd = Meshd::start(dir.path());
    wait_generation(&meshd, 1);

    let (tx, mut responses) = cds_stream(&meshd).await;
    let first = next(&mut responses).await;
    let names = cluster_names(&first);
    assert!(
        names
            .iter()
            .all(|n| !n.starts_with("outbound|") || n.ends_with(".default.svc.cluster.local")),
        "the Sidecar keeps only ./*: {names:?}"
    );
    tx.send(request(
        type_url::CLUSTER,
        &[],
        &first.version_info,
        &first.nonce,
    ))
    .await
    .unwrap();

    // A service the proxy cannot see: a new generation, but nothing for this proxy.
    std::fs::write(
        dir.path().join("hidden.yaml"),
        service_yaml("hidden", "shop", "10.96.99.98"),
    )
    .unwrap();
    wait_generation(&meshd, 2);
    // Then one it can see: the next response the proxy gets is that one, so none was sent
    // for the hidden service in between.
    std::fs::write(
        dir.path().join("seen.yaml"),
        service_yaml("seen", "default", "10.96.99.99"),
    )
    .unwrap();
    let pushed = next(&mut responses).await;
    let names = cluster_names(&pushed);
    assert!(
        names.contains(&"outbound|8080||seen.default.svc.cluster.local".to_string()),
        "{names:?}"
    );
    assert!(
        !names.iter().any(|n| n.contains("hidden.shop")),
        "{names:?}"
    );
}
