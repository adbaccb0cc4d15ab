//! A bidirectional gRPC stream over a tonic `Channel` without tonic's `Streaming`
//! decoder. `Streaming` keeps one receive buffer per stream that grows to the largest
//! message it ever held and never shrinks: about 1 MB per simulated proxy against a
//! 1,000-service mesh, held for the whole run, which is what kept the generator from
//! simulating thousands of proxies. Here each response is assembled in a buffer of its
//! own size, decoded, and freed.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use http_body::{Body as _, Frame};
use prost::Message;
use tokio::sync::mpsc;
use tonic::client::GrpcService;
use tonic::codegen::http;
use tonic::transport::Channel;
use tonic::Status;

/// The gRPC message header: a compression flag and a big-endian length.
const HEADER: usize = 5;
/// The largest response accepted (as the generator's tonic client allowed).
const MAX_MESSAGE: usize = 256 * 1024 * 1024;

/// The request body: messages from a channel, each framed as gRPC frames them.
struct Requests<M> {
    rx: mpsc::Receiver<M>,
}

impl<M: Message + Unpin> http_body::Body for Requests<M> {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        self.rx.poll_recv(cx).map(|message| {
            message.map(|m| {
                let len = m.encoded_len();
                let mut buf = BytesMut::with_capacity(HEADER + len);
                buf.put_u8(0);
                buf.put_u32(len as u32);
                m.encode(&mut buf).expect("the buffer has room");
                Ok(Frame::data(buf.freeze()))
            })
        })
    }
}

/// The response side of a stream.
pub struct Responses<M> {
    body: tonic::body::Body,
    /// Bytes received and not yet part of a whole message (at most one message's worth).
    pending: BytesMut,
    ended: bool,
    _message: std::marker::PhantomData<M>,
}

/// Opens a stream to `path` on `channel`, sending the messages put into `rx`.
pub async fn open<Req, Resp>(
    mut channel: Channel,
    path: &'static str,
    rx: mpsc::Receiver<Req>,
) -> Result<Responses<Resp>, Status>
where
    Req: Message + Unpin + Send + 'static,
{
    std::future::poll_fn(|cx| GrpcService::poll_ready(&mut channel, cx))
        .await
        .map_err(|e| Status::unavailable(e.to_string()))?;
    let mut request = http::Request::new(tonic::body::Body::new(Requests { rx }));
    *request.method_mut() = http::Method::POST;
    *request.uri_mut() = http::Uri::from_static(path);
    let headers = request.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        "application/grpc".parse().unwrap(),
    );
    headers.insert(http::header::TE, "trailers".parse().unwrap());
    let response = GrpcService::call(&mut channel, request)
        .await
        .map_err(|e| Status::unavailable(e.to_string()))?;
    // A refusal comes as a response with only headers, its status among them.
    if let Some(status) = Status::from_header_map(response.headers()) {
        if status.code() != tonic::Code::Ok {
            return Err(status);
        }
    }
    Ok(Responses {
        body: response.into_body(),
        pending: BytesMut::new(),
        ended: false,
        _message: std::marker::PhantomData,
    })
}

impl<M: Message + Default> Responses<M> {
    /// The next message; `Ok(None)` when the server ended the stream with OK.
    pub async fn message(&mut self) -> Result<Option<M>, Status> {
        loop {
            if let Some(message) = self.take_message()? {
                return Ok(Some(message));
            }
            if self.ended {
                return Ok(None);
            }
            let frame = std::future::poll_fn(|cx| Pin::new(&mut self.body).poll_frame(cx)).await;
            match frame {
                None => self.ended = true,
                Some(Err(status)) => return Err(status),
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(mut data) => {
                        self.reserve_for(data.remaining());
                        while data.has_remaining() {
                            let chunk = data.chunk();
                            let n = chunk.len();
                            self.pending.put_slice(chunk);
                            data.advance(n);
                        }
                    }
                    Err(frame) => {
                        self.ended = true;
                        if let Some(status) = frame
                            .trailers_ref()
                            .and_then(Status::from_header_map)
                            .filter(|s| s.code() != tonic::Code::Ok)
                        {
                            return Err(status);
                        }
                    }
                },
            }
        }
    }

    /// Grows the buffer for `incoming` more bytes: to the whole message once its header
    /// is in, so that a large message is assembled with one allocation.
    fn reserve_for(&mut self, incoming: usize) {
        let want = if self.pending.len() >= HEADER {
            let len = u32::from_be_bytes(self.pending[1..5].try_into().unwrap()) as usize;
            (HEADER + len).max(self.pending.len() + incoming)
        } else {
            self.pending.len() + incoming
        };
        self.pending.reserve(want - self.pending.len());
    }

    /// A whole message from the front of the buffer, if one is there. Once the buffer is
    /// empty its allocation is dropped, so nothing the size of a message stays behind.
    fn take_message(&mut self) -> Result<Option<M>, Status> {
        if self.pending.len() < HEADER {
            return Ok(None);
        }
        if self.pending[0] != 0 {
            return Err(Status::internal("compressed response, not supported"));
        }
        let len = u32::from_be_bytes(self.pending[1..5].try_into().unwrap()) as usize;
        if len > MAX_MESSAGE {
            return Err(Status::out_of_range(format!(
                "response of {len} bytes over {MAX_MESSAGE}"
            )));
        }
        if self.pending.len() < HEADER + len {
            return Ok(None);
        }
        let frame = self.pending.split_to(HEADER + len);
        let message = M::decode(&frame[HEADER..])
            .map_err(|e| Status::internal(format!("decoding a response: {e}")))?;
        drop(frame);
        if self.pending.is_empty() {
            self.pending = BytesMut::new();
        }
        Ok(Some(message))
    }
}
