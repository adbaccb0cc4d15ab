//! Checks of AuthorizationPolicy: action (CUSTOM refused, as meshd configures no ext_authz
//! provider), rules and their `from`, `to` and `when` fields, with Istio's value rules
//! (`*` only as a prefix, a suffix or alone; path templates; IPs and CIDRs; port numbers;
//! known condition keys).

use super::istio_fields::{check_cidr, each, Checked};
use super::{invalid, names, Invalid};
use crate::mesh::security::{
    AuthorizationPolicy, AuthzAction, AuthzCondition, AuthzOperation, AuthzRule, AuthzSource,
    ConditionKey, Values,
};
use crate::source::objects::networking::IstioObject;
use crate::source::objects::security as wire;

/// Istio's annotation that turns a policy into a dry run.
pub const DRY_RUN_ANNOTATION: &str = "istio.io/dry-run";

pub fn check(
    ap: &IstioObject<wire::AuthorizationPolicySpec>,
) -> Result<AuthorizationPolicy, Invalid> {
    let key = names::object_key(&ap.metadata, false)?;
    let spec = &ap.spec;
    let action = match spec.action.as_deref().unwrap_or("ALLOW") {
        "ALLOW" => AuthzAction::Allow,
        "DENY" => AuthzAction::Deny,
        "AUDIT" => AuthzAction::Audit,
        "CUSTOM" => {
            return Err(invalid(
                "spec.action",
                "CUSTOM needs an ext_authz extension provider, and meshd has none configured",
            ))
        }
        other => {
            return Err(invalid(
                "spec.action",
                format!("{other:?} is not one of ALLOW, DENY, AUDIT, CUSTOM"),
            ))
        }
    };
    if spec.provider.is_some() {
        return Err(invalid(
            "spec.provider",
            "provider is only allowed with action CUSTOM",
        ));
    }
    let dry_run = match ap
        .metadata
        .annotations
        .get(DRY_RUN_ANNOTATION)
        .map(String::as_str)
    {
        None => false,
        Some(v) => v.parse::<bool>().map_err(|_| {
            invalid(
                format!("metadata.annotations[{DRY_RUN_ANNOTATION}]"),
                format!("{v:?} is not true or false"),
            )
        })?,
    };
    let selector = spec
        .selector
        .as_ref()
        .map(|s| s.match_labels.clone())
        .unwrap_or_default();
    Ok(AuthorizationPolicy {
        key,
        selector,
        action,
        dry_run,
        rules: each(&spec.rules, "spec.rules", rule)?,
    })
}

fn rule(r: &wire::Rule, field: &str) -> Checked<AuthzRule> {
    Ok(AuthzRule {
        from: each(&r.from, &format!("{field}.from"), source)?,
        to: each(&r.to, &format!("{field}.to"), operation)?,
        when: each(&r.when, &format!("{field}.when"), condition)?,
    })
}

/// What a value must look like.
#[derive(Clone, Copy)]
enum Kind {
    /// Any non-empty string, `*` only leading, trailing or alone.
    Text,
    /// Text, or a path template (`super::path_template`).
    Path,
    Cidr,
    Port,
}

fn check_value(v: &str, kind: Kind) -> Result<(), String> {
    match kind {
        _ if v.is_empty() => Err("empty value".to_string()),
        Kind::Text => {
            let inner = v.trim_start_matches('*').trim_end_matches('*');
            if v.len() > 1 && (inner.contains('*') || v.starts_with("**") || v.ends_with("**")) {
                return Err(format!(
                    "{v:?}: `*` is allowed only as a prefix, a suffix or alone"
                ));
            }
            if v.len() > 1 && v.starts_with('*') && v.ends_with('*') {
                return Err(format!(
                    "{v:?}: `*` is allowed only as a prefix or a suffix, not both"
                ));
            }
            Ok(())
        }
        Kind::Path if super::path_template::is_template(v) => super::path_template::check(v),
        Kind::Path => super::path_template::check(v).and_then(|()| check_value(v, Kind::Text)),
        Kind::Cidr => check_cidr(v),
        Kind::Port => match v.parse::<u32>() {
            Ok(p) if p <= 65535 => Ok(()),
            _ => Err(format!("{v:?} is not a port number in 0-65535")),
        },
    }
}

fn values(
    values: &[String],
    not: &[String],
    field: &str,
    name: &str,
    kind: Kind,
) -> Checked<Values> {
    let not_name = format!("not{}{}", name[..1].to_uppercase(), &name[1..]);
    for (list, n) in [(values, name), (not, not_name.as_str())] {
        for (i, v) in list.iter().enumerate() {
            check_value(v, kind).map_err(|reason| invalid(format!("{field}.{n}[{i}]"), reason))?;
        }
    }
    Ok(Values {
        values: values.to_vec(),
        not_values: not.to_vec(),
    })
}

fn source(from: &wire::RuleFrom, field: &str) -> Checked<AuthzSource> {
    let field = format!("{field}.source");
    let Some(s) = &from.source else {
        return Err(invalid(field, "source is required"));
    };
    let unsupported = [
        (&s.service_accounts, "serviceAccounts"),
        (&s.not_service_accounts, "notServiceAccounts"),
        (&s.trust_domains, "trustDomains"),
        (&s.not_trust_domains, "notTrustDomains"),
    ];
    if let Some((_, name)) = unsupported.iter().find(|(v, _)| !v.is_empty()) {
        // Ignoring it would widen an ALLOW rule.
        return Err(invalid(
            format!("{field}.{name}"),
            "not supported by meshd yet",
        ));
    }
    let out = AuthzSource {
        principals: values(
            &s.principals,
            &s.not_principals,
            &field,
            "principals",
            Kind::Text,
        )?,
        request_principals: values(
            &s.request_principals,
            &s.not_request_principals,
            &field,
            "requestPrincipals",
            Kind::Text,
        )?,
        namespaces: values(
            &s.namespaces,
            &s.not_namespaces,
            &field,
            "namespaces",
            Kind::Text,
        )?,
        ip_blocks: values(
            &s.ip_blocks,
            &s.not_ip_blocks,
            &field,
            "ipBlocks",
            Kind::Cidr,
        )?,
        remote_ip_blocks: values(
            &s.remote_ip_blocks,
            &s.not_remote_ip_blocks,
            &field,
            "remoteIpBlocks",
            Kind::Cidr,
        )?,
    };
    let empty = [
        &out.principals,
        &out.request_principals,
        &out.namespaces,
        &out.ip_blocks,
        &out.remote_ip_blocks,
    ]
    .iter()
    .all(|v| v.is_empty());
    if empty {
        return Err(invalid(field, "source must set at least one field"));
    }
    Ok(out)
}

fn operation(to: &wire::RuleTo, field: &str) -> Checked<AuthzOperation> {
    let field = format!("{field}.operation");
    let Some(o) = &to.operation else {
        return Err(invalid(field, "operation is required"));
    };
    let out = AuthzOperation {
        hosts: values(&o.hosts, &o.not_hosts, &field, "hosts", Kind::Text)?,
        ports: values(&o.ports, &o.not_ports, &field, "ports", Kind::Port)?,
        methods: values(&o.methods, &o.not_methods, &field, "methods", Kind::Text)?,
        paths: values(&o.paths, &o.not_paths, &field, "paths", Kind::Path)?,
    };
    if [&out.hosts, &out.ports, &out.methods, &out.paths]
        .iter()
        .all(|v| v.is_empty())
    {
        return Err(invalid(field, "operation must set at least one field"));
    }
    Ok(out)
}

/// `[a]` or `[a][b]...`: the names between brackets.
fn bracketed(rest: &str) -> Option<Vec<String>> {
    let mut names = Vec::new();
    let mut rest = rest;
    while !rest.is_empty() {
        let inner = rest.strip_prefix('[')?;
        let end = inner.find(']')?;
        let name = &inner[..end];
        if name.is_empty() || name.contains('[') {
            return None;
        }
        names.push(name.to_string());
        rest = &inner[end + 1..];
    }
    (!names.is_empty()).then_some(names)
}

fn condition(c: &wire::Condition, field: &str) -> Checked<AuthzCondition> {
    let Some(k) = c.key.as_deref() else {
        return Err(invalid(format!("{field}.key"), "key is required"));
    };
    let bad_key = |reason: String| invalid(format!("{field}.key"), reason);
    let (key, kind) = match k {
        "source.ip" => (ConditionKey::SourceIp, Kind::Cidr),
        "remote.ip" => (ConditionKey::RemoteIp, Kind::Cidr),
        "source.namespace" => (ConditionKey::SourceNamespace, Kind::Text),
        "source.principal" => (ConditionKey::SourcePrincipal, Kind::Text),
        "request.auth.principal" => (ConditionKey::RequestPrincipal, Kind::Text),
        "request.auth.audiences" => (ConditionKey::RequestAudiences, Kind::Text),
        "request.auth.presenter" => (ConditionKey::RequestPresenter, Kind::Text),
        "destination.ip" => (ConditionKey::DestinationIp, Kind::Cidr),
        "destination.port" => (ConditionKey::DestinationPort, Kind::Port),
        "connection.sni" => (ConditionKey::ConnectionSni, Kind::Text),
        _ if k.starts_with("request.headers") => {
            let names = bracketed(&k["request.headers".len()..])
                .filter(|n| n.len() == 1)
                .ok_or_else(|| bad_key(format!("{k:?}: expected request.headers[<name>]")))?;
            (ConditionKey::RequestHeader(names[0].clone()), Kind::Text)
        }
        _ if k.starts_with("request.auth.claims") => {
            let names = bracketed(&k["request.auth.claims".len()..])
                .ok_or_else(|| bad_key(format!("{k:?}: expected request.auth.claims[<name>]")))?;
            (ConditionKey::RequestClaims(names), Kind::Text)
        }
        _ => {
            return Err(bad_key(format!(
                "{k:?} is not a condition key meshd supports"
            )))
        }
    };
    let v = values(&c.values, &c.not_values, field, "values", kind)?;
    if v.is_empty() {
        return Err(invalid(field, "values or notValues is required"));
    }
    Ok(AuthzCondition { key, values: v })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<AuthorizationPolicy, Invalid> {
        let ap: IstioObject<wire::AuthorizationPolicySpec> =
            crate::yaml::from_str_with_path(yaml).unwrap();
        check(&ap)
    }

    fn err(yaml: &str) -> (String, String) {
        let e = parse(yaml).unwrap_err();
        (e.field, e.reason)
    }

    const HEAD: &str = "metadata: {name: p, namespace: ns}\n";

    #[test]
    fn accepts_every_field() {
        let p = parse(&format!(
            "{HEAD}spec:
  selector: {{matchLabels: {{app: web}}}}
  action: DENY
  rules:
  - from:
    - source: {{principals: [cluster.local/ns/a/sa/b], notNamespaces: [x], ipBlocks: [10.0.0.0/8], notRemoteIpBlocks: [1.2.3.4], requestPrincipals: ['*']}}
    to:
    - operation: {{methods: [GET], notPaths: ['/admin*'], ports: ['8080'], hosts: ['*.example.com']}}
    when:
    - {{key: 'request.headers[x-user]', values: [alice]}}
    - {{key: 'request.auth.claims[groups][0]', notValues: [guest]}}
"
        ))
        .unwrap();
        assert_eq!(p.action, AuthzAction::Deny);
        assert_eq!(p.selector["app"], "web");
        let r = &p.rules[0];
        assert_eq!(r.from[0].namespaces.not_values, ["x"]);
        assert_eq!(r.to[0].ports.values, ["8080"]);
        assert_eq!(r.when[0].key, ConditionKey::RequestHeader("x-user".into()));
        assert_eq!(
            r.when[1].key,
            ConditionKey::RequestClaims(vec!["groups".into(), "0".into()])
        );
        assert!(!p.dry_run);
    }

    #[test]
    fn empty_spec_is_an_allow_policy_without_rules() {
        let p = parse(&format!("{HEAD}spec: {{}}\n")).unwrap();
        assert_eq!(p.action, AuthzAction::Allow);
        assert!(p.rules.is_empty());
    }

    #[test]
    fn refusals_name_the_field() {
        let cases = [
            (
                "spec: {action: CUSTOM, provider: {name: x}}",
                "spec.action",
                "ext_authz",
            ),
            ("spec: {action: MAYBE}", "spec.action", "not one of"),
            (
                "spec: {provider: {name: x}}",
                "spec.provider",
                "only allowed",
            ),
            (
                "spec: {rules: [{from: [{}]}]}",
                "spec.rules[0].from[0].source",
                "required",
            ),
            (
                "spec: {rules: [{from: [{source: {}}]}]}",
                "spec.rules[0].from[0].source",
                "at least one",
            ),
            (
                "spec: {rules: [{to: [{operation: {}}]}]}",
                "spec.rules[0].to[0].operation",
                "at least one",
            ),
            (
                "spec: {rules: [{from: [{source: {ipBlocks: [nope]}}]}]}",
                "spec.rules[0].from[0].source.ipBlocks[0]",
                "not an IP",
            ),
            (
                "spec: {rules: [{to: [{operation: {notPorts: ['70000']}}]}]}",
                "spec.rules[0].to[0].operation.notPorts[0]",
                "port",
            ),
            (
                "spec: {rules: [{to: [{operation: {paths: ['/a*b']}}]}]}",
                "spec.rules[0].to[0].operation.paths[0]",
                "prefix",
            ),
            (
                "spec: {rules: [{to: [{operation: {notPaths: ['/{**}/a/{*}']}}]}]}",
                "spec.rules[0].to[0].operation.notPaths[0]",
                "last operator",
            ),
            (
                "spec: {rules: [{to: [{operation: {paths: ['/a/{id}']}}]}]}",
                "spec.rules[0].to[0].operation.paths[0]",
                "whole segments",
            ),
            (
                "spec: {rules: [{when: [{key: foo.bar, values: [x]}]}]}",
                "spec.rules[0].when[0].key",
                "not a condition key",
            ),
            (
                "spec: {rules: [{when: [{key: 'request.headers', values: [x]}]}]}",
                "spec.rules[0].when[0].key",
                "request.headers[<name>]",
            ),
            (
                "spec: {rules: [{when: [{key: source.ip}]}]}",
                "spec.rules[0].when[0]",
                "values or notValues",
            ),
            (
                "spec: {rules: [{from: [{source: {namespaces: [a], serviceAccounts: [b]}}]}]}",
                "spec.rules[0].from[0].source.serviceAccounts",
                "not supported",
            ),
            (
                "spec: {rules: [{when: [{key: destination.port, values: [x]}]}]}",
                "spec.rules[0].when[0].values[0]",
                "port",
            ),
        ];
        for (spec, field, reason) in cases {
            let (f, r) = err(&format!("{HEAD}{spec}\n"));
            assert_eq!(f, field, "{spec}");
            assert!(r.contains(reason), "{spec}: {r}");
        }
        let dry = String::from("metadata: {name: p, namespace: ns, annotations: {istio.io/dry-run: maybe}}\nspec: {}\n");
        assert_eq!(err(&dry).0, "metadata.annotations[istio.io/dry-run]");
    }
}
