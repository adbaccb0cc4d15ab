//! `/debug/syncz`: per connected proxy and type, what was sent, acked and rejected.
//!
//! The body is written page by page as it is sent: the registry is read a page of streams
//! at a time (each stream snapshotted on its own, see `xds::status`), so neither the
//! whole fleet's JSON nor any lock is held for the response. Query parameters:
//! `proxyID` for one proxy (404 when it is not connected), `limit` and `after` (a node id)
//! for pages in node id order, `names=true|false` for the subscribed names (default: only
//! with `proxyID`; otherwise each type has only `name_count`).

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::AdminState;
use crate::xds::XdsStatus;

/// Proxies read from the registry per body chunk.
const PAGE: usize = 64;

#[derive(Debug, Deserialize)]
pub struct SynczParams {
    #[serde(rename = "proxyID")]
    proxy_id: Option<String>,
    limit: Option<usize>,
    after: Option<String>,
    names: Option<bool>,
}

pub async fn syncz(State(state): State<AdminState>, Query(params): Query<SynczParams>) -> Response {
    if let Some(node_id) = &params.proxy_id {
        let Some(stream) = state.xds.proxy(node_id) else {
            return (
                StatusCode::NOT_FOUND,
                format!("proxy {node_id} has no xDS stream connected to this server\n"),
            )
                .into_response();
        };
        let entry = stream.view().to_json(params.names.unwrap_or(true));
        let body = serde_json::json!({ node_id.as_str(): entry });
        return axum::Json(body).into_response();
    }
    if params.limit == Some(0) {
        return (
            StatusCode::BAD_REQUEST,
            "query parameter limit must be at least 1\n",
        )
            .into_response();
    }
    let pages = Pages {
        xds: state.xds.clone(),
        after: params.after,
        remaining: params.limit.unwrap_or(usize::MAX),
        names: params.names.unwrap_or(false),
        started: false,
        written: 0,
        done: false,
    };
    let body = futures::stream::unfold(pages, |mut pages| async move {
        let chunk = pages.next_chunk()?;
        Some((Ok::<_, std::convert::Infallible>(chunk), pages))
    });
    (
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(body),
    )
        .into_response()
}

/// Where the body writer is in the registry.
struct Pages {
    xds: XdsStatus,
    /// The last node id written.
    after: Option<String>,
    remaining: usize,
    names: bool,
    started: bool,
    /// Proxies written so far.
    written: usize,
    done: bool,
}

impl Pages {
    /// The next part of the JSON object: `{` and the first page, following pages, and `}`
    /// with the last one. `None` once everything is written.
    fn next_chunk(&mut self) -> Option<Bytes> {
        if self.done {
            return None;
        }
        let mut out = Vec::new();
        if !self.started {
            out.push(b'{');
        }
        let want = self.remaining.min(PAGE);
        let page = self.xds.page(self.after.as_deref(), want);
        for stream in &page {
            if self.written > 0 {
                out.push(b',');
            }
            self.written += 1;
            let entry = stream.view().to_json(self.names);
            // Serializing strings and `Value`s into a Vec cannot fail.
            let _ = serde_json::to_writer(&mut out, stream.node_id());
            out.push(b':');
            let _ = serde_json::to_writer(&mut out, &entry);
        }
        self.started = true;
        self.remaining -= page.len();
        match page.last() {
            Some(last) if page.len() == want && self.remaining > 0 => {
                self.after = Some(last.node_id().to_string());
            }
            _ => {
                out.push(b'}');
                self.done = true;
            }
        }
        Some(Bytes::from(out))
    }
}
