//! The HTTP body of an ADS response stream, in place of tonic's encoder. tonic encodes
//! every message into one buffer per stream that keeps the capacity of the largest
//! response it ever held; here each message goes out in chunks made when HTTP/2 asks for
//! them: the gRPC frame header and small fields are written into short-lived buffers, and
//! large resource values are sent as slices of the shared `Bytes`, not copied. Nothing
//! outlives the write. The body ends with the gRPC trailers tonic would send.

use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{BufMut, Bytes, BytesMut};
use http_body::Frame;
use tokio::sync::mpsc;
use tonic::codegen::http::HeaderMap;
use tonic::Status;

use super::wire::WireMessage;

/// Values at least this long are sent as their own chunk, a slice of the shared bytes;
/// shorter ones are copied next to their framing, so that a response of many small
/// resources does not become a stream of small HTTP/2 frames. h2 queues every frame of a
/// connection in a slab that keeps its largest size: with 1 KB here, a 1,000-service cold
/// start queued about 500 frames per connection, 40 KB of slab kept per proxy. Copying
/// values under a frame's size (a few hundred microseconds of `memcpy` per cold start) keeps
/// that queue to a few dozen frames.
const SHARE_MIN: usize = 16 * 1024;
/// A chunk of copied bytes is cut once it reaches this size (HTTP/2's default frame size).
const CHUNK: usize = 16 * 1024;
/// Room for the framing between two shared values (one resource's suffix, the next one's
/// prefix); the buffer grows when a name is longer.
const FRAMING: usize = 512;
/// The gRPC message header: a compression flag and a big-endian length.
const GRPC_HEADER: usize = 5;

/// One message being sent, as a cursor over its parts.
pub(crate) struct Chunks<M> {
    message: M,
    started: bool,
    /// The next resource whose prefix is due.
    next: usize,
    /// The suffix of resource `next` is due before anything else that is copied.
    suffix_due: bool,
    /// A shared value to send before anything else.
    shared: Option<Bytes>,
    done: bool,
    /// Bytes not yet handed out, frame header included (sizes the copy buffers).
    remaining: usize,
}

impl<M: WireMessage> Chunks<M> {
    /// Checks the message against the size limit as tonic does, with tonic's errors.
    pub(crate) fn new(message: M, max_message_size: usize) -> Result<Self, Status> {
        let len = message.encoded_len();
        if len > max_message_size {
            return Err(Status::out_of_range(format!(
                "Error, encoded message length too large: found {len} bytes, the limit is: {max_message_size} bytes"
            )));
        }
        if len > u32::MAX as usize {
            return Err(Status::resource_exhausted(format!(
                "Cannot return body with more than 4GB of data but got {len} bytes"
            )));
        }
        Ok(Chunks {
            message,
            started: false,
            next: 0,
            suffix_due: false,
            shared: None,
            done: false,
            remaining: GRPC_HEADER + len,
        })
    }

    /// The next chunk of the framed message, or `None` once all of it was handed out.
    pub(crate) fn next_chunk(&mut self) -> Option<Bytes> {
        if let Some(value) = self.shared.take() {
            self.remaining -= value.len();
            return Some(value);
        }
        if self.done {
            debug_assert_eq!(self.remaining, 0, "encoded_len disagrees with the parts");
            return None;
        }
        let resources = self.message.resources();
        // When the next value goes out shared, this chunk only carries framing around it.
        let next = self.next + usize::from(self.suffix_due);
        let framing_only = self.started
            && resources
                .get(next)
                .is_some_and(|r| r.body.value.len() >= SHARE_MIN);
        let capacity = if framing_only {
            FRAMING
        } else {
            self.remaining.min(CHUNK + SHARE_MIN)
        };
        let mut buf = BytesMut::with_capacity(capacity);
        if !self.started {
            self.started = true;
            buf.put_u8(0);
            buf.put_u32((self.remaining - GRPC_HEADER) as u32);
            self.message.put_head(&mut buf);
        }
        loop {
            if self.suffix_due {
                M::put_resource_suffix(&resources[self.next], &mut buf);
                self.suffix_due = false;
                self.next += 1;
            }
            if buf.len() >= CHUNK {
                break;
            }
            let Some(resource) = resources.get(self.next) else {
                self.message.put_tail(&mut buf);
                self.done = true;
                break;
            };
            M::put_resource_prefix(resource, &mut buf);
            self.suffix_due = true;
            let value = &resource.body.value;
            if value.len() >= SHARE_MIN {
                self.shared = Some(value.clone());
                break;
            }
            buf.put_slice(value);
        }
        self.remaining -= buf.len();
        if buf.is_empty() {
            return None;
        }
        Some(buf.freeze())
    }
}

/// The response body of one ADS stream: the messages the stream task sends, then trailers.
pub(crate) struct AdsBody<M> {
    /// `None` once the trailers are out.
    responses: Option<mpsc::Receiver<Result<M, Status>>>,
    current: Option<Chunks<M>>,
    max_message_size: usize,
}

impl<M> AdsBody<M> {
    pub(crate) fn new(
        responses: mpsc::Receiver<Result<M, Status>>,
        max_message_size: usize,
    ) -> Self {
        AdsBody {
            responses: Some(responses),
            current: None,
            max_message_size,
        }
    }

    /// Ends the stream with `status` in the trailers, as tonic's server encoder does.
    fn finish(&mut self, status: Status) -> Result<Frame<Bytes>, Status> {
        self.responses = None;
        self.current = None;
        let mut trailers = HeaderMap::with_capacity(3);
        status.add_header(&mut trailers)?;
        Ok(Frame::trailers(trailers))
    }
}

impl<M: WireMessage + Unpin> http_body::Body for AdsBody<M> {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = self.get_mut();
        loop {
            if let Some(chunk) = this.current.as_mut().and_then(Chunks::next_chunk) {
                return Poll::Ready(Some(Ok(Frame::data(chunk))));
            }
            this.current = None;
            let Some(responses) = this.responses.as_mut() else {
                return Poll::Ready(None);
            };
            let status = match ready!(responses.poll_recv(cx)) {
                Some(Ok(message)) => match Chunks::new(message, this.max_message_size) {
                    Ok(chunks) => {
                        this.current = Some(chunks);
                        continue;
                    }
                    Err(status) => status,
                },
                Some(Err(status)) => status,
                None => Status::ok(""),
            };
            return Poll::Ready(Some(this.finish(status)));
        }
    }

    fn is_end_stream(&self) -> bool {
        self.responses.is_none() && self.current.is_none()
    }
}

#[cfg(test)]
#[path = "body_tests.rs"]
mod tests;
