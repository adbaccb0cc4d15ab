//! Gateway: the listeners of a gateway proxy (ports, hosts, TLS), selected by labels.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{null_as_default, Port};

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GatewaySpec {
    #[serde(deserialize_with = "null_as_default")]
    pub servers: Vec<Server>,
    /// Labels of the gateway proxies this Gateway configures.
    #[serde(deserialize_with = "null_as_default")]
    pub selector: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Server {
    pub port: Option<Port>,
    pub bind: Option<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub hosts: Vec<String>,
    pub tls: Option<ServerTlsSettings>,
    pub name: Option<String>,
    pub default_endpoint: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ServerTlsSettings {
    pub https_redirect: Option<bool>,
    /// `PASSTHROUGH`, `SIMPLE`, `MUTUAL`, `AUTO_PASSTHROUGH`, `ISTIO_MUTUAL`,
    /// `OPTIONAL_MUTUAL`.
    pub mode: Option<String>,
    pub server_certificate: Option<String>,
    pub private_key: Option<String>,
    pub ca_certificates: Option<String>,
    pub credential_name: Option<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub subject_alt_names: Vec<String>,
    pub min_protocol_version: Option<String>,
    pub max_protocol_version: Option<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub cipher_suites: Vec<String>,
}
