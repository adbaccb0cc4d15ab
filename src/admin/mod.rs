//! The admin HTTP server (port 15014): readiness, Prometheus metrics and debug views.
//! Read-only: it reports what the xDS server and the current configuration hold. The debug
//! views answer loopback callers only, unless `debug_on_http` (see `access`).

mod access;
mod debug;
mod metrics;
mod syncz;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::middleware;
use axum::routing::get;
use axum::Router;

use crate::pipeline::generator::MeshGenerator;
use crate::xds::GenerationWatch;
use crate::xds::XdsStatus;

/// What the admin endpoints read.
#[derive(Clone)]
pub struct AdminState {
    pub xds: XdsStatus,
    pub generator: Arc<MeshGenerator>,
    /// The generation the xDS server serves (0 until the first load): readiness follows
    /// it, so "ready" means streams are accepted.
    pub generations: GenerationWatch,
    /// Serve the debug views to any caller, not only loopback ones.
    pub debug_on_http: bool,
}

impl AdminState {
    pub fn new(
        xds: XdsStatus,
        generator: Arc<MeshGenerator>,
        generations: GenerationWatch,
    ) -> Self {
        AdminState {
            xds,
            generator,
            generations,
            debug_on_http: false,
        }
    }

    /// Opens the debug views to callers that are not on this host.
    pub fn with_debug_on_http(mut self, open: bool) -> Self {
        self.debug_on_http = open;
        self
    }
}

/// The admin routes. The debug views read the caller's address from `ConnectInfo`
/// (see `serve`); without it they answer 403.
pub fn router(state: AdminState) -> Router {
    let debug = Router::new()
        .route("/debug/syncz", get(syncz::syncz))
        .route("/debug/config_dump", get(debug::config_dump))
        .route("/debug/configz", get(debug::configz))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            access::debug_guard,
        ));
    Router::new()
        .route("/ready", get(ready))
        .route("/metrics", get(metrics::metrics))
        .merge(debug)
        .with_state(state)
}

pub async fn serve(listener: tokio::net::TcpListener, state: AdminState) -> anyhow::Result<()> {
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app).await?;
    Ok(())
}

/// 200 once the configuration has been loaded and xDS is being served, 503 before.
async fn ready(State(state): State<AdminState>) -> (StatusCode, &'static str) {
    if *state.generations.borrow() > 0 {
        (StatusCode::OK, "ready\n")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "configuration not loaded yet\n",
        )
    }
}
