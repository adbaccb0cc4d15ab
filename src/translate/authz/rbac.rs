//! Envoy RBAC rules from AuthorizationPolicies, as istiod's authz builder makes them: one
//! Envoy policy per Istio rule (`ns[<ns>]-policy[<name>]-rule[<i>]`), its permissions one
//! per `to` (operation fields and permission-side conditions ANDed, values ORed, `not`
//! values negated), its principals one per `from` (source fields and principal-side
//! conditions). A policy without rules gets a policy that never matches, so an ALLOW
//! policy without rules denies everything. For TCP, a rule using an HTTP-only field is
//! dropped from an ALLOW policy and the field alone ignored in DENY and AUDIT ones (both
//! err towards refusing).

use std::collections::HashMap;

use envoy_types::pb::envoy::config::rbac::v3::{
    permission::Rule as P, principal::Identifier as I, rbac::Action, Permission, Policy, Principal,
    Rbac,
};

use super::matchers::*;
use crate::mesh::security::{AuthorizationPolicy, AuthzAction, AuthzRule, ConditionKey, Values};

/// A field is HTTP-only and the chain is TCP.
struct HttpOnly;

type Gen<T> = Result<Option<T>, HttpOnly>;
type ValueGen = Box<dyn Fn(&str) -> Gen<Principal>>;
type ValuesGen = Box<dyn Fn(&[String]) -> Gen<Principal>>;

/// One field of a rule: its values become one matcher ORed, its not-values one negated.
enum Field<'a> {
    Permission(&'a Values, &'a dyn Fn(&str) -> Gen<Permission>),
    Principal(&'a Values, &'a dyn Fn(&str) -> Gen<Principal>),
    /// Fields whose values make one matcher together (claims, request principals).
    PrincipalAll(&'a Values, &'a dyn Fn(&[String]) -> Gen<Principal>),
}

/// Whether HTTP-only fields drop the whole rule (ALLOW) or are left out (DENY, AUDIT).
fn fail(action: AuthzAction, e: HttpOnly) -> Result<(), HttpOnly> {
    match action {
        AuthzAction::Allow => Err(e),
        _ => Ok(()),
    }
}

/// Adds to `and` one clause for a field's values (ORed) and one negated for its
/// not-values; a value the chain cannot match is handled by `fail`.
fn push_clauses<T>(
    values: &Values,
    gen: &dyn Fn(&str) -> Gen<T>,
    action: AuthzAction,
    or: fn(Vec<T>) -> T,
    not: fn(T) -> T,
    and: &mut Vec<T>,
) -> Result<(), HttpOnly> {
    for (list, negate) in [(&values.values, false), (&values.not_values, true)] {
        let mut any = Vec::new();
        for v in list {
            match gen(v) {
                Ok(Some(m)) => any.push(m),
                Ok(None) => {}
                Err(e) => fail(action, e)?,
            }
        }
        if !any.is_empty() {
            let clause = or(any);
            and.push(if negate { not(clause) } else { clause });
        }
    }
    Ok(())
}

fn and_permissions(fields: &[Field<'_>], action: AuthzAction) -> Result<Permission, HttpOnly> {
    let mut and = Vec::new();
    for f in fields {
        let Field::Permission(values, gen) = f else {
            continue;
        };
        let (or, not) = (permission_or, permission_not);
        push_clauses(values, gen, action, or, not, &mut and)?;
    }
    if and.is_empty() {
        and.push(permission(P::Any(true)));
    }
    Ok(permission_and(and))
}

fn and_principals(fields: &[Field<'_>], action: AuthzAction) -> Result<Principal, HttpOnly> {
    let mut and = Vec::new();
    for f in fields {
        match f {
            Field::Principal(values, gen) => {
                let (or, not) = (principal_or, principal_not);
                push_clauses(values, gen, action, or, not, &mut and)?;
            }
            Field::PrincipalAll(values, gen) => {
                for (list, negate) in [(&values.values, false), (&values.not_values, true)] {
                    if list.is_empty() {
                        continue;
                    }
                    match gen(list) {
                        Ok(Some(p)) => and.push(if negate { principal_not(p) } else { p }),
                        Ok(None) => {}
                        Err(e) => fail(action, e)?,
                    }
                }
            }
            Field::Permission(..) => {}
        }
    }
    if and.is_empty() {
        and.push(principal(I::Any(true)));
    }
    Ok(principal_and(and))
}

fn http_p(tcp: bool, p: Permission) -> Gen<Permission> {
    if tcp {
        Err(HttpOnly)
    } else {
        Ok(Some(p))
    }
}

fn http_i(tcp: bool, p: Principal) -> Gen<Principal> {
    if tcp {
        Err(HttpOnly)
    } else {
        Ok(Some(p))
    }
}

/// `iss/sub` with Istio's `*` forms, matched against the verified payload.
fn request_principal(value: &str) -> Principal {
    let any = || regex(".+");
    let (iss, sub) = match value.rfind('/') {
        Some(i) => (&value[..i], Some(&value[i + 1..])),
        None => (value, None),
    };
    let (mi, ms) = if value == "*" {
        (any(), any())
    } else if let Some(rest) = value.strip_prefix('*') {
        match sub {
            Some(sub) if iss == "*" => (any(), exact(sub, false)),
            Some(sub) => (suffix(&iss[1..], false), exact(sub, false)),
            None => (any(), suffix(rest, false)),
        }
    } else if let Some(rest) = value.strip_suffix('*') {
        match sub {
            Some("*") => (exact(iss, false), any()),
            Some(sub) => (exact(iss, false), prefix(&sub[..sub.len() - 1], false)),
            None => (prefix(rest, false), any()),
        }
    } else {
        (exact(iss, false), exact(sub.unwrap_or(""), false))
    };
    principal_and(vec![
        principal_metadata(jwt_claim("iss", mi)),
        principal_metadata(jwt_claim("sub", ms)),
    ])
}

fn request_principals(values: &[String]) -> Principal {
    let mut or: Vec<Principal> = values.iter().map(|v| request_principal(v)).collect();
    if or.len() == 1 {
        or.remove(0)
    } else {
        principal_or(or)
    }
}

fn namespace_regex(ns: &str) -> StringMatcher {
    let quoted: Vec<String> = ns.split('*').map(regex_quote).collect();
    regex(&format!(".*/ns/{}/.*", quoted.join(".*")))
}

use envoy_types::pb::envoy::r#type::matcher::v3::StringMatcher;

/// The Envoy policy of one Istio rule, or `None` when the rule is dropped (TCP, ALLOW,
/// HTTP-only field).
pub fn rule_policy(rule: &AuthzRule, action: AuthzAction, tcp: bool) -> Option<Policy> {
    let principal_gen = |v: &str| Ok(Some(authenticated(with_prefix(v, "spiffe://"))));
    let namespace_gen = |v: &str| Ok(Some(authenticated(namespace_regex(v))));
    let ip_gen = |v: &str| Ok(Some(principal(I::DirectRemoteIp(cidr(v)))));
    let remote_ip_gen = |v: &str| Ok(Some(principal(I::RemoteIp(cidr(v)))));
    let req_principal_gen = |v: &[String]| http_i(tcp, request_principals(v));
    let host_gen = |v: &str| http_p(tcp, permission(P::Header(header(":authority", v, true))));
    let method_gen = |v: &str| http_p(tcp, permission(P::Header(header(":method", v, false))));
    let path_gen = |v: &str| http_p(tcp, path_permission(v));
    let port_gen = |v: &str| Ok(Some(permission(P::DestinationPort(v.parse().unwrap_or(0)))));
    let dest_ip_gen = |v: &str| Ok(Some(permission(P::DestinationIp(cidr(v)))));
    let sni_gen = |v: &str| Ok(Some(permission(P::RequestedServerName(string(v)))));

    // Conditions, in the order written, split between permissions and principals.
    let mut header_gens: Vec<ValueGen> = Vec::new();
    let mut claim_gens: Vec<ValuesGen> = Vec::new();
    for c in &rule.when {
        match &c.key {
            ConditionKey::RequestHeader(name) => {
                let name = name.clone();
                header_gens.push(Box::new(move |v| {
                    http_i(tcp, principal(I::Header(header(&name, v, false))))
                }));
            }
            ConditionKey::RequestClaims(path) => {
                let path = path.clone();
                claim_gens.push(Box::new(move |vs| {
                    http_i(tcp, principal_metadata(jwt_claims_any(&path, vs)))
                }));
            }
            ConditionKey::RequestAudiences => claim_gens.push(Box::new(move |vs| {
                http_i(
                    tcp,
                    principal_metadata(jwt_claims_any(&["aud".to_string()], vs)),
                )
            })),
            ConditionKey::RequestPresenter => claim_gens.push(Box::new(move |vs| {
                http_i(
                    tcp,
                    principal_metadata(jwt_claims_any(&["azp".to_string()], vs)),
                )
            })),
            _ => {}
        }
    }
    let (mut hi, mut ci) = (0, 0);
    let mut base_permission = Vec::new();
    let mut base_principal = Vec::new();
    for c in &rule.when {
        let v = &c.values;
        match &c.key {
            ConditionKey::DestinationIp => base_permission.push(Field::Permission(v, &dest_ip_gen)),
            ConditionKey::DestinationPort => base_permission.push(Field::Permission(v, &port_gen)),
            ConditionKey::ConnectionSni => base_permission.push(Field::Permission(v, &sni_gen)),
            ConditionKey::SourceIp => base_principal.push(Field::Principal(v, &ip_gen)),
            ConditionKey::RemoteIp => base_principal.push(Field::Principal(v, &remote_ip_gen)),
            ConditionKey::SourceNamespace => {
                base_principal.push(Field::Principal(v, &namespace_gen))
            }
            ConditionKey::SourcePrincipal => {
                base_principal.push(Field::Principal(v, &principal_gen))
            }
            ConditionKey::RequestPrincipal => {
                base_principal.push(Field::PrincipalAll(v, &req_principal_gen))
            }
            ConditionKey::RequestHeader(_) => {
                base_principal.push(Field::Principal(v, header_gens[hi].as_ref()));
                hi += 1;
            }
            ConditionKey::RequestClaims(_)
            | ConditionKey::RequestAudiences
            | ConditionKey::RequestPresenter => {
                base_principal.push(Field::PrincipalAll(v, claim_gens[ci].as_ref()));
                ci += 1;
            }
        }
    }

    let mut permissions = Vec::new();
    let tos: Vec<Option<&_>> = if rule.to.is_empty() {
        vec![None]
    } else {
        rule.to.iter().map(Some).collect()
    };
    for to in tos {
        let mut fields = Vec::new();
        if let Some(o) = to {
            fields.push(Field::Permission(&o.hosts, &host_gen));
            fields.push(Field::Permission(&o.methods, &method_gen));
            fields.push(Field::Permission(&o.paths, &path_gen));
            fields.push(Field::Permission(&o.ports, &port_gen));
        }
        fields.extend(base_permission.iter().map(copy_field));
        permissions.push(and_permissions(&fields, action).ok()?);
    }
    let mut principals = Vec::new();
    let froms: Vec<Option<&_>> = if rule.from.is_empty() {
        vec![None]
    } else {
        rule.from.iter().map(Some).collect()
    };
    for from in froms {
        let mut fields = Vec::new();
        if let Some(s) = from {
            fields.push(Field::Principal(&s.principals, &principal_gen));
            fields.push(Field::PrincipalAll(
                &s.request_principals,
                &req_principal_gen,
            ));
            fields.push(Field::Principal(&s.namespaces, &namespace_gen));
            fields.push(Field::Principal(&s.remote_ip_blocks, &remote_ip_gen));
            fields.push(Field::Principal(&s.ip_blocks, &ip_gen));
        }
        fields.extend(base_principal.iter().map(copy_field));
        principals.push(and_principals(&fields, action).ok()?);
    }
    Some(Policy {
        permissions,
        principals,
        ..Default::default()
    })
}

fn copy_field<'a>(f: &Field<'a>) -> Field<'a> {
    match f {
        Field::Permission(v, g) => Field::Permission(v, *g),
        Field::Principal(v, g) => Field::Principal(v, *g),
        Field::PrincipalAll(v, g) => Field::PrincipalAll(v, *g),
    }
}

/// istiod's policy for a policy without rules: matches nothing.
pub fn match_never() -> Policy {
    Policy {
        permissions: vec![permission_not(permission(P::Any(true)))],
        principals: vec![principal_not(principal(I::Any(true)))],
        ..Default::default()
    }
}

pub fn policy_name(p: &AuthorizationPolicy, rule: usize) -> String {
    format!(
        "ns[{}]-policy[{}]-rule[{rule}]",
        p.key.namespace, p.key.name
    )
}

/// Enforced and dry-run rules of the policies of one action; `None` when none has it.
pub struct ActionRules {
    pub rules: Option<Rbac>,
    pub shadow_rules: Option<Rbac>,
}

pub fn action_rules(
    policies: &[&AuthorizationPolicy],
    action: AuthzAction,
    tcp: bool,
) -> Option<ActionRules> {
    let policies: Vec<_> = policies.iter().filter(|p| p.action == action).collect();
    if policies.is_empty() {
        return None;
    }
    let envoy_action = match action {
        AuthzAction::Allow => Action::Allow,
        AuthzAction::Deny => Action::Deny,
        AuthzAction::Audit => Action::Log,
    };
    let (mut enforced, mut shadow): (Option<HashMap<_, _>>, Option<HashMap<_, _>>) = (None, None);
    for p in policies {
        let target = if p.dry_run {
            &mut shadow
        } else {
            &mut enforced
        };
        let target = target.get_or_insert_with(HashMap::new);
        if p.rules.is_empty() {
            target.insert(policy_name(p, 0), match_never());
        }
        for (i, rule) in p.rules.iter().enumerate() {
            if let Some(policy) = rule_policy(rule, action, tcp) {
                target.insert(policy_name(p, i), policy);
            }
        }
    }
    let rbac = |policies| Rbac {
        action: envoy_action as i32,
        policies,
        ..Default::default()
    };
    Some(ActionRules {
        rules: enforced.map(rbac),
        shadow_rules: shadow.map(rbac),
    })
}

/// Envoy's stat prefix of dry-run rules, as istiod sets it.
pub fn shadow_stat_prefix(action: AuthzAction) -> &'static str {
    match action {
        AuthzAction::Allow => "istio_dry_run_allow_",
        AuthzAction::Deny => "istio_dry_run_deny_",
        AuthzAction::Audit => "",
    }
}
