//! DestinationRule as the model holds it: policies per host, subset and port.

use std::collections::BTreeMap;
use std::time::Duration;

use super::ExportTo;
use crate::mesh::model::ObjectKey;

#[derive(Debug, Clone, PartialEq)]
pub struct DestinationRule {
    pub key: ObjectKey,
    /// Fully qualified, or a wildcard (`*.example.com`).
    pub host: String,
    pub traffic_policy: Option<TrafficPolicy>,
    pub subsets: Vec<Subset>,
    pub export_to: ExportTo,
    /// Labels of the workloads the rule applies to (their outbound traffic); `None` for all.
    pub workload_selector: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Subset {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// Overrides the rule's policy field by field (Istio's merge).
    pub traffic_policy: Option<TrafficPolicy>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct TrafficPolicy {
    pub load_balancer: Option<LoadBalancer>,
    pub connection_pool: Option<ConnectionPool>,
    pub outlier_detection: Option<OutlierDetection>,
    pub tls: Option<ClientTls>,
    /// By port number; each overrides the policy above for that port.
    pub port_level: BTreeMap<u16, PortPolicy>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct PortPolicy {
    pub load_balancer: Option<LoadBalancer>,
    pub connection_pool: Option<ConnectionPool>,
    pub outlier_detection: Option<OutlierDetection>,
    pub tls: Option<ClientTls>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LoadBalancer {
    pub policy: LbPolicy,
    pub locality: Option<LocalityLb>,
    pub warmup: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum LbPolicy {
    /// `UNSPECIFIED`: Istio's default (LEAST_REQUEST).
    Default,
    LeastRequest,
    RoundRobin,
    Random,
    Passthrough,
    ConsistentHash(ConsistentHash),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ConsistentHash {
    pub key: HashKey,
    pub algorithm: HashAlgorithm,
}

#[derive(Debug, Clone, PartialEq)]
pub enum HashKey {
    Header(String),
    Cookie {
        name: String,
        path: Option<String>,
        ttl: Option<Duration>,
    },
    SourceIp,
    QueryParameter(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum HashAlgorithm {
    RingHash { minimum_ring_size: Option<u64> },
    Maglev { table_size: Option<u64> },
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct LocalityLb {
    /// `from` locality (may end in `*`) -> `to` locality -> weight.
    pub distribute: Vec<(String, BTreeMap<String, u32>)>,
    pub failover: Vec<(String, String)>,
    pub failover_priority: Vec<String>,
    pub enabled: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ConnectionPool {
    pub max_connections: Option<u32>,
    pub connect_timeout: Option<Duration>,
    pub tcp_keepalive: Option<TcpKeepalive>,
    pub max_connection_duration: Option<Duration>,
    pub tcp_idle_timeout: Option<Duration>,
    pub http1_max_pending_requests: Option<u32>,
    pub http2_max_requests: Option<u32>,
    pub max_requests_per_connection: Option<u32>,
    pub max_retries: Option<u32>,
    pub http_idle_timeout: Option<Duration>,
    pub h2_upgrade: Option<bool>,
    pub use_client_protocol: bool,
    pub max_concurrent_streams: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct TcpKeepalive {
    pub probes: Option<u32>,
    pub time: Option<Duration>,
    pub interval: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct OutlierDetection {
    pub consecutive_5xx_errors: Option<u32>,
    pub consecutive_gateway_errors: Option<u32>,
    pub split_external_local_origin_errors: bool,
    pub consecutive_local_origin_failures: Option<u32>,
    pub interval: Option<Duration>,
    pub base_ejection_time: Option<Duration>,
    pub max_ejection_percent: Option<u32>,
    pub min_health_percent: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsMode {
    Disable,
    Simple,
    Mutual,
    IstioMutual,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ClientTls {
    pub mode: TlsMode,
    pub client_certificate: Option<String>,
    pub private_key: Option<String>,
    pub ca_certificates: Option<String>,
    pub credential_name: Option<String>,
    pub subject_alt_names: Vec<String>,
    pub sni: Option<String>,
    pub insecure_skip_verify: bool,
}
