//! Sidecar and Gateway as the model holds them.

use std::collections::BTreeMap;

use super::service_entry::IstioPort;
use crate::mesh::model::ObjectKey;

/// A host a Sidecar egress listener or a Gateway server may reach or expose:
/// `namespace/dnsName` with Istio's namespace forms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopedHost {
    pub namespace: NamespaceScope,
    /// A host name, a wildcard (`*.example.com`) or `*`.
    pub host: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamespaceScope {
    /// `*`: any namespace.
    Any,
    /// A namespace by name; a Gateway's `.` is replaced by the Gateway's namespace here.
    Named(String),
    /// A Sidecar's `.`: the namespace of the proxy it applies to. That is the Sidecar's own
    /// namespace, except for the root namespace's default Sidecar, which applies to proxies
    /// of every namespace without one (as istiod reads it).
    ProxyNamespace,
    /// `~`: no namespace (only meaningful with Sidecar: nothing from the registry).
    None,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutboundPolicy {
    AllowAny,
    RegistryOnly,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Sidecar {
    pub key: ObjectKey,
    /// `None`: the namespace-wide Sidecar (or the mesh-wide one in the root namespace).
    pub workload_selector: Option<BTreeMap<String, String>>,
    pub ingress: Vec<SidecarIngress>,
    pub egress: Vec<SidecarEgress>,
    pub outbound_traffic_policy: Option<OutboundPolicy>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SidecarIngress {
    pub port: IstioPort,
    pub bind: Option<String>,
    pub default_endpoint: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SidecarEgress {
    pub port: Option<IstioPort>,
    pub bind: Option<String>,
    pub hosts: Vec<ScopedHost>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Gateway {
    pub key: ObjectKey,
    pub selector: BTreeMap<String, String>,
    pub servers: Vec<GatewayServer>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GatewayServer {
    pub port: IstioPort,
    pub bind: Option<String>,
    pub hosts: Vec<ScopedHost>,
    pub tls: Option<ServerTls>,
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerTlsMode {
    Passthrough,
    Simple,
    Mutual,
    AutoPassthrough,
    IstioMutual,
    OptionalMutual,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ServerTls {
    pub https_redirect: bool,
    /// `None` with only `httpsRedirect` set (an HTTP server that redirects).
    pub mode: Option<ServerTlsMode>,
    pub credential_name: Option<String>,
    pub server_certificate: Option<String>,
    pub private_key: Option<String>,
    pub ca_certificates: Option<String>,
    pub subject_alt_names: Vec<String>,
    pub min_protocol_version: Option<String>,
    pub max_protocol_version: Option<String>,
    pub cipher_suites: Vec<String>,
}
