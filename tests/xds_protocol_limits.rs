//! Bounded inputs and outputs of the ADS server: requests that do not decode or are over
//! the request size limit end the stream with an error status; responses over the response
//! size limit are logged, counted and withheld rather than ending the stream in a loop. A
//! real tonic server and client in process.

mod support;

use envoy_types::pb::envoy::service::discovery::v3::{DeltaDiscoveryRequest, DiscoveryRequest};
use meshd::xds::server::XdsOptions;
use meshd::xds::type_url::{CLUSTER, ENDPOINT};
use support::*;

/// A message with `DiscoveryRequest`'s field 1 (`version_info`, a string) as an integer:
/// its bytes do not decode as a `DiscoveryRequest`.
#[derive(Clone, PartialEq, prost::Message)]
struct Garbage {
    #[prost(uint64, tag = "1")]
    version_info: u64,
}

#[tokio::test]
async fn undecodable_request_ends_the_stream_with_an_error() {
    let h = Harness::start().await;
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", h.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let path = "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources";
    let codec = tonic_prost::ProstCodec::<Garbage, DiscoveryRequest>::default();
    let requests = tokio_stream::iter([Garbage { version_info: 7 }]);
    let mut responses = grpc
        .streaming(tonic::Request::new(requests), path.parse().unwrap(), codec)
        .await
        .expect("stream accepted")
        .into_inner();
    let err = ended_with_error(&mut responses).await;
    assert_eq!(err.code(), tonic::Code::Internal, "{err:?}");
    assert!(err.message().contains("decode"), "{err:?}");
}

#[tokio::test]
async fn request_over_the_request_limit_ends_the_stream_with_out_of_range() {
    let options = XdsOptions {
        max_request_message_size: 64 * 1024,
        ..XdsOptions::default()
    };
    let h = Harness::start_with(options, 1).await;
    h.set(ENDPOINT, vec![res(ENDPOINT, "a", 1)]);
    h.bump();
    let mut s = h.sotw().await;
    // Thousands of names fit under the limit...
    let wanted: Vec<String> = (0..1000)
        .map(|i| format!("outbound|80||svc-{i}.default"))
        .collect();
    let refs: Vec<&str> = wanted.iter().map(String::as_str).collect();
    s.subscribe(ENDPOINT, &refs).await;
    assert!(names(&s.recv().await).is_empty());
    // ...ten thousand do not.
    let names: Vec<String> = (0..10_000)
        .map(|i| format!("outbound|80||svc-{i}.default"))
        .collect();
    s.send(DiscoveryRequest {
        type_url: ENDPOINT.into(),
        resource_names: names,
        ..Default::default()
    })
    .await;
    let err = ended_with_error(&mut s.responses).await;
    assert_eq!(err.code(), tonic::Code::OutOfRange, "{err:?}");
}

#[tokio::test]
async fn sotw_response_over_the_limit_is_counted_and_not_retried() {
    let options = XdsOptions {
        max_response_message_size: 64 * 1024,
        ..XdsOptions::default()
    };
    let h = Harness::start_with(options, 1).await;
    h.set(CLUSTER, vec![big_cluster("big", 100 * 1024)]);
    h.bump();
    let mut s = h.sotw().await;
    s.subscribe(CLUSTER, &[]).await;
    s.expect_silence().await;
    let counted = "meshd_xds_oversized_responses_total{type=\"cds\"} 1\n";
    assert!(h.status.render_metrics().contains(counted));
    // A new generation with the same content: not built, sent or counted again.
    h.bump();
    s.expect_silence().await;
    assert!(h.status.render_metrics().contains(counted));
    // The stream is still up: a configuration that fits goes out.
    h.set(CLUSTER, vec![res(CLUSTER, "small", 1)]);
    h.bump();
    assert_eq!(names(&s.recv().await), ["small"]);
    assert_eq!(h.status.connected(), 1);
}

#[tokio::test]
async fn delta_response_over_the_limit_is_split_and_a_too_large_resource_withheld() {
    let options = XdsOptions {
        max_response_message_size: 64 * 1024,
        ..XdsOptions::default()
    };
    let h = Harness::start_with(options, 1).await;
    h.set(
        CLUSTER,
        vec![
            big_cluster("a", 40 * 1024),
            big_cluster("b", 40 * 1024),
            big_cluster("huge", 100 * 1024),
            res(CLUSTER, "small", 1),
        ],
    );
    h.bump();
    let mut d = h.delta().await;
    d.subscribe(CLUSTER, &[]).await;
    // "a" and "b" do not fit in one response: two responses; "huge" fits in none.
    let first = d.recv().await;
    let second = d.recv().await;
    let mut got: Vec<String> = delta_names(&first);
    got.extend(delta_names(&second));
    got.sort();
    assert_eq!(got, ["a", "b", "small"]);
    d.expect_silence().await;
    assert!(h
        .status
        .render_metrics()
        .contains("meshd_xds_oversized_responses_total{type=\"cds\"} 1\n"));
    d.ack(&first).await;
    d.ack(&second).await;
    // Not tried again at a new generation; a new version that fits is sent.
    h.bump();
    d.expect_silence().await;
    h.set(
        CLUSTER,
        vec![
            big_cluster("a", 40 * 1024),
            big_cluster("b", 40 * 1024),
            res(CLUSTER, "huge", 2),
            res(CLUSTER, "small", 1),
        ],
    );
    h.bump();
    assert_eq!(delta_names(&d.recv().await), ["huge"]);
}

#[tokio::test]
async fn delta_first_request_with_many_initial_versions_is_accepted() {
    let h = Harness::start().await;
    h.set(CLUSTER, vec![res(CLUSTER, "a", 1)]);
    h.bump();
    let mut d = h.delta().await;
    // 20,000 resources the proxy says it holds: about 1.5 MB, under the 4 MiB default.
    d.send(DeltaDiscoveryRequest {
        node: node(),
        type_url: CLUSTER.into(),
        initial_resource_versions: (0..20_000)
            .map(|i| {
                (
                    format!("outbound|9080||service-{i}.default.svc.cluster.local"),
                    "0123456789abcdef".to_string(),
                )
            })
            .collect(),
        ..Default::default()
    })
    .await;
    let r = d.recv().await;
    assert_eq!(delta_names(&r), ["a"]);
    assert_eq!(r.removed_resources.len(), 20_000);
}

#[tokio::test]
async fn too_many_subscribed_names_end_the_stream_with_resource_exhausted() {
    let h = Harness::start().await;
    h.set(ENDPOINT, vec![res(ENDPOINT, "a", 1)]);
    h.bump();
    let mut s = h.sotw().await;
    s.subscribe(ENDPOINT, &["a"]).await;
    assert_eq!(names(&s.recv().await), ["a"]);
    // One over the per-type bound (200,000), in a request under the 4 MiB limit.
    let names: Vec<String> = (0..200_001).map(|i| format!("n{i}")).collect();
    s.send(DiscoveryRequest {
        type_url: ENDPOINT.into(),
        resource_names: names,
        ..Default::default()
    })
    .await;
    let err = ended_with_error(&mut s.responses).await;
    assert_eq!(err.code(), tonic::Code::ResourceExhausted, "{err:?}");
    assert!(err.message().contains("200000"), "{err:?}");
}

#[tokio::test]
async fn rejection_messages_are_kept_short() {
    let h = Harness::start().await;
    h.set(CLUSTER, vec![res(CLUSTER, "c", 1)]);
    h.bump();
    let mut s = h.sotw().await;
    s.subscribe(CLUSTER, &[]).await;
    let first = s.recv().await;
    s.send(DiscoveryRequest {
        type_url: CLUSTER.into(),
        response_nonce: first.nonce.clone(),
        error_detail: Some(envoy_types::pb::google::rpc::Status {
            code: 3,
            message: "x".repeat(1 << 20),
            details: vec![],
        }),
        ..Default::default()
    })
    .await;
    wait_until(&h.status, "the NACK", |p| p["clusters"]["nacked"] == true).await;
    let json = h.status.syncz_json();
    let last_nack = json[NODE]["clusters"]["last_nack"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        last_nack.len() <= 4096 + 32,
        "{} bytes kept",
        last_nack.len()
    );
    assert!(last_nack.ends_with("[truncated by meshd]"));
}
