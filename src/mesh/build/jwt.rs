//! Checks of RequestAuthentication: each JWT rule needs an issuer, keys inline (a JWKS
//! document) or an `http(s)` `jwksUri`, and named token locations; issuers are unique within
//! one object, as Istio's validation demands.

use std::collections::BTreeSet;

use super::istio_fields::{each, Checked};
use super::{invalid, names, Invalid};
use crate::mesh::security::{JwtRule, RequestAuthentication};
use crate::source::objects::networking::IstioObject;
use crate::source::objects::security as wire;

pub fn check(
    ra: &IstioObject<wire::RequestAuthenticationSpec>,
) -> Result<RequestAuthentication, Invalid> {
    let key = names::object_key(&ra.metadata, false)?;
    let jwt_rules = each(&ra.spec.jwt_rules, "spec.jwtRules", rule)?;
    let mut issuers = BTreeSet::new();
    for (i, r) in jwt_rules.iter().enumerate() {
        if !issuers.insert(&r.issuer) {
            return Err(invalid(
                format!("spec.jwtRules[{i}].issuer"),
                format!("issuer {:?} appears in more than one rule", r.issuer),
            ));
        }
    }
    Ok(RequestAuthentication {
        key,
        selector: ra
            .spec
            .selector
            .as_ref()
            .map(|s| s.match_labels.clone())
            .unwrap_or_default(),
        jwt_rules,
    })
}

fn rule(r: &wire::JwtRule, field: &str) -> Checked<JwtRule> {
    let issuer = match r.issuer.as_deref() {
        Some(i) if !i.is_empty() => i.to_string(),
        _ => return Err(invalid(format!("{field}.issuer"), "issuer is required")),
    };
    let jwks = r.jwks.clone().filter(|j| !j.is_empty());
    if let Some(j) = &jwks {
        check_jwks(j).map_err(|reason| invalid(format!("{field}.jwks"), reason))?;
    }
    let jwks_uri = r.jwks_uri.clone().filter(|u| !u.is_empty());
    if let Some(u) = &jwks_uri {
        let parsed: axum::http::Uri = u
            .parse()
            .map_err(|e| invalid(format!("{field}.jwksUri"), format!("{u:?}: {e}")))?;
        if !matches!(parsed.scheme_str(), Some("http" | "https")) || parsed.host().is_none() {
            return Err(invalid(
                format!("{field}.jwksUri"),
                format!("{u:?} is not an http or https URL with a host"),
            ));
        }
    }
    let from_headers = each(
        &r.from_headers,
        &format!("{field}.fromHeaders"),
        |h, f| match h.name.as_deref() {
            Some(n) if !n.is_empty() => Ok((n.to_string(), h.prefix.clone().unwrap_or_default())),
            _ => Err(invalid(format!("{f}.name"), "name is required")),
        },
    )?;
    for (list, name) in [
        (&r.from_params, "fromParams"),
        (&r.from_cookies, "fromCookies"),
    ] {
        if let Some(i) = list.iter().position(String::is_empty) {
            return Err(invalid(format!("{field}.{name}[{i}]"), "empty name"));
        }
    }
    let output_claim_to_headers = each(
        &r.output_claim_to_headers,
        &format!("{field}.outputClaimToHeaders"),
        |c, f| match (c.header.as_deref(), c.claim.as_deref()) {
            (Some(h), Some(cl)) if !h.is_empty() && !cl.is_empty() => {
                Ok((h.to_string(), cl.to_string()))
            }
            _ => Err(invalid(f, "header and claim are both required")),
        },
    )?;
    Ok(JwtRule {
        issuer,
        audiences: r.audiences.clone(),
        jwks,
        jwks_uri,
        from_headers,
        from_params: r.from_params.clone(),
        from_cookies: r.from_cookies.clone(),
        output_payload_to_header: r.output_payload_to_header.clone().filter(|h| !h.is_empty()),
        forward_original_token: r.forward_original_token.unwrap_or(false),
        output_claim_to_headers,
    })
}

/// A JWKS document: a JSON object with a `keys` array. Envoy checks the keys themselves.
pub fn check_jwks(text: &str) -> Result<(), String> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    match v.get("keys") {
        Some(serde_json::Value::Array(keys)) if !keys.is_empty() => Ok(()),
        _ => Err("a JWKS needs a non-empty \"keys\" array".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(spec: &str) -> (String, String) {
        let yaml = format!("metadata: {{name: r, namespace: ns}}\nspec: {spec}\n");
        let ra: IstioObject<wire::RequestAuthenticationSpec> =
            crate::yaml::from_str_with_path(&yaml).unwrap();
        let e = check(&ra).unwrap_err();
        (e.field, e.reason)
    }

    #[test]
    fn accepts_a_full_rule() {
        let yaml = r#"metadata: {name: r, namespace: ns}
spec:
  selector: {matchLabels: {app: web}}
  jwtRules:
  - issuer: https://issuer.example
    audiences: [web]
    jwksUri: https://issuer.example/keys
    fromHeaders: [{name: x-jwt, prefix: "Bearer "}]
    fromParams: [token]
    forwardOriginalToken: true
    outputPayloadToHeader: x-payload
"#;
        let ra: IstioObject<wire::RequestAuthenticationSpec> =
            crate::yaml::from_str_with_path(yaml).unwrap();
        let r = check(&ra).unwrap();
        let rule = &r.jwt_rules[0];
        assert_eq!(
            rule.from_headers,
            [("x-jwt".to_string(), "Bearer ".to_string())]
        );
        assert!(rule.forward_original_token);
        assert_eq!(rule.output_payload_to_header.as_deref(), Some("x-payload"));
        assert_eq!(r.selector["app"], "web");
    }

    #[test]
    fn refusals_name_the_field() {
        let cases = [
            ("{jwtRules: [{}]}", "spec.jwtRules[0].issuer", "required"),
            (
                "{jwtRules: [{issuer: a, jwks: '{}'}]}",
                "spec.jwtRules[0].jwks",
                "keys",
            ),
            (
                "{jwtRules: [{issuer: a, jwks: 'x'}]}",
                "spec.jwtRules[0].jwks",
                "not JSON",
            ),
            (
                "{jwtRules: [{issuer: a, jwksUri: 'ftp://x/k'}]}",
                "spec.jwtRules[0].jwksUri",
                "http",
            ),
            (
                "{jwtRules: [{issuer: a, fromHeaders: [{prefix: x}]}]}",
                "spec.jwtRules[0].fromHeaders[0].name",
                "required",
            ),
            (
                "{jwtRules: [{issuer: a}, {issuer: a}]}",
                "spec.jwtRules[1].issuer",
                "more than one",
            ),
        ];
        for (spec, field, reason) in cases {
            let (f, r) = err(spec);
            assert_eq!(f, field, "{spec}");
            assert!(r.contains(reason), "{spec}: {r}");
        }
    }
}
