//! Checked AuthorizationPolicies and RequestAuthentications as translation reads them, and
//! which workloads each applies to (istiod's selection: a policy in the root namespace
//! applies mesh-wide, one elsewhere to its namespace, narrowed by its selector).

use std::collections::BTreeMap;
use std::sync::Arc;

use super::model::{MeshModel, ObjectKey};

/// What a matching AuthorizationPolicy does. CUSTOM is rejected while building (meshd has no
/// ext_authz provider to send requests to).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AuthzAction {
    Allow,
    Deny,
    Audit,
}

impl AuthzAction {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthzAction::Allow => "ALLOW",
            AuthzAction::Deny => "DENY",
            AuthzAction::Audit => "AUDIT",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct AuthorizationPolicy {
    pub key: ObjectKey,
    /// `selector.matchLabels`; empty selects every workload in scope.
    pub selector: BTreeMap<String, String>,
    pub action: AuthzAction,
    /// `istio.io/dry-run: "true"`: the rules go into Envoy's shadow rules (logged, not
    /// enforced), as istiod does.
    pub dry_run: bool,
    pub rules: Vec<AuthzRule>,
}

/// Values of one field and of its `not` form, as written (`*` forms kept).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Values {
    pub values: Vec<String>,
    pub not_values: Vec<String>,
}

impl Values {
    pub fn is_empty(&self) -> bool {
        self.values.is_empty() && self.not_values.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct AuthzRule {
    pub from: Vec<AuthzSource>,
    pub to: Vec<AuthzOperation>,
    pub when: Vec<AuthzCondition>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct AuthzSource {
    pub principals: Values,
    pub request_principals: Values,
    pub namespaces: Values,
    pub ip_blocks: Values,
    pub remote_ip_blocks: Values,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct AuthzOperation {
    pub hosts: Values,
    /// Checked port numbers, kept as text as Istio writes them.
    pub ports: Values,
    pub methods: Values,
    pub paths: Values,
}

/// A `when` condition's key, as Istio names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConditionKey {
    /// `request.headers[name]`
    RequestHeader(String),
    SourceIp,
    RemoteIp,
    SourceNamespace,
    SourcePrincipal,
    RequestPrincipal,
    RequestAudiences,
    RequestPresenter,
    /// `request.auth.claims[a][b]`: the path into the token's payload.
    RequestClaims(Vec<String>),
    DestinationIp,
    DestinationPort,
    ConnectionSni,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AuthzCondition {
    pub key: ConditionKey,
    pub values: Values,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RequestAuthentication {
    pub key: ObjectKey,
    pub selector: BTreeMap<String, String>,
    pub jwt_rules: Vec<JwtRule>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct JwtRule {
    pub issuer: String,
    pub audiences: Vec<String>,
    /// Inline JWKS, which wins over `jwks_uri` as in istiod.
    pub jwks: Option<String>,
    pub jwks_uri: Option<String>,
    /// `(header name, value prefix)`
    pub from_headers: Vec<(String, String)>,
    pub from_params: Vec<String>,
    pub from_cookies: Vec<String>,
    pub output_payload_to_header: Option<String>,
    pub forward_original_token: bool,
    /// `(header, claim)`
    pub output_claim_to_headers: Vec<(String, String)>,
}

/// Whether a policy of `policy_ns` with `selector` applies to a workload of `namespace`
/// with `labels`: its own namespace, or any namespace from the root one.
pub fn applies(
    policy_ns: &str,
    selector: &BTreeMap<String, String>,
    namespace: &str,
    labels: &BTreeMap<String, String>,
    root_namespace: &str,
) -> bool {
    (policy_ns == namespace || policy_ns == root_namespace)
        && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// The security objects that apply to one workload, sorted by key.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WorkloadSecurity {
    pub authorization: Vec<Arc<AuthorizationPolicy>>,
    pub authentication: Vec<Arc<RequestAuthentication>>,
}

impl WorkloadSecurity {
    pub fn of(
        model: &MeshModel,
        namespace: &str,
        labels: &BTreeMap<String, String>,
        root_namespace: &str,
    ) -> WorkloadSecurity {
        let applies =
            |key: &ObjectKey, sel| applies(&key.namespace, sel, namespace, labels, root_namespace);
        WorkloadSecurity {
            authorization: model
                .authorization_policies
                .values()
                .filter(|p| applies(&p.key, &p.selector))
                .cloned()
                .collect(),
            authentication: model
                .request_authentications
                .values()
                .filter(|r| applies(&r.key, &r.selector))
                .cloned()
                .collect(),
        }
    }

    /// The objects `keys` (from `keys`) name, as the model holds them.
    pub fn from_keys(model: &MeshModel, keys: &[(&'static str, ObjectKey)]) -> WorkloadSecurity {
        let mut out = WorkloadSecurity::default();
        for (kind, key) in keys {
            if *kind == "AuthorizationPolicy" {
                out.authorization
                    .extend(model.authorization_policies.get(key).cloned());
            } else {
                out.authentication
                    .extend(model.request_authentications.get(key).cloned());
            }
        }
        out
    }

    /// Whether the security inputs of two models are the same.
    pub fn inputs_same(a: &MeshModel, b: &MeshModel) -> bool {
        a.authorization_policies == b.authorization_policies
            && a.request_authentications == b.request_authentications
            && a.fetched_jwks == b.fetched_jwks
    }

    pub fn is_empty(&self) -> bool {
        self.authorization.is_empty() && self.authentication.is_empty()
    }

    /// The kinds and keys of what applies, for scope keys.
    pub fn keys(&self) -> Vec<(&'static str, ObjectKey)> {
        self.authorization
            .iter()
            .map(|p| ("AuthorizationPolicy", p.key.clone()))
            .chain(
                self.authentication
                    .iter()
                    .map(|r| ("RequestAuthentication", r.key.clone())),
            )
            .collect()
    }
}
