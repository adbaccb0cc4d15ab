//! Sidecar: what a proxy sees (egress hosts), how it receives (ingress listeners) and what
//! happens to traffic for unknown destinations.

use serde::Deserialize;

use super::{null_as_default, Port, WorkloadSelector};

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SidecarSpec {
    pub workload_selector: Option<WorkloadSelector>,
    #[serde(deserialize_with = "null_as_default")]
    pub ingress: Vec<IstioIngressListener>,
    #[serde(deserialize_with = "null_as_default")]
    pub egress: Vec<IstioEgressListener>,
    pub outbound_traffic_policy: Option<OutboundTrafficPolicy>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct IstioIngressListener {
    pub port: Option<Port>,
    pub bind: Option<String>,
    pub capture_mode: Option<String>,
    /// `127.0.0.1:PORT`, `0.0.0.0:PORT` or a unix socket.
    pub default_endpoint: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct IstioEgressListener {
    pub port: Option<Port>,
    pub bind: Option<String>,
    pub capture_mode: Option<String>,
    /// `namespace/dnsName`: `./*`, `ns/*`, `*/*`, `~/*`, `ns/host`.
    #[serde(deserialize_with = "null_as_default")]
    pub hosts: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct OutboundTrafficPolicy {
    /// `ALLOW_ANY` or `REGISTRY_ONLY`.
    pub mode: Option<String>,
}
