//! Delegation: a route with `delegate` stands for the HTTP routes of another
//! VirtualService (one with no hosts, exported to the parent's namespace). Each of them is
//! merged under the parent route as istiod does: its match blocks must each fall within
//! one of the parent's (narrowing it), and what it leaves unset (rewrite, timeout,
//! retries, fault, mirrors, CORS, headers, name parts) comes from the parent. A delegate
//! route that conflicts with the parent's matches is left out; a missing or hidden
//! delegate leaves nothing in the parent route's place.

use std::borrow::Cow;

use crate::mesh::traffic::{
    HeaderRules, HttpAction, HttpMatch, HttpRoute, StringMatch, VirtualService,
};
use crate::mesh::MeshModel;

/// The HTTP routes of `vs` with every delegation replaced by the delegate's routes.
pub(super) fn merged_http_routes<'a>(
    model: &MeshModel,
    vs: &'a VirtualService,
) -> Cow<'a, [HttpRoute]> {
    if !vs
        .http
        .iter()
        .any(|r| matches!(r.action, HttpAction::Delegate(_)))
    {
        return Cow::Borrowed(&vs.http);
    }
    let mut out = Vec::new();
    for route in &vs.http {
        let HttpAction::Delegate(key) = &route.action else {
            out.push(route.clone());
            continue;
        };
        let Some(delegate) = model.virtual_services.get(key) else {
            continue;
        };
        if !delegate.hosts.is_empty() || !delegate.export_to.visible_to(&vs.key.namespace) {
            continue;
        }
        out.extend(
            delegate
                .http
                .iter()
                .filter_map(|leaf| merge_route(route, leaf)),
        );
    }
    Cow::Owned(out)
}

/// `leaf` under `root`; `None` when their matches conflict.
fn merge_route(root: &HttpRoute, leaf: &HttpRoute) -> Option<HttpRoute> {
    let matches = merge_matches(&root.matches, &leaf.matches)?;
    let mut out = leaf.clone();
    out.matches = matches;
    out.name = join_names(root.name.as_deref(), leaf.name.as_deref());
    out.rewrite = leaf.rewrite.clone().or_else(|| root.rewrite.clone());
    out.timeout = leaf.timeout.or(root.timeout);
    out.retries = leaf.retries.clone().or_else(|| root.retries.clone());
    out.fault = leaf.fault.clone().or_else(|| root.fault.clone());
    if leaf.mirrors.is_empty() {
        out.mirrors = root.mirrors.clone();
    }
    out.cors = leaf.cors.clone().or_else(|| root.cors.clone());
    if leaf.headers == HeaderRules::default() {
        out.headers = root.headers.clone();
    }
    Some(out)
}

/// `root-leaf`, or whichever is set.
fn join_names(root: Option<&str>, leaf: Option<&str>) -> Option<String> {
    match (
        root.filter(|r| !r.is_empty()),
        leaf.filter(|l| !l.is_empty()),
    ) {
        (Some(r), Some(l)) => Some(format!("{r}-{l}")),
        (r, l) => l.or(r).map(str::to_string),
    }
}

/// Every leaf block merged with every root block it does not conflict with; `None` when
/// some leaf block fits no root block.
fn merge_matches(root: &[HttpMatch], leaf: &[HttpMatch]) -> Option<Vec<HttpMatch>> {
    if root.is_empty() {
        return Some(leaf.to_vec());
    }
    if leaf.is_empty() {
        return Some(root.to_vec());
    }
    let mut out = Vec::new();
    for l in leaf {
        let before = out.len();
        out.extend(
            root.iter()
                .filter(|r| !conflicts(r, l))
                .map(|r| merge_match(r, l)),
        );
        if out.len() == before {
            return None;
        }
    }
    Some(out)
}

fn merge_match(root: &HttpMatch, leaf: &HttpMatch) -> HttpMatch {
    let mut out = leaf.clone();
    out.name = join_names(root.name.as_deref(), leaf.name.as_deref());
    out.uri = leaf.uri.clone().or_else(|| root.uri.clone());
    out.scheme = leaf.scheme.clone().or_else(|| root.scheme.clone());
    out.method = leaf.method.clone().or_else(|| root.method.clone());
    out.authority = leaf.authority.clone().or_else(|| root.authority.clone());
    // Maps: the root's entries, overridden by the leaf's.
    for (theirs, ours) in [
        (&root.headers, &mut out.headers),
        (&root.without_headers, &mut out.without_headers),
        (&root.query_params, &mut out.query_params),
    ] {
        for (k, v) in theirs {
            ours.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    for (k, v) in &root.source_labels {
        out.source_labels
            .entry(k.clone())
            .or_insert_with(|| v.clone());
    }
    out.port = leaf.port.or(root.port);
    if leaf.source_namespace.as_deref().is_none_or(str::is_empty) {
        out.source_namespace = root.source_namespace.clone();
    }
    if leaf.gateways.is_empty() {
        out.gateways = root.gateways.clone();
    }
    out
}

/// Whether `leaf` asks for something outside `root`.
fn conflicts(root: &HttpMatch, leaf: &HttpMatch) -> bool {
    let pairs = [
        (&root.uri, &leaf.uri),
        (&root.scheme, &leaf.scheme),
        (&root.method, &leaf.method),
        (&root.authority, &leaf.authority),
    ];
    if pairs
        .iter()
        .any(|(r, l)| string_conflict(r.as_ref(), l.as_ref()))
    {
        return true;
    }
    for (roots, leaves) in [
        (&root.headers, &leaf.headers),
        (&root.without_headers, &leaf.without_headers),
        (&root.query_params, &leaf.query_params),
    ] {
        if leaves
            .iter()
            .any(|(k, l)| string_conflict(roots.get(k), Some(l)))
        {
            return true;
        }
    }
    if root.ignore_uri_case != leaf.ignore_uri_case {
        return true;
    }
    if let (Some(r), Some(l)) = (root.port, leaf.port) {
        if r != l {
            return true;
        }
    }
    if let Some(ns) = root.source_namespace.as_deref().filter(|n| !n.is_empty()) {
        if leaf.source_namespace.as_deref() != Some(ns) {
            return true;
        }
    }
    if leaf
        .source_labels
        .iter()
        .any(|(k, v)| root.source_labels.get(k).is_some_and(|r| r != v))
    {
        return true;
    }
    !root.gateways.is_empty()
        && !leaf.gateways.is_empty()
        && leaf.gateways.iter().any(|g| !root.gateways.contains(g))
}

/// Whether a leaf string match can match something the root's does not: equal exact
/// values and prefixes within the root's prefix fit; regexes fit nothing but absence.
fn string_conflict(root: Option<&StringMatch>, leaf: Option<&StringMatch>) -> bool {
    let (Some(root), Some(leaf)) = (root, leaf) else {
        return false;
    };
    match (root, leaf) {
        (StringMatch::Regex(_), _) | (_, StringMatch::Regex(_)) => true,
        (StringMatch::Exact(r), StringMatch::Exact(l)) => r != l,
        (StringMatch::Exact(_), StringMatch::Prefix(_)) => true,
        (StringMatch::Prefix(r), StringMatch::Prefix(l) | StringMatch::Exact(l)) => {
            !l.starts_with(r.as_str())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exact(s: &str) -> Option<StringMatch> {
        Some(StringMatch::Exact(s.into()))
    }
    fn prefix(s: &str) -> Option<StringMatch> {
        Some(StringMatch::Prefix(s.into()))
    }

    #[test]
    fn a_leaf_must_stay_within_the_root_match() {
        let c = |r: Option<StringMatch>, l: Option<StringMatch>| {
            string_conflict(r.as_ref(), l.as_ref())
        };
        assert!(!c(prefix("/api"), prefix("/api/v2")));
        assert!(c(prefix("/api/v2"), prefix("/api")), "wider than the root");
        assert!(!c(prefix("/api"), exact("/api/x")));
        assert!(c(exact("/a"), prefix("/a")));
        assert!(!c(exact("/a"), exact("/a")));
        assert!(c(exact("/a"), exact("/b")));
        assert!(c(Some(StringMatch::Regex(".*".into())), exact("/a")));
        assert!(!c(None, exact("/a")), "an unset root takes anything");
        assert!(!c(prefix("/a"), None), "an unset leaf inherits");
    }

    #[test]
    fn merged_blocks_inherit_what_the_leaf_leaves_unset() {
        let root = HttpMatch {
            name: Some("r".into()),
            uri: prefix("/api"),
            headers: [("x-team".to_string(), StringMatch::Exact("a".into()))].into(),
            port: Some(9080),
            ..Default::default()
        };
        let leaf = HttpMatch {
            name: Some("l".into()),
            uri: prefix("/api/v2"),
            method: exact("GET"),
            ..Default::default()
        };
        assert!(!conflicts(&root, &leaf));
        let m = merge_match(&root, &leaf);
        assert_eq!(m.name.as_deref(), Some("r-l"));
        assert_eq!(m.uri, prefix("/api/v2"));
        assert_eq!(m.method, exact("GET"));
        assert_eq!(m.port, Some(9080));
        assert_eq!(m.headers.len(), 1);
        let other_port = HttpMatch {
            port: Some(9090),
            ..leaf.clone()
        };
        assert!(conflicts(&root, &other_port));
        assert_eq!(merge_matches(&[root], &[other_port]), None);
    }
}
