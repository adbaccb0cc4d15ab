//! The admin HTTP server: /ready, /metrics, /debug/syncz.

use std::sync::Arc;

use crate::app::generator::MeshGenerator;
use crate::xds::server::XdsStatus;

#[derive(Clone)]
pub struct AdminState {
    pub xds: XdsStatus,
    pub generator: Arc<MeshGenerator>,
}

impl AdminState {
    pub fn new(xds: XdsStatus, generator: Arc<MeshGenerator>) -> Self {
        AdminState { xds, generator }
    }
}

pub async fn serve(listener: tokio::net::TcpListener, state: AdminState) -> anyhow::Result<()> {
    let _ = (listener, state);
    todo!("admin work")
}
