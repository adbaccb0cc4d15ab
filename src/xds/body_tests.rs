//! The response body frames messages as tonic does (a 5-byte header and the prost
//! encoding of the generated message), shares large values instead of copying them, and
//! ends with the trailers tonic would send.

use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use http_body::Body;
use prost::Message;
use tokio::sync::mpsc;
use tonic::codegen::http::HeaderMap;
use tonic::{Code, Status};

use super::{AdsBody, CHUNK, SHARE_MIN};
use crate::envoy::resource::{type_url, Resource};
use crate::xds::wire::tests::{cluster, delta_prost, sotw_prost};
use crate::xds::wire::{DeltaResponse, SotwResponse};

/// Small and large values, enough small ones to fill more than one copied chunk, and an
/// empty resource (fields prost omits).
fn resources() -> Vec<Arc<Resource>> {
    let mut all = vec![cluster("a", 0), cluster("big", 70_000)];
    all.extend((0..100).map(|i| cluster(&format!("small-{i}"), 300)));
    all.push(cluster("edge", SHARE_MIN));
    all.push(Arc::new(Resource::from_encoded(
        "",
        type_url::CLUSTER,
        Vec::new(),
    )));
    all
}

fn sotw(nonce: &str) -> SotwResponse {
    SotwResponse {
        version_info: "0123456789abcdef".into(),
        resources: Arc::new(resources()),
        type_url: type_url::CLUSTER,
        nonce: nonce.into(),
    }
}

/// The gRPC framing of one message: flag 0, big-endian length, the message.
fn framed(message: &impl Message) -> Vec<u8> {
    let bytes = message.encode_to_vec();
    let mut out = vec![0];
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(&bytes);
    out
}

/// Everything the body yields: its data chunks, then its trailers.
async fn collect<M: super::WireMessage + Unpin>(
    mut body: AdsBody<M>,
) -> (Vec<Bytes>, Option<HeaderMap>) {
    let mut chunks = Vec::new();
    let mut trailers = None;
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        let frame = frame.expect("body error");
        match frame.into_data() {
            Ok(data) => {
                assert!(trailers.is_none(), "data after trailers");
                assert!(!data.is_empty(), "empty chunk");
                chunks.push(data);
            }
            Err(frame) => trailers = Some(frame.into_trailers().expect("trailers")),
        }
    }
    assert!(body.is_end_stream());
    (chunks, trailers)
}

fn body_of<M>(messages: Vec<Result<M, Status>>, limit: usize) -> AdsBody<M> {
    let (tx, rx) = mpsc::channel(messages.len().max(1));
    for m in messages {
        tx.try_send(m).ok().unwrap();
    }
    AdsBody::new(rx, limit)
}

fn concat(chunks: &[Bytes]) -> Vec<u8> {
    chunks.iter().flat_map(|c| c.iter().copied()).collect()
}

fn status_of(trailers: &HeaderMap) -> (&str, Option<&str>) {
    (
        trailers["grpc-status"].to_str().unwrap(),
        trailers.get("grpc-message").map(|v| v.to_str().unwrap()),
    )
}

#[tokio::test]
async fn sotw_messages_are_framed_as_prost_encodes_them() {
    let first = sotw("1-1");
    let second = sotw("1-2");
    let mut expected = framed(&sotw_prost(&first));
    expected.extend(framed(&sotw_prost(&second)));
    let (chunks, trailers) = collect(body_of(vec![Ok(first), Ok(second)], usize::MAX)).await;
    assert_eq!(concat(&chunks), expected);
    let trailers = trailers.expect("trailers");
    assert_eq!(status_of(&trailers), ("0", None));
    // Each chunk is either a large value, shared, or copied bytes of bounded size.
    let values = resources();
    for chunk in &chunks {
        let shared = values
            .iter()
            .any(|r| r.body.value.len() >= SHARE_MIN && r.body.value.len() == chunk.len());
        assert!(
            shared || chunk.len() < CHUNK + SHARE_MIN + 256,
            "{}",
            chunk.len()
        );
    }
}

#[tokio::test]
async fn large_values_are_sent_from_the_shared_bytes() {
    let response = sotw("1-1");
    let big = response.resources[1].body.value.clone();
    let edge = response.resources[102].body.value.len();
    let (chunks, _) = collect(body_of(vec![Ok(response)], usize::MAX)).await;
    assert!(chunks
        .iter()
        .any(|c| c.as_ptr() == big.as_ptr() && c.len() == big.len()));
    // Many small resources make few chunks, not one per resource: the framing before
    // `big`, `big` itself, the hundred small values (about 37 KB copied) in three chunks cut
    // at `CHUNK`, `edge` itself, and the framing after it.
    let sizes: Vec<usize> = chunks.iter().map(|c| c.len()).collect();
    assert_eq!(sizes.len(), 7, "chunk sizes {sizes:?}");
    assert_eq!(sizes[1], big.len());
    assert_eq!(sizes[5], edge, "chunk sizes {sizes:?}");
}

#[tokio::test]
async fn delta_messages_are_framed_as_prost_encodes_them() {
    let response = DeltaResponse {
        system_version_info: "abc".into(),
        resources: resources(),
        type_url: type_url::CLUSTER,
        removed_resources: vec!["gone".into(), String::new()],
        nonce: "3-4".into(),
    };
    let expected = delta_prost(&response);
    let (chunks, trailers) = collect(body_of(vec![Ok(response)], usize::MAX)).await;
    assert_eq!(concat(&chunks), framed(&expected));
    assert_eq!(status_of(&trailers.unwrap()), ("0", None));
}

#[tokio::test]
async fn an_error_ends_the_stream_with_its_status() {
    let first = sotw("1-1");
    let expected = framed(&sotw_prost(&first));
    let messages = vec![
        Ok(first),
        Err(Status::invalid_argument("no such proxy: a b")),
        Ok(sotw("1-2")),
    ];
    let (chunks, trailers) = collect(body_of(messages, usize::MAX)).await;
    assert_eq!(concat(&chunks), expected);
    let trailers = trailers.unwrap();
    let status = Status::from_header_map(&trailers).unwrap();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(status.message(), "no such proxy: a b");
    // The same trailers as tonic's `Status` gives.
    let mut tonic = HeaderMap::new();
    Status::invalid_argument("no such proxy: a b")
        .add_header(&mut tonic)
        .unwrap();
    assert_eq!(trailers, tonic);
}

#[tokio::test]
async fn an_empty_stream_has_only_trailers() {
    let (chunks, trailers) = collect(body_of::<SotwResponse>(Vec::new(), usize::MAX)).await;
    assert!(chunks.is_empty());
    assert_eq!(status_of(&trailers.unwrap()), ("0", None));
}

#[tokio::test]
async fn a_message_over_the_limit_ends_the_stream_as_tonic_does() {
    let response = sotw("1-1");
    let len = sotw_prost(&response).encoded_len();
    let (chunks, trailers) = collect(body_of(vec![Ok(response)], len - 1)).await;
    assert!(chunks.is_empty());
    let trailers = trailers.unwrap();
    assert_eq!(
        trailers["grpc-status"].to_str().unwrap(),
        (Code::OutOfRange as i32).to_string()
    );
    let message = Status::from_header_map(&trailers).unwrap();
    assert_eq!(
        message.message(),
        format!(
            "Error, encoded message length too large: found {len} bytes, the limit is: {} bytes",
            len - 1
        )
    );
}
