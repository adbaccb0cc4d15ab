//! The admin HTTP server (port 15014): readiness, Prometheus metrics and debug views.
//! Read-only: it reports what the xDS server and the current configuration hold.

mod debug;
mod metrics;

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
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
        }
    }
}

pub fn router(state: AdminState) -> Router {
    Router::new()
        .route("/ready", get(ready))
        .route("/metrics", get(metrics::metrics))
        .route("/debug/syncz", get(debug::syncz))
        .route("/debug/config_dump", get(debug::config_dump))
        .route("/debug/configz", get(debug::configz))
        .with_state(state)
}

pub async fn serve(listener: tokio::net::TcpListener, state: AdminState) -> anyhow::Result<()> {
    axum::serve(listener, router(state)).await?;
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
