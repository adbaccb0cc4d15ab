//! `headers` of a route or destination: request and response headers set (overwrite),
//! added (append) and removed. Host and pseudo-headers cannot be changed that way in Envoy;
//! a `host` (or `:authority`) set or add becomes the route's host rewrite instead, as in
//! istiod.

use std::collections::BTreeMap;

use envoy_types::pb::envoy::config::core::v3::{
    header_value_option::HeaderAppendAction, HeaderValue, HeaderValueOption,
};

use crate::mesh::traffic::{HeaderOperations, HeaderRules};

/// Envoy's header changes for one set of rules, plus the authority to rewrite to.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Operations {
    pub request_add: Vec<HeaderValueOption>,
    pub request_remove: Vec<String>,
    pub response_add: Vec<HeaderValueOption>,
    pub response_remove: Vec<String>,
    pub authority: Option<String>,
}

fn is_authority(name: &str) -> bool {
    name.eq_ignore_ascii_case(":authority") || name.eq_ignore_ascii_case("host")
}

/// Headers Envoy owns: pseudo-headers and `host`.
fn is_internal(name: &str) -> bool {
    name.starts_with(':') || name.eq_ignore_ascii_case("host")
}

/// Header options sorted by name (the map's order), and the authority among them.
fn options(
    headers: &BTreeMap<String, String>,
    action: HeaderAppendAction,
) -> (Vec<HeaderValueOption>, Option<String>) {
    let mut authority = None;
    let mut out = Vec::with_capacity(headers.len());
    for (key, value) in headers {
        if is_authority(key) {
            authority = Some(value.clone());
        }
        if is_internal(key) {
            continue;
        }
        out.push(HeaderValueOption {
            header: Some(HeaderValue {
                key: key.clone(),
                value: value.clone(),
                ..Default::default()
            }),
            append_action: action as i32,
            ..Default::default()
        });
    }
    (out, authority)
}

fn removals(names: &[String]) -> Vec<String> {
    names.iter().filter(|n| !is_internal(n)).cloned().collect()
}

fn adds(ops: &HeaderOperations) -> (Vec<HeaderValueOption>, Option<String>) {
    let (mut list, set_authority) = options(&ops.set, HeaderAppendAction::OverwriteIfExistsOrAdd);
    let (added, add_authority) = options(&ops.add, HeaderAppendAction::AppendIfExistsOrAdd);
    list.extend(added);
    // `set` wins over `add` for the authority.
    (list, set_authority.or(add_authority))
}

pub(super) fn operations(rules: &HeaderRules) -> Operations {
    let (request_add, authority) = adds(&rules.request);
    let (response_add, _) = adds(&rules.response);
    Operations {
        request_add,
        request_remove: removals(&rules.request.remove),
        response_add,
        response_remove: removals(&rules.response.remove),
        authority,
    }
}
