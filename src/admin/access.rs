//! Who may read the debug views: they expose the mesh's configuration (and, through
//! config_dump, every proxy's), so only callers on this host (loopback) get them unless
//! `--debug-on-http` opens them to any caller that reaches the admin port, as istiod's
//! ENABLE_DEBUG_ON_HTTP does. `/ready` and `/metrics` are not behind this.

use std::net::SocketAddr;

use axum::extract::connect_info::{ConnectInfo, MockConnectInfo};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AdminState;

/// Passes loopback callers (IPv4, IPv6, and IPv4-mapped IPv6), and everyone when the
/// option is set; others get 403 naming the option.
pub async fn debug_guard(
    State(state): State<AdminState>,
    request: Request,
    next: Next,
) -> Response {
    if state.debug_on_http {
        return next.run(request).await;
    }
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0)
        .or_else(|| {
            request
                .extensions()
                .get::<MockConnectInfo<SocketAddr>>()
                .map(|m| m.0)
        });
    match peer {
        Some(peer) if peer.ip().to_canonical().is_loopback() => next.run(request).await,
        peer => {
            let who = peer.map_or_else(|| "an unknown address".to_string(), |p| p.ip().to_string());
            (
                StatusCode::FORBIDDEN,
                format!(
                    "{} is only served to loopback callers (this request came from {who}); \
                     start meshd serve with --debug-on-http (or MESHD_DEBUG_ON_HTTP=true) to \
                     serve the debug views to any caller\n",
                    request.uri().path()
                ),
            )
                .into_response()
        }
    }
}
