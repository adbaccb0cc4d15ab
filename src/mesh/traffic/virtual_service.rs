//! VirtualService as the model holds it.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{ExportTo, StringMatch};
use crate::mesh::model::ObjectKey;

/// The gateways a rule binds to: the sidecars of the mesh and/or named Gateways.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum GatewayRef {
    /// The reserved name `mesh`: every sidecar.
    Mesh,
    Gateway(ObjectKey),
}

#[derive(Debug, Clone, PartialEq)]
pub struct VirtualService {
    pub key: ObjectKey,
    /// Fully qualified, or wildcards (`*.example.com`, `*`), as written after resolution.
    pub hosts: Vec<String>,
    /// `[Mesh]` when the object names none.
    pub gateways: Vec<GatewayRef>,
    pub http: Vec<HttpRoute>,
    pub tls: Vec<TlsRoute>,
    pub tcp: Vec<TcpRoute>,
    pub export_to: ExportTo,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HttpRoute {
    pub name: Option<String>,
    /// OR-ed; empty matches every request.
    pub matches: Vec<HttpMatch>,
    pub action: HttpAction,
    pub rewrite: Option<Rewrite>,
    /// `None`: no timeout (Istio's default).
    pub timeout: Option<Duration>,
    /// `None`: Istio's default retry policy.
    pub retries: Option<Retries>,
    pub fault: Option<Fault>,
    pub mirrors: Vec<Mirror>,
    pub cors: Option<Cors>,
    pub headers: HeaderRules,
}

/// A header or query parameter match asking only for presence: Istio's empty match `{}`,
/// held as the regex `*`, which istiod also reads as presence (`*` is no valid RE2 regex,
/// so validation lets no user-written regex be it).
pub const PRESENT_MATCH_REGEX: &str = "*";

/// One match block: every field set must match (AND).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HttpMatch {
    pub name: Option<String>,
    pub uri: Option<StringMatch>,
    pub scheme: Option<StringMatch>,
    pub method: Option<StringMatch>,
    pub authority: Option<StringMatch>,
    pub headers: BTreeMap<String, StringMatch>,
    pub without_headers: BTreeMap<String, StringMatch>,
    pub query_params: BTreeMap<String, StringMatch>,
    pub port: Option<u16>,
    pub source_labels: BTreeMap<String, String>,
    pub source_namespace: Option<String>,
    pub gateways: Vec<GatewayRef>,
    pub ignore_uri_case: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum HttpAction {
    /// Weighted destinations; weights sum to 100 (a single destination gets 100).
    Route(Vec<WeightedDestination>),
    Redirect(Redirect),
    DirectResponse {
        status: u16,
        body: Option<String>,
    },
    /// Routes of another VirtualService take over for the matched requests.
    Delegate(ObjectKey),
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Destination {
    /// Fully qualified (short names resolved in the rule's namespace).
    pub host: String,
    pub subset: Option<String>,
    pub port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct WeightedDestination {
    pub destination: Destination,
    pub weight: u32,
    pub headers: HeaderRules,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct HeaderRules {
    pub request: HeaderOperations,
    pub response: HeaderOperations,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct HeaderOperations {
    pub set: BTreeMap<String, String>,
    pub add: BTreeMap<String, String>,
    pub remove: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Redirect {
    pub uri: Option<String>,
    pub authority: Option<String>,
    pub port: Option<RedirectPort>,
    pub scheme: Option<String>,
    /// 301 unless set.
    pub code: u16,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RedirectPort {
    Number(u16),
    FromProtocolDefault,
    FromRequestPort,
}

#[derive(Debug, Clone, PartialEq)]
pub enum UriRewrite {
    Prefix(String),
    Regex {
        pattern: String,
        substitution: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rewrite {
    pub uri: Option<UriRewrite>,
    pub authority: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Retries {
    /// 0 disables retries.
    pub attempts: u32,
    pub per_try_timeout: Option<Duration>,
    pub retry_on: Option<String>,
    pub retry_remote_localities: Option<bool>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    /// Fixed delay and percentage of requests (0 when unset, as in istiod).
    pub delay: Option<(Duration, f64)>,
    /// Error and percentage of requests (0 when unset: Istio aborts none then).
    pub abort: Option<(Abort, f64)>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Abort {
    Http(u16),
    Grpc(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Mirror {
    pub destination: Destination,
    /// Percentage of requests mirrored, 0-100 (100 unless set).
    pub percent: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Cors {
    pub allow_origins: Vec<StringMatch>,
    pub allow_methods: Vec<String>,
    pub allow_headers: Vec<String>,
    pub expose_headers: Vec<String>,
    pub max_age: Option<Duration>,
    pub allow_credentials: Option<bool>,
    pub forward_unmatched_preflights: bool,
}

/// A TLS route: SNI and L4 matches, weighted destinations.
#[derive(Debug, Clone, PartialEq)]
pub struct TlsRoute {
    pub matches: Vec<L4Match>,
    pub route: Vec<WeightedDestination>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TcpRoute {
    pub matches: Vec<L4Match>,
    pub route: Vec<WeightedDestination>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct L4Match {
    pub sni_hosts: Vec<String>,
    /// CIDRs (`10.0.0.0/8`) or IPs.
    pub destination_subnets: Vec<String>,
    pub port: Option<u16>,
    pub source_labels: BTreeMap<String, String>,
    pub source_namespace: Option<String>,
    pub gateways: Vec<GatewayRef>,
}
