//! The Envoy bootstrap for a sidecar that takes its configuration from meshd.

use std::collections::BTreeMap;

#[derive(Debug, Clone)]
pub struct BootstrapOptions {
    pub node_id: String,
    pub xds_address: String,
    pub delta: bool,
    pub admin_port: u16,
    pub labels: BTreeMap<String, String>,
    pub service_account: Option<String>,
    pub workload_name: Option<String>,
    pub cluster_id: String,
}

#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error("invalid --xds-address {0:?}: expected HOST:PORT")]
    XdsAddress(String),
}

pub fn render_bootstrap(options: &BootstrapOptions) -> Result<serde_json::Value, BootstrapError> {
    let _ = options;
    todo!("translate work")
}
