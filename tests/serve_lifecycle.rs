//! `meshd serve` as a process at its start and end: an empty first configuration is not
//! served (unless allowed), and SIGTERM drains xDS streams gracefully, then exits.

mod common;

use std::fs::File;
use std::time::Duration;

use common::{bookinfo_dir, copy_dir, wait_log, Meshd};
use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
use envoy_types::pb::envoy::service::discovery::v3::DiscoveryRequest;
use meshd::xds::type_url;

const NODE: &str = "sidecar~10.244.0.10~productpage-v1.default~default.svc.cluster.local";
const WAIT: Duration = Duration::from_secs(30);

const SERVICE: &str = "apiVersion: v1\nkind: Service\nmetadata:\n  name: extra\n  namespace: default\nspec:\n  clusterIP: 10.96.99.99\n  ports:\n  - name: http\n    port: 8080\n";

#[test]
fn an_empty_first_configuration_is_not_served() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    std::fs::create_dir(&config).unwrap();
    let log = dir.path().join("meshd.log");
    let meshd = Meshd::spawn(&config, &[], File::create(&log).unwrap());
    wait_log(
        &log,
        "not serving a first configuration without any service",
        WAIT,
    );
    let (status, body) = meshd.get("/ready");
    assert_eq!(status, 503, "{body}");
    assert!(meshd
        .get("/metrics")
        .1
        .contains("meshd_config_generation 0"));

    // The directory fills in: served from then on.
    std::fs::write(config.join("service.yaml"), SERVICE).unwrap();
    meshd.wait_ready(WAIT);
    assert!(meshd
        .get("/metrics")
        .1
        .contains("meshd_config_generation 1"));
}

#[test]
fn an_empty_first_configuration_is_served_when_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let meshd = Meshd::spawn(
        dir.path(),
        &["--allow-empty-config"],
        std::process::Stdio::inherit(),
    );
    meshd.wait_ready(WAIT);
}

#[test]
fn invalid_xds_flags_are_refused_before_binding() {
    let dir = tempfile::tempdir().unwrap();
    for (flag, value, message) in [
        (
            "--new-stream-queue",
            "0",
            "--new-stream-queue must be at least 1",
        ),
        (
            "--max-connection-age-jitter",
            "2",
            "--max-connection-age-jitter (2) must be between 0 and 1",
        ),
        (
            "--max-request-message-size",
            "1Ki",
            "--max-request-message-size (1024 bytes) must be between 64Ki",
        ),
        ("--drain-duration", "10", "has no unit"),
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_meshd"))
            .args(["serve", "--config-dir"])
            .arg(dir.path())
            .args([flag, value])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{flag} {value} accepted");
        assert!(stderr.contains(message), "{flag} {value}: {stderr}");
    }
}

/// `meshd serve` on a copy of the bookinfo example with `--drain-duration drain`, ready,
/// logging to `meshd.log` in the returned directory.
fn serve_bookinfo(drain: &str) -> (tempfile::TempDir, Meshd) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    copy_dir(&bookinfo_dir(), &config);
    let log = File::create(dir.path().join("meshd.log")).unwrap();
    let meshd = Meshd::spawn(&config, &["--drain-duration", drain], log);
    meshd.wait_ready(WAIT);
    (dir, meshd)
}

/// SIGTERM: the proxy's stream ends with an OK status (the connection got GOAWAY), no new
/// connection is accepted, and the process exits by itself, successfully.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_closes_streams_gracefully_and_exits() {
    let (dir, mut meshd) = serve_bookinfo("4s");
    let log = dir.path().join("meshd.log");

    let mut client = AggregatedDiscoveryServiceClient::connect(format!("http://{}", meshd.xds))
        .await
        .expect("connect to xds");
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tx.send(DiscoveryRequest {
        node: Some(Node {
            id: NODE.into(),
            ..Default::default()
        }),
        type_url: type_url::CLUSTER.into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let mut responses = client
        .stream_aggregated_resources(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .expect("ads stream")
        .into_inner();
    let cds = tokio::time::timeout(WAIT, responses.message())
        .await
        .expect("clusters in time")
        .expect("stream ok")
        .expect("a response");
    assert!(!cds.resources.is_empty());

    meshd.signal("TERM");
    let end = tokio::time::timeout(WAIT, responses.message())
        .await
        .expect("the stream ends");
    assert!(
        matches!(end, Ok(None)),
        "the stream ends with OK, got {end:?}"
    );
    let status = tokio::task::spawn_blocking(move || {
        let status = meshd.wait_exit(WAIT);
        (status, meshd)
    })
    .await
    .unwrap();
    assert!(status.0.success(), "exit status {:?}", status.0);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("server draining, closing the xds stream"),
        "{text}"
    );
    assert!(text.contains("xds server drained"), "{text}");
    assert!(
        std::net::TcpStream::connect(status.1.xds).is_err(),
        "xds port still accepts connections"
    );
}

/// A peer that never reads (HTTP/2 window 0) keeps its stream from finishing: the drain
/// duration bounds the wait, then meshd drops the connection and exits anyway.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_duration_bounds_a_peer_that_never_reads() {
    use prost::Message;
    use tonic::codegen::http;

    let (dir, mut meshd) = serve_bookinfo("1s");
    let log = dir.path().join("meshd.log");

    let tcp = tokio::net::TcpStream::connect(meshd.xds).await.unwrap();
    let (client, connection) = h2::client::Builder::new()
        .initial_window_size(0)
        .handshake::<_, bytes::Bytes>(tcp)
        .await
        .expect("http/2 handshake");
    tokio::spawn(connection);
    let mut client = client.ready().await.unwrap();
    let request = http::Request::post(format!(
        "http://{}/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources",
        meshd.xds
    ))
    .header("content-type", "application/grpc")
    .header("te", "trailers")
    .body(())
    .unwrap();
    let (response, mut body) = client.send_request(request, false).unwrap();
    let message = DiscoveryRequest {
        node: Some(Node {
            id: NODE.into(),
            ..Default::default()
        }),
        type_url: type_url::CLUSTER.into(),
        ..Default::default()
    }
    .encode_to_vec();
    let mut frame = vec![0u8];
    frame.extend((message.len() as u32).to_be_bytes());
    frame.extend(message);
    body.send_data(frame.into(), false).unwrap();
    let response = tokio::time::timeout(WAIT, response)
        .await
        .expect("response headers in time")
        .unwrap();
    assert_eq!(response.status(), 200);
    // The clusters are built and waiting for window the peer never gives.
    wait_log(&log, "xds stream connected", WAIT);

    meshd.signal("TERM");
    let status = tokio::task::spawn_blocking(move || meshd.wait_exit(WAIT))
        .await
        .unwrap();
    assert!(status.success(), "exit status {status:?}");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("xds drain duration reached, dropping the remaining connections"),
        "{text}"
    );
    drop(body);
}
