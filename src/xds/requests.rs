//! The request side of an ADS stream, in place of tonic's `Streaming`: gRPC messages read
//! from the HTTP/2 body and decoded with prost. tonic's decoder keeps one buffer per stream
//! with the capacity of the largest request it ever read, and a SotW endpoint request names
//! every cluster (about 60 KB in a 1,000-service mesh): that buffer was a third of a
//! stream's memory. Here the body's chunks are kept only until their message is complete,
//! a message is decoded from its chunk when it has one, and nothing outlives the decode.
//! Errors and limits are tonic's, with its status codes and messages.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::marker::PhantomData;
use std::pin::Pin;

use bytes::{Buf, Bytes, BytesMut};
use tonic::codegen::{Body, StdError};
use tonic::{Code, Status};

/// The gRPC message header: a compression flag and a big-endian length.
const HEADER: usize = 5;

type BoxBody = Pin<Box<dyn Body<Data = Bytes, Error = Status> + Send + 'static>>;

/// The requests of one stream, decoded one at a time.
pub(crate) struct Requests<T> {
    body: BoxBody,
    /// Bytes received and not yet decoded, as the body delivered them.
    chunks: VecDeque<Bytes>,
    buffered: usize,
    /// Largest message accepted.
    limit: usize,
    ended: bool,
    _message: PhantomData<fn() -> T>,
}

impl<T: prost::Message + Default> Requests<T> {
    pub(crate) fn new<B>(body: B, limit: usize) -> Self
    where
        B: Body + Send + 'static,
        B::Error: Into<StdError> + Send + 'static,
    {
        use http_body_util::BodyExt;
        let body = body
            .map_frame(|frame| frame.map_data(|mut data| data.copy_to_bytes(data.remaining())))
            .map_err(|e| Status::from_error(e.into()));
        Requests {
            body: Box::pin(body),
            chunks: VecDeque::new(),
            buffered: 0,
            limit,
            ended: false,
            _message: PhantomData,
        }
    }

    /// The next request; `None` when the proxy closed its side (or cancelled the stream).
    /// Cancel-safe: what was read is kept for the next call.
    pub(crate) async fn message(&mut self) -> Result<Option<T>, Status> {
        loop {
            if let Some(message) = self.decode()? {
                return Ok(Some(message));
            }
            if self.ended {
                return if self.buffered > 0 {
                    Err(Status::internal("Unexpected EOF decoding stream."))
                } else {
                    Ok(None)
                };
            }
            match poll_fn(|cx| self.body.as_mut().poll_frame(cx)).await {
                Some(Ok(frame)) => {
                    // Trailers end nothing on a request stream: only data counts.
                    if let Ok(data) = frame.into_data() {
                        if !data.is_empty() {
                            self.buffered += data.len();
                            self.chunks.push_back(data);
                        }
                    }
                }
                Some(Err(status)) if status.code() == Code::Cancelled => self.ended = true,
                Some(Err(status)) => return Err(status),
                None => self.ended = true,
            }
        }
    }

    /// Decodes the first message when all of it has arrived.
    fn decode(&mut self) -> Result<Option<T>, Status> {
        if self.buffered < HEADER {
            return Ok(None);
        }
        let mut header = [0u8; HEADER];
        self.peek(&mut header);
        match header[0] {
            0 => {}
            1 => {
                return Err(Status::internal(
                    "protocol error: received message with compressed-flag but no grpc-encoding was specified",
                ))
            }
            f => {
                return Err(Status::internal(format!(
                    "protocol error: received message with invalid compression flag: {f} (valid flags are 0 and 1), while sending request"
                )))
            }
        }
        let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
        if len > self.limit {
            return Err(Status::out_of_range(format!(
                "Error, decoded message length too large: found {len} bytes, the limit is: {} bytes",
                self.limit
            )));
        }
        if self.buffered < HEADER + len {
            return Ok(None);
        }
        self.advance(HEADER);
        let body = self.take(len);
        T::decode(body)
            .map(Some)
            .map_err(|e| Status::internal(e.to_string()))
    }

    /// Copies the first `out.len()` buffered bytes into `out`.
    fn peek(&self, out: &mut [u8]) {
        let mut filled = 0;
        for chunk in &self.chunks {
            let n = (out.len() - filled).min(chunk.len());
            out[filled..filled + n].copy_from_slice(&chunk[..n]);
            filled += n;
            if filled == out.len() {
                return;
            }
        }
    }

    fn advance(&mut self, mut n: usize) {
        self.buffered -= n;
        while n > 0 {
            let chunk = self.chunks.front_mut().expect("buffered bytes");
            if chunk.len() > n {
                chunk.advance(n);
                return;
            }
            n -= chunk.len();
            self.chunks.pop_front();
        }
    }

    /// The first `len` buffered bytes: a slice of the first chunk when it holds them all,
    /// else a copy made for this message only.
    fn take(&mut self, len: usize) -> Bytes {
        if self.chunks.front().is_some_and(|c| c.len() >= len) {
            self.buffered -= len;
            let chunk = self.chunks.front_mut().expect("a chunk");
            let out = chunk.split_to(len);
            if chunk.is_empty() {
                self.chunks.pop_front();
            }
            return out;
        }
        let mut out = BytesMut::with_capacity(len);
        let mut left = len;
        while left > 0 {
            let chunk = self.chunks.front_mut().expect("buffered bytes");
            let n = left.min(chunk.len());
            out.extend_from_slice(&chunk.split_to(n));
            if chunk.is_empty() {
                self.chunks.pop_front();
            }
            left -= n;
        }
        self.buffered -= len;
        out.freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use envoy_types::pb::envoy::service::discovery::v3::DiscoveryRequest;
    use http_body_util::StreamBody;
    use prost::Message;

    fn framed(message: &DiscoveryRequest) -> Vec<u8> {
        let body = message.encode_to_vec();
        let mut out = vec![0];
        out.extend_from_slice(&(body.len() as u32).to_be_bytes());
        out.extend_from_slice(&body);
        out
    }

    fn requests(chunks: Vec<Vec<u8>>, limit: usize) -> Requests<DiscoveryRequest> {
        let frames = chunks
            .into_iter()
            .map(|c| Ok::<_, Status>(http_body::Frame::data(Bytes::from(c))));
        Requests::new(StreamBody::new(tokio_stream::iter(frames)), limit)
    }

    fn request(names: usize) -> DiscoveryRequest {
        DiscoveryRequest {
            type_url: "t".into(),
            resource_names: (0..names)
                .map(|i| format!("outbound|80||svc-{i}"))
                .collect(),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn messages_split_and_joined_across_chunks_decode_in_order() {
        let (a, b) = (request(3), request(200));
        let mut bytes = framed(&a);
        bytes.extend(framed(&b));
        // Cut everywhere: inside the header, inside a message, across the boundary.
        let chunks: Vec<Vec<u8>> = bytes.chunks(7).map(<[u8]>::to_vec).collect();
        let mut stream = requests(chunks, 1 << 20);
        assert_eq!(stream.message().await.unwrap(), Some(a));
        assert_eq!(stream.message().await.unwrap(), Some(b));
        assert_eq!(stream.message().await.unwrap(), None);
        assert!(stream.chunks.is_empty(), "nothing is kept after the end");
    }

    #[tokio::test]
    async fn limits_truncation_and_compression_end_the_stream_as_tonic_does() {
        let big = framed(&request(100));
        let mut over = requests(vec![big.clone()], 100);
        let status = over.message().await.unwrap_err();
        assert_eq!(status.code(), Code::OutOfRange);
        assert!(status.message().contains("the limit is: 100 bytes"));

        let mut cut = requests(vec![big[..big.len() - 1].to_vec()], 1 << 20);
        assert_eq!(cut.message().await.unwrap_err().code(), Code::Internal);

        let mut compressed = big;
        compressed[0] = 1;
        let mut stream = requests(vec![compressed], 1 << 20);
        assert_eq!(stream.message().await.unwrap_err().code(), Code::Internal);
    }
}
