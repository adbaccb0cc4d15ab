//! `rewrite`: the path (prefix or regex) and the authority of forwarded requests.

use envoy_types::pb::envoy::config::route::v3::{route_action::HostRewriteSpecifier, RouteAction};
use envoy_types::pb::envoy::r#type::matcher::v3::RegexMatchAndSubstitute;

use super::matching::regex;
use crate::mesh::traffic::{Rewrite, UriRewrite};

/// Sets the path rewrite on `action`; returns the authority to rewrite to, if any.
pub(super) fn apply(action: &mut RouteAction, rewrite: Option<&Rewrite>) -> Option<String> {
    let rewrite = rewrite?;
    match &rewrite.uri {
        Some(UriRewrite::Regex {
            pattern,
            substitution,
        }) => {
            action.regex_rewrite = Some(RegexMatchAndSubstitute {
                pattern: Some(regex(pattern)),
                substitution: substitution.clone(),
            });
        }
        // The matched prefix (or whole path, for an exact match) is replaced.
        Some(UriRewrite::Prefix(prefix)) => action.prefix_rewrite = prefix.clone(),
        None => {}
    }
    rewrite.authority.clone().filter(|a| !a.is_empty())
}

pub(super) fn host_literal(authority: String) -> HostRewriteSpecifier {
    HostRewriteSpecifier::HostRewriteLiteral(authority)
}
