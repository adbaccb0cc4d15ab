//! VirtualService: routing rules for hosts, HTTP, TLS and TCP.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{null_as_default, Percent, PortSelector, StringMatch};

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct VirtualServiceSpec {
    #[serde(deserialize_with = "null_as_default")]
    pub hosts: Vec<String>,
    /// Gateways (`ns/name` or a name in the VirtualService's namespace) and/or `mesh`;
    /// empty means `mesh`.
    #[serde(deserialize_with = "null_as_default")]
    pub gateways: Vec<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub http: Vec<HttpRoute>,
    #[serde(deserialize_with = "null_as_default")]
    pub tls: Vec<TlsRoute>,
    #[serde(deserialize_with = "null_as_default")]
    pub tcp: Vec<TcpRoute>,
    #[serde(deserialize_with = "null_as_default")]
    pub export_to: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpRoute {
    pub name: Option<String>,
    #[serde(rename = "match", deserialize_with = "null_as_default")]
    pub matches: Vec<HttpMatchRequest>,
    #[serde(deserialize_with = "null_as_default")]
    pub route: Vec<HttpRouteDestination>,
    pub redirect: Option<HttpRedirect>,
    pub direct_response: Option<HttpDirectResponse>,
    pub delegate: Option<Delegate>,
    pub rewrite: Option<HttpRewrite>,
    pub timeout: Option<String>,
    pub retries: Option<HttpRetry>,
    pub fault: Option<HttpFaultInjection>,
    pub mirror: Option<Destination>,
    pub mirror_percentage: Option<Percent>,
    #[serde(deserialize_with = "null_as_default")]
    pub mirrors: Vec<HttpMirrorPolicy>,
    pub cors_policy: Option<CorsPolicy>,
    pub headers: Option<Headers>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpMatchRequest {
    pub name: Option<String>,
    pub uri: Option<StringMatch>,
    pub scheme: Option<StringMatch>,
    pub method: Option<StringMatch>,
    pub authority: Option<StringMatch>,
    #[serde(deserialize_with = "null_as_default")]
    pub headers: BTreeMap<String, StringMatch>,
    #[serde(deserialize_with = "null_as_default")]
    pub without_headers: BTreeMap<String, StringMatch>,
    #[serde(deserialize_with = "null_as_default")]
    pub query_params: BTreeMap<String, StringMatch>,
    pub port: Option<i64>,
    #[serde(deserialize_with = "null_as_default")]
    pub source_labels: BTreeMap<String, String>,
    pub source_namespace: Option<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub gateways: Vec<String>,
    pub ignore_uri_case: Option<bool>,
}

/// Where traffic goes: a host (short names resolve in the rule's namespace), a subset of
/// a DestinationRule, and a port when the host has several.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Destination {
    pub host: Option<String>,
    pub subset: Option<String>,
    pub port: Option<PortSelector>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpRouteDestination {
    pub destination: Option<Destination>,
    pub weight: Option<i64>,
    pub headers: Option<Headers>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Headers {
    pub request: Option<HeaderOperations>,
    pub response: Option<HeaderOperations>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HeaderOperations {
    #[serde(deserialize_with = "null_as_default")]
    pub set: BTreeMap<String, String>,
    #[serde(deserialize_with = "null_as_default")]
    pub add: BTreeMap<String, String>,
    #[serde(deserialize_with = "null_as_default")]
    pub remove: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpRedirect {
    pub uri: Option<String>,
    pub authority: Option<String>,
    pub port: Option<i64>,
    /// `FROM_PROTOCOL_DEFAULT` or `FROM_REQUEST_PORT`.
    pub derive_port: Option<String>,
    pub scheme: Option<String>,
    pub redirect_code: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpDirectResponse {
    pub status: Option<i64>,
    pub body: Option<HttpBody>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpBody {
    pub string: Option<String>,
    /// Base64, as protobuf JSON writes bytes.
    pub bytes: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Delegate {
    pub name: Option<String>,
    pub namespace: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpRewrite {
    pub uri: Option<String>,
    pub authority: Option<String>,
    pub uri_regex_rewrite: Option<RegexRewrite>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RegexRewrite {
    #[serde(rename = "match")]
    pub pattern: Option<String>,
    pub rewrite: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpRetry {
    pub attempts: Option<i64>,
    pub per_try_timeout: Option<String>,
    pub retry_on: Option<String>,
    pub retry_remote_localities: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpFaultInjection {
    pub delay: Option<FaultDelay>,
    pub abort: Option<FaultAbort>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct FaultDelay {
    pub fixed_delay: Option<String>,
    pub percentage: Option<Percent>,
    /// Deprecated integer percentage, still accepted by Istio.
    pub percent: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct FaultAbort {
    pub http_status: Option<i64>,
    pub grpc_status: Option<String>,
    pub percentage: Option<Percent>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpMirrorPolicy {
    pub destination: Option<Destination>,
    pub percentage: Option<Percent>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CorsPolicy {
    #[serde(deserialize_with = "null_as_default")]
    pub allow_origins: Vec<StringMatch>,
    #[serde(deserialize_with = "null_as_default")]
    pub allow_methods: Vec<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub allow_headers: Vec<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub expose_headers: Vec<String>,
    pub max_age: Option<String>,
    pub allow_credentials: Option<bool>,
    /// `FORWARD` (default) or `IGNORE`.
    pub unmatched_preflights: Option<String>,
}

/// Matches of TLS routes: SNI, destination subnets, port, source.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TlsMatchAttributes {
    #[serde(deserialize_with = "null_as_default")]
    pub sni_hosts: Vec<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub destination_subnets: Vec<String>,
    pub port: Option<i64>,
    #[serde(deserialize_with = "null_as_default")]
    pub source_labels: BTreeMap<String, String>,
    pub source_namespace: Option<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub gateways: Vec<String>,
}

/// Matches of TCP routes.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct L4MatchAttributes {
    #[serde(deserialize_with = "null_as_default")]
    pub destination_subnets: Vec<String>,
    pub port: Option<i64>,
    #[serde(deserialize_with = "null_as_default")]
    pub source_labels: BTreeMap<String, String>,
    pub source_namespace: Option<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub gateways: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RouteDestination {
    pub destination: Option<Destination>,
    pub weight: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TlsRoute {
    #[serde(rename = "match", deserialize_with = "null_as_default")]
    pub matches: Vec<TlsMatchAttributes>,
    #[serde(deserialize_with = "null_as_default")]
    pub route: Vec<RouteDestination>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TcpRoute {
    #[serde(rename = "match", deserialize_with = "null_as_default")]
    pub matches: Vec<L4MatchAttributes>,
    #[serde(deserialize_with = "null_as_default")]
    pub route: Vec<RouteDestination>,
}
