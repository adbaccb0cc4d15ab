//! Envoy matchers for Istio's authorization values: the `*` forms of strings (exact,
//! `prefix*`, `*suffix`, `*` for any non-empty), header, path (and path template) and CIDR
//! matchers, and the metadata matchers reading the JWT payload `jwt_authn` leaves in dynamic
//! metadata.

use envoy_types::pb::envoy::config::core::v3::{CidrRange, TypedExtensionConfig};
use envoy_types::pb::envoy::config::rbac::v3::{permission, principal, Permission, Principal};
use envoy_types::pb::envoy::config::route::v3::{header_matcher, HeaderMatcher};
use envoy_types::pb::envoy::extensions::path::r#match::uri_template::v3::UriTemplateMatchConfig;
use envoy_types::pb::envoy::r#type::matcher::v3::{
    list_matcher,
    metadata_matcher::{path_segment, PathSegment},
    path_matcher, string_matcher, value_matcher, ListMatcher, MetadataMatcher, OrMatcher,
    PathMatcher, RegexMatcher, StringMatcher, ValueMatcher,
};
use envoy_types::pb::google::protobuf::UInt32Value;

/// The filter whose dynamic metadata holds verified JWT payloads, and the key under it.
pub const JWT_FILTER: &str = "envoy.filters.http.jwt_authn";
pub const JWT_PAYLOAD_KEY: &str = "payload";

pub fn exact(v: &str, ignore_case: bool) -> StringMatcher {
    pattern(
        string_matcher::MatchPattern::Exact(v.to_string()),
        ignore_case,
    )
}

pub fn prefix(v: &str, ignore_case: bool) -> StringMatcher {
    pattern(
        string_matcher::MatchPattern::Prefix(v.to_string()),
        ignore_case,
    )
}

pub fn suffix(v: &str, ignore_case: bool) -> StringMatcher {
    pattern(
        string_matcher::MatchPattern::Suffix(v.to_string()),
        ignore_case,
    )
}

pub fn regex(r: &str) -> StringMatcher {
    pattern(
        string_matcher::MatchPattern::SafeRegex(RegexMatcher {
            regex: r.to_string(),
            ..Default::default()
        }),
        false,
    )
}

fn pattern(p: string_matcher::MatchPattern, ignore_case: bool) -> StringMatcher {
    StringMatcher {
        match_pattern: Some(p),
        ignore_case,
    }
}

/// Istio's string forms, `prefix` put before the value's own text (`spiffe://` for
/// principals): `*` any non-empty, `*x` ends with x, `x*` starts with x, else exact.
pub fn with_prefix(v: &str, before: &str) -> StringMatcher {
    if v == "*" {
        regex(".+")
    } else if let Some(rest) = v.strip_prefix('*') {
        if before.is_empty() {
            suffix(rest, false)
        } else {
            regex(&format!("{}.*{}", regex_quote(before), regex_quote(rest)))
        }
    } else if let Some(rest) = v.strip_suffix('*') {
        prefix(&format!("{before}{rest}"), false)
    } else {
        exact(&format!("{before}{v}"), false)
    }
}

pub fn string(v: &str) -> StringMatcher {
    with_prefix(v, "")
}

/// RE2 quoting of a literal.
pub fn regex_quote(s: &str) -> String {
    regex_syntax::escape(s)
}

/// A header matcher with Istio's forms (`*` means present); hosts compare ignoring case.
pub fn header(name: &str, v: &str, ignore_case: bool) -> HeaderMatcher {
    let specifier = if v == "*" {
        header_matcher::HeaderMatchSpecifier::PresentMatch(true)
    } else if let Some(rest) = v.strip_prefix('*') {
        header_matcher::HeaderMatchSpecifier::StringMatch(suffix(rest, ignore_case))
    } else if let Some(rest) = v.strip_suffix('*') {
        header_matcher::HeaderMatchSpecifier::StringMatch(prefix(rest, ignore_case))
    } else {
        header_matcher::HeaderMatchSpecifier::StringMatch(exact(v, ignore_case))
    };
    HeaderMatcher {
        name: name.to_string(),
        header_match_specifier: Some(specifier),
        ..Default::default()
    }
}

pub fn path(v: &str) -> PathMatcher {
    PathMatcher {
        rule: Some(path_matcher::Rule::Path(string(v))),
    }
}

/// istiod's name of the extension config of a path template.
pub const URI_TEMPLATE_NAME: &str = "uri-template";

/// The permission of one `paths` value: Istio's `{*}` / `{**}` templates through Envoy's
/// `envoy.path.match.uri_template`, anything else a path matcher.
pub fn path_permission(v: &str) -> Permission {
    use crate::mesh::build::path_template;
    if !path_template::is_template(v) {
        return permission(permission::Rule::UrlPath(path(v)));
    }
    let config = UriTemplateMatchConfig {
        path_template: path_template::to_envoy(v),
    };
    permission(permission::Rule::UriTemplate(TypedExtensionConfig {
        name: URI_TEMPLATE_NAME.to_string(),
        typed_config: Some(crate::translate::filter::any(&config)),
    }))
}

/// `10.0.0.1` (a host) or `10.0.0.0/8`; the builder has checked the text.
pub fn cidr(v: &str) -> CidrRange {
    let (ip, len) = v.split_once('/').unwrap_or((v, ""));
    let ip: std::net::IpAddr = ip.parse().unwrap_or(std::net::IpAddr::from([0, 0, 0, 0]));
    let max = if ip.is_ipv4() { 32 } else { 128 };
    CidrRange {
        address_prefix: ip.to_string(),
        prefix_len: Some(UInt32Value {
            value: len.parse().unwrap_or(max),
        }),
    }
}

fn string_value(m: StringMatcher) -> ValueMatcher {
    ValueMatcher {
        match_pattern: Some(value_matcher::MatchPattern::StringMatch(m)),
    }
}

fn or_values(mut matchers: Vec<ValueMatcher>) -> ValueMatcher {
    if matchers.len() == 1 {
        return matchers.remove(0);
    }
    ValueMatcher {
        match_pattern: Some(value_matcher::MatchPattern::OrMatch(OrMatcher {
            value_matchers: matchers,
        })),
    }
}

fn jwt_path(claims: &[String]) -> Vec<PathSegment> {
    std::iter::once(JWT_PAYLOAD_KEY.to_string())
        .chain(claims.iter().cloned())
        .map(|k| PathSegment {
            segment: Some(path_segment::Segment::Key(k)),
        })
        .collect()
}

/// One claim of the verified payload as a string (`iss`, `sub`).
pub fn jwt_claim(claim: &str, m: StringMatcher) -> MetadataMatcher {
    MetadataMatcher {
        filter: JWT_FILTER.to_string(),
        path: jwt_path(&[claim.to_string()]),
        value: Some(string_value(m)),
        invert: false,
    }
}

/// A claim (path into the payload) holding one of `values`, or a list holding one of them,
/// as istiod matches `request.auth.claims[...]`, audiences and presenters.
pub fn jwt_claims_any(claims: &[String], values: &[String]) -> MetadataMatcher {
    let value = or_values(values.iter().map(|v| string_value(string(v))).collect());
    let list = ValueMatcher {
        match_pattern: Some(value_matcher::MatchPattern::ListMatch(Box::new(
            ListMatcher {
                match_pattern: Some(list_matcher::MatchPattern::OneOf(Box::new(value.clone()))),
            },
        ))),
    };
    MetadataMatcher {
        filter: JWT_FILTER.to_string(),
        path: jwt_path(claims),
        value: Some(ValueMatcher {
            match_pattern: Some(value_matcher::MatchPattern::OrMatch(OrMatcher {
                value_matchers: vec![list, value],
            })),
        }),
        invert: false,
    }
}

pub fn permission(rule: permission::Rule) -> Permission {
    Permission { rule: Some(rule) }
}

pub fn principal(id: principal::Identifier) -> Principal {
    Principal {
        identifier: Some(id),
    }
}

pub fn permission_and(rules: Vec<Permission>) -> Permission {
    permission(permission::Rule::AndRules(permission::Set { rules }))
}

pub fn permission_or(rules: Vec<Permission>) -> Permission {
    permission(permission::Rule::OrRules(permission::Set { rules }))
}

pub fn permission_not(p: Permission) -> Permission {
    permission(permission::Rule::NotRule(Box::new(p)))
}

pub fn principal_and(ids: Vec<Principal>) -> Principal {
    principal(principal::Identifier::AndIds(principal::Set { ids }))
}

pub fn principal_or(ids: Vec<Principal>) -> Principal {
    principal(principal::Identifier::OrIds(principal::Set { ids }))
}

pub fn principal_not(p: Principal) -> Principal {
    principal(principal::Identifier::NotId(Box::new(p)))
}

/// The peer certificate's URI SAN (or subject) matching `m`.
pub fn authenticated(m: StringMatcher) -> Principal {
    principal(principal::Identifier::Authenticated(
        principal::Authenticated {
            principal_name: Some(m),
        },
    ))
}

#[allow(deprecated)] // istiod's form; `sourced_metadata` is not in every Envoy it serves.
pub fn principal_metadata(m: MetadataMatcher) -> Principal {
    principal(principal::Identifier::Metadata(m))
}
