//! Wire shapes of Istio's security.istio.io kinds meshd reads (v1 and v1beta1 share one
//! schema): AuthorizationPolicy and RequestAuthentication. As for the networking kinds,
//! values stay loose (strings as users write them) so that `mesh::security` can reject a
//! bad object alone, naming the field and the reason.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::null_as_default;

/// Selects workloads by labels (`selector.matchLabels`).
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LabelSelector {
    #[serde(deserialize_with = "null_as_default")]
    pub match_labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AuthorizationPolicySpec {
    pub selector: Option<LabelSelector>,
    /// `ALLOW` (the default), `DENY`, `AUDIT` or `CUSTOM`.
    pub action: Option<String>,
    pub provider: Option<ExtensionProvider>,
    /// `None` and `Some([])` differ only in how they were written; both mean no rules.
    #[serde(deserialize_with = "null_as_default")]
    pub rules: Vec<Rule>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ExtensionProvider {
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Rule {
    #[serde(deserialize_with = "null_as_default")]
    pub from: Vec<RuleFrom>,
    #[serde(deserialize_with = "null_as_default")]
    pub to: Vec<RuleTo>,
    #[serde(deserialize_with = "null_as_default")]
    pub when: Vec<Condition>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RuleFrom {
    pub source: Option<Source>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RuleTo {
    pub operation: Option<Operation>,
}

/// Who sends a request; every field a list, `not_*` its negation.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Source {
    #[serde(deserialize_with = "null_as_default")]
    pub principals: Vec<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub not_principals: Vec<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub request_principals: Vec<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub not_request_principals: Vec<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub namespaces: Vec<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub not_namespaces: Vec<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub ip_blocks: Vec<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub not_ip_blocks: Vec<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub remote_ip_blocks: Vec<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub not_remote_ip_blocks: Vec<String>,
    /// Declared only to be refused: meshd does not match them yet.
    #[serde(deserialize_with = "null_as_default")]
    pub service_accounts: Vec<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub not_service_accounts: Vec<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub trust_domains: Vec<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub not_trust_domains: Vec<String>,
}

/// What a request asks for; every field a list, `not_*` its negation.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Operation {
    #[serde(deserialize_with = "null_as_default")]
    pub hosts: Vec<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub not_hosts: Vec<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub ports: Vec<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub not_ports: Vec<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub methods: Vec<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub not_methods: Vec<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub paths: Vec<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub not_paths: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Condition {
    pub key: Option<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub values: Vec<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub not_values: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RequestAuthenticationSpec {
    pub selector: Option<LabelSelector>,
    #[serde(deserialize_with = "null_as_default")]
    pub jwt_rules: Vec<JwtRule>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct JwtRule {
    pub issuer: Option<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub audiences: Vec<String>,
    pub jwks_uri: Option<String>,
    /// A JWKS document inline (JSON text).
    pub jwks: Option<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub from_headers: Vec<JwtHeader>,
    #[serde(deserialize_with = "null_as_default")]
    pub from_params: Vec<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub from_cookies: Vec<String>,
    pub output_payload_to_header: Option<String>,
    pub forward_original_token: Option<bool>,
    #[serde(deserialize_with = "null_as_default")]
    pub output_claim_to_headers: Vec<ClaimToHeader>,
    /// How long Envoy may wait for the JWKS (`5s`); unused, meshd inlines keys.
    pub timeout: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct JwtHeader {
    pub name: Option<String>,
    pub prefix: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ClaimToHeader {
    pub header: Option<String>,
    pub claim: Option<String>,
}
