//! `envoy.filters.http.jwt_authn` from the RequestAuthentications of a workload, as istiod
//! builds it: one provider per JWT rule (`origins-<i>`, rules sorted by issuer), payload in
//! dynamic metadata under `payload` for RBAC, and a requirement that lets a request without
//! a token through (`allow_missing`) but refuses an invalid one (401). Keys are always
//! inline: a `jwksUri` is fetched by meshd (`model.fetched_jwks`); until it is, the provider
//! gets a key nobody holds, so tokens fail closed as with istiod.

use std::collections::HashMap;

use envoy_types::pb::envoy::config::core::v3::{data_source, DataSource};
use envoy_types::pb::envoy::config::route::v3::{route_match, RouteMatch};
use envoy_types::pb::envoy::extensions::filters::http::jwt_authn::v3::{
    jwt_provider::{JwksSourceSpecifier, NormalizePayload},
    jwt_requirement::RequiresType,
    requirement_rule::RequirementType,
    JwtAuthentication, JwtClaimToHeader, JwtHeader, JwtProvider, JwtRequirement,
    JwtRequirementAndList, JwtRequirementOrList, RequirementRule,
};
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    http_filter, HttpFilter,
};

use super::matchers::{JWT_FILTER, JWT_PAYLOAD_KEY};
use crate::mesh::security::{JwtRule, RequestAuthentication};
use crate::mesh::MeshModel;

/// A P-256 public key whose private half was thrown away: what a provider verifies against
/// while its `jwksUri` has not been fetched, so that every token fails.
pub const UNUSABLE_JWKS: &str = r#"{"keys":[{"kty":"EC","crv":"P-256","alg":"ES256","kid":"meshd-jwks-not-fetched","x":"H0HZjhIMu34rXqJMpDwlJ4m3N-Tg6KwwYqLI0X4dyt4","y":"xbOxWHWUEuxm6QXQvdH5K89xv0UKlEF-lsv2Y_xaxTY"}]}"#;

fn jwks_of(model: &MeshModel, rule: &JwtRule) -> String {
    if let Some(inline) = &rule.jwks {
        return inline.clone();
    }
    rule.jwks_uri
        .as_ref()
        .and_then(|uri| model.fetched_jwks.get(uri))
        .map(|j| j.to_string())
        .unwrap_or_else(|| UNUSABLE_JWKS.to_string())
}

fn provider(model: &MeshModel, rule: &JwtRule) -> JwtProvider {
    JwtProvider {
        issuer: rule.issuer.clone(),
        audiences: rule.audiences.clone(),
        forward: rule.forward_original_token,
        forward_payload_header: rule.output_payload_to_header.clone().unwrap_or_default(),
        payload_in_metadata: JWT_PAYLOAD_KEY.to_string(),
        normalize_payload_in_metadata: Some(NormalizePayload {
            space_delimited_claims: vec!["permission".into(), "scope".into()],
        }),
        claim_to_headers: rule
            .output_claim_to_headers
            .iter()
            .map(|(header, claim)| JwtClaimToHeader {
                header_name: header.clone(),
                claim_name: claim.clone(),
                ..Default::default()
            })
            .collect(),
        from_headers: rule
            .from_headers
            .iter()
            .map(|(name, prefix)| JwtHeader {
                name: name.clone(),
                value_prefix: prefix.clone(),
            })
            .collect(),
        from_params: rule.from_params.clone(),
        from_cookies: rule.from_cookies.clone(),
        jwks_source_specifier: Some(JwksSourceSpecifier::LocalJwks(DataSource {
            specifier: Some(data_source::Specifier::InlineString(jwks_of(model, rule))),
            ..Default::default()
        })),
        ..Default::default()
    }
}

fn requires(t: RequiresType) -> JwtRequirement {
    JwtRequirement {
        requires_type: Some(t),
    }
}

/// The filter config for these RequestAuthentications; `None` when they have no rules.
pub fn jwt_authn(
    model: &MeshModel,
    authns: &[&RequestAuthentication],
) -> Option<JwtAuthentication> {
    let mut rules: Vec<&JwtRule> = authns.iter().flat_map(|a| &a.jwt_rules).collect();
    if rules.is_empty() {
        return None;
    }
    rules.sort_by(|a, b| a.issuer.cmp(&b.issuer));
    let mut providers = HashMap::new();
    let mut inner_and = Vec::new();
    let mut outer_or = Vec::new();
    for (i, rule) in rules.iter().enumerate() {
        let name = format!("origins-{i}");
        providers.insert(name.clone(), provider(model, rule));
        inner_and.push(requires(RequiresType::RequiresAny(JwtRequirementOrList {
            requirements: vec![
                requires(RequiresType::ProviderName(name.clone())),
                requires(RequiresType::AllowMissing(Default::default())),
            ],
        })));
        outer_or.push(requires(RequiresType::ProviderName(name)));
    }
    let requirement = if inner_and.len() == 1 {
        inner_and.remove(0)
    } else {
        outer_or.push(requires(RequiresType::RequiresAll(JwtRequirementAndList {
            requirements: inner_and,
        })));
        requires(RequiresType::RequiresAny(JwtRequirementOrList {
            requirements: outer_or,
        }))
    };
    Some(JwtAuthentication {
        providers,
        rules: vec![RequirementRule {
            r#match: Some(RouteMatch {
                path_specifier: Some(route_match::PathSpecifier::Prefix("/".into())),
                ..Default::default()
            }),
            requirement_type: Some(RequirementType::Requires(requirement)),
        }],
        bypass_cors_preflight: true,
        ..Default::default()
    })
}

pub fn jwt_authn_filter(config: &JwtAuthentication) -> HttpFilter {
    HttpFilter {
        name: JWT_FILTER.to_string(),
        config_type: Some(http_filter::ConfigType::TypedConfig(
            crate::translate::filter::any(config),
        )),
        ..Default::default()
    }
}
