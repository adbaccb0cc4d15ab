//! Match blocks as Envoy route matches, and the checks that leave a block out for a proxy
//! (its `sourceLabels`, `sourceNamespace` and `gateways`).

use envoy_types::pb::envoy::config::route::v3::{
    header_matcher::HeaderMatchSpecifier, query_parameter_matcher::QueryParameterMatchSpecifier,
    route_match::PathSpecifier, HeaderMatcher, QueryParameterMatcher, Route, RouteMatch,
};
use envoy_types::pb::envoy::r#type::matcher::v3::{
    string_matcher::MatchPattern, RegexMatcher, StringMatcher,
};
use envoy_types::pb::google::protobuf::BoolValue;

use super::RouteContext;
use crate::mesh::traffic::{HttpMatch, StringMatch, PRESENT_MATCH_REGEX};

/// Pseudo-headers Envoy matches like headers.
const METHOD: &str = ":method";
const AUTHORITY: &str = ":authority";
const SCHEME: &str = ":scheme";

/// Whether a match block applies to the proxy: when it names gateways, the proxy must be
/// one of them (`mesh` for sidecars) and source fields are not looked at; otherwise its
/// source labels must be a subset of the proxy's and its source namespace (if any) the
/// proxy's.
pub(super) fn source_matches(ctx: &RouteContext, m: &HttpMatch) -> bool {
    if !m.gateways.is_empty() {
        return m.gateways.contains(ctx.gateway);
    }
    m.source_labels
        .iter()
        .all(|(k, v)| ctx.proxy_labels.get(k) == Some(v))
        && m.source_namespace
            .as_deref()
            .is_none_or(|ns| ns.is_empty() || ns == ctx.proxy_namespace)
}

pub(super) fn string_matcher(m: &StringMatch) -> StringMatcher {
    StringMatcher {
        match_pattern: Some(match m {
            StringMatch::Exact(s) => MatchPattern::Exact(s.clone()),
            StringMatch::Prefix(s) => MatchPattern::Prefix(s.clone()),
            StringMatch::Regex(r) => MatchPattern::SafeRegex(regex(r)),
        }),
        ..Default::default()
    }
}

pub(super) fn regex(r: &str) -> RegexMatcher {
    RegexMatcher {
        regex: r.to_string(),
        ..Default::default()
    }
}

/// A presence match (Istio's empty match `{}`, see `PRESENT_MATCH_REGEX`).
fn is_present_match(m: &StringMatch) -> bool {
    matches!(m, StringMatch::Regex(r) if r == PRESENT_MATCH_REGEX)
}

fn header_matcher(name: &str, m: &StringMatch) -> HeaderMatcher {
    HeaderMatcher {
        name: name.to_string(),
        header_match_specifier: Some(if is_present_match(m) {
            HeaderMatchSpecifier::PresentMatch(true)
        } else {
            HeaderMatchSpecifier::StringMatch(string_matcher(m))
        }),
        ..Default::default()
    }
}

/// The Envoy match of one block; every request (prefix `/`) for none.
pub(super) fn route_match(m: Option<&HttpMatch>) -> RouteMatch {
    let mut out = RouteMatch {
        path_specifier: Some(PathSpecifier::Prefix("/".to_string())),
        ..Default::default()
    };
    let Some(m) = m else {
        return out;
    };
    let mut headers: Vec<HeaderMatcher> = m
        .headers
        .iter()
        .map(|(name, v)| header_matcher(name, v))
        .collect();
    for (name, v) in &m.without_headers {
        let mut h = header_matcher(name, v);
        h.invert_match = true;
        // A missing header counts as the empty value, so it passes "not equal to X";
        // Envoy forbids this together with a presence match.
        h.treat_missing_header_as_empty = !is_present_match(v);
        headers.push(h);
    }
    // Stable order whatever the input (istiod sorts them by name too).
    headers.sort_by(|a, b| a.name.cmp(&b.name));
    if let Some(uri) = &m.uri {
        out.path_specifier = Some(match uri {
            StringMatch::Exact(p) => PathSpecifier::Path(p.clone()),
            StringMatch::Prefix(p) => PathSpecifier::Prefix(p.clone()),
            StringMatch::Regex(r) => PathSpecifier::SafeRegex(regex(r)),
        });
    }
    out.case_sensitive = Some(BoolValue {
        value: !m.ignore_uri_case,
    });
    for (name, v) in [
        (METHOD, &m.method),
        (AUTHORITY, &m.authority),
        (SCHEME, &m.scheme),
    ] {
        if let Some(v) = v {
            headers.push(header_matcher(name, v));
        }
    }
    out.headers = headers;
    out.query_parameters = m
        .query_params
        .iter()
        .map(|(name, v)| QueryParameterMatcher {
            name: name.clone(),
            query_parameter_match_specifier: Some(if is_present_match(v) {
                QueryParameterMatchSpecifier::PresentMatch(true)
            } else {
                QueryParameterMatchSpecifier::StringMatch(string_matcher(v))
            }),
        })
        .collect();
    out
}

/// Whether a route takes every request (prefix `/` or regex `.*`, nothing else to match),
/// so that no route after it is ever reached.
pub fn is_catch_all(route: &Route) -> bool {
    let Some(m) = &route.r#match else {
        return false;
    };
    let any_path = match &m.path_specifier {
        Some(PathSpecifier::Prefix(p)) => p == "/",
        Some(PathSpecifier::PathSeparatedPrefix(p)) => p == "/",
        Some(PathSpecifier::SafeRegex(r)) => r.regex == ".*",
        _ => false,
    };
    any_path
        && m.headers.is_empty()
        && m.query_parameters.is_empty()
        && m.dynamic_metadata.is_empty()
}
