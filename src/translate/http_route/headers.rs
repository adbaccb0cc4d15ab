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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_becomes_the_authority_and_set_beats_add() {
        let rules = HeaderRules {
            request: HeaderOperations {
                set: [("Host".to_string(), "set.example".to_string())].into(),
                add: [
                    ("host".to_string(), "add.example".to_string()),
                    ("x-a".to_string(), "1".to_string()),
                ]
                .into(),
                remove: vec!["host".into(), "x-b".into()],
            },
            response: HeaderOperations::default(),
        };
        let ops = operations(&rules);
        assert_eq!(ops.authority.as_deref(), Some("set.example"));
        assert_eq!(ops.request_add.len(), 1, "host is not a header to add");
        assert_eq!(ops.request_remove, ["x-b"]);
    }
}
