//! Tests of the authorization and JWT builders: every rule field and its `not` form, the
//! order of the RBAC filters, what no rules means, TCP chains and the JWT requirement.

use std::sync::Arc;

use envoy_types::pb::envoy::config::core::v3::data_source::Specifier;
use envoy_types::pb::envoy::config::rbac::v3::{
    permission::Rule as P, principal::Identifier as I, rbac::Action, Permission, Principal,
};
use envoy_types::pb::envoy::extensions::filters::http::jwt_authn::v3::{
    jwt_provider::JwksSourceSpecifier, jwt_requirement::RequiresType,
    requirement_rule::RequirementType,
};
use serde_json::json;

use super::*;
use crate::mesh::build::yaml_fixture::build_clean;
use crate::mesh::security::{AuthzAction, WorkloadSecurity};

const PODS: &str = "apiVersion: v1
kind: Pod
metadata: {name: web-0, namespace: shop, labels: {app: web}}
status: {podIP: 10.0.0.1}
";

fn security(yaml: &str) -> (crate::mesh::MeshModel, WorkloadSecurity) {
    let model = build_clean(&format!("{PODS}---\n{yaml}")).model;
    let labels = [("app".to_string(), "web".to_string())].into();
    let sec = WorkloadSecurity::of(&model, "shop", &labels, "istio-system");
    (model, sec)
}

fn policy_yaml(action: &str, rules: &str) -> String {
    format!(
        "apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {{name: p, namespace: shop}}
spec:
  action: {action}
  rules: {rules}
"
    )
}

/// The one Envoy policy of a one-rule policy, as JSON for readable assertions.
fn rule_json(action: &str, rules: &str, tcp: bool) -> serde_json::Value {
    let (_, sec) = security(&policy_yaml(action, rules));
    let p = &sec.authorization[0];
    let policy = rbac::rule_policy(&p.rules[0], p.action, tcp).expect("kept");
    json!({
        "permissions": policy.permissions.iter().map(perm).collect::<Vec<_>>(),
        "principals": policy.principals.iter().map(prin).collect::<Vec<_>>(),
    })
}

/// A compact rendering: `and(...)`, `or(...)`, `not(...)`, leaves by kind and value.
fn perm(p: &Permission) -> serde_json::Value {
    match p.rule.as_ref().unwrap() {
        P::AndRules(s) => json!({"and": s.rules.iter().map(perm).collect::<Vec<_>>()}),
        P::OrRules(s) => json!({"or": s.rules.iter().map(perm).collect::<Vec<_>>()}),
        P::NotRule(r) => json!({"not": perm(r)}),
        P::Any(_) => json!("any"),
        P::Header(h) => json!({"header": [h.name, format!("{:?}", h.header_match_specifier)]}),
        P::UrlPath(m) => json!({"path": format!("{:?}", m.rule)}),
        P::DestinationPort(port) => json!({"port": port}),
        P::DestinationIp(c) => json!({"dest_ip": [c.address_prefix, c.prefix_len.unwrap().value]}),
        P::RequestedServerName(m) => json!({"sni": format!("{:?}", m.match_pattern)}),
        other => json!(format!("{other:?}")),
    }
}

fn prin(p: &Principal) -> serde_json::Value {
    #[allow(deprecated)]
    match p.identifier.as_ref().unwrap() {
        I::AndIds(s) => json!({"and": s.ids.iter().map(prin).collect::<Vec<_>>()}),
        I::OrIds(s) => json!({"or": s.ids.iter().map(prin).collect::<Vec<_>>()}),
        I::NotId(r) => json!({"not": prin(r)}),
        I::Any(_) => json!("any"),
        I::Authenticated(a) => {
            json!({"peer": format!("{:?}", a.principal_name.as_ref().unwrap().match_pattern)})
        }
        I::DirectRemoteIp(c) => {
            json!({"ip": format!("{}/{}", c.address_prefix, c.prefix_len.unwrap().value)})
        }
        I::RemoteIp(c) => {
            json!({"remote_ip": format!("{}/{}", c.address_prefix, c.prefix_len.unwrap().value)})
        }
        I::Header(h) => json!({"header": [h.name, format!("{:?}", h.header_match_specifier)]}),
        I::Metadata(m) => json!({"jwt": [
            m.path.iter().map(|s| format!("{:?}", s.segment)).collect::<Vec<_>>(),
            format!("{:?}", m.value)
        ]}),
        other => json!(format!("{other:?}")),
    }
}

fn text(v: &serde_json::Value) -> String {
    v.to_string()
}

#[test]
fn source_fields_and_not_forms() {
    let v = rule_json(
        "ALLOW",
        "[{from: [{source: {principals: [cluster.local/ns/a/sa/b, 'cluster.local/ns/x/*'], notPrincipals: ['*/sa/bad'],
           namespaces: [a], notNamespaces: ['te*'], ipBlocks: [10.1.0.0/16], notIpBlocks: [10.1.2.3],
           remoteIpBlocks: [192.0.2.0/24], notRemoteIpBlocks: ['2001:db8::/32'], requestPrincipals: [iss/sub], notRequestPrincipals: ['*']}}]}]",
        false,
    );
    let t = text(&v);
    assert_eq!(v["permissions"], json!([{"and": ["any"]}]));
    for needle in [
        r#"Exact(\"spiffe://cluster.local/ns/a/sa/b\")"#,
        r#"Prefix(\"spiffe://cluster.local/ns/x/\")"#,
        r#"spiffe://.*/sa/bad"#,
        r#".*/ns/a/.*"#,
        r#".*/ns/te.*/.*"#,
        r#""ip":"10.1.0.0/16""#,
        r#""ip":"10.1.2.3/32""#,
        r#""remote_ip":"192.0.2.0/24""#,
        r#""remote_ip":"2001:db8::/32""#,
        r#"Key(\"iss\")"#,
    ] {
        assert!(t.contains(needle), "{needle} in {t}");
    }
    let ids = v["principals"][0]["and"].as_array().unwrap();
    // principals, requestPrincipals, namespaces, remoteIpBlocks, ipBlocks: each value set
    // ORed, each not set negated.
    assert_eq!(ids.len(), 10);
    assert!(ids[1].get("not").is_some() && ids[0].get("or").is_some());
}

#[test]
fn operation_fields_and_conditions() {
    let v = rule_json(
        "ALLOW",
        "[{to: [{operation: {hosts: ['*.example.com'], notHosts: [admin.example.com], methods: [GET], notMethods: [DELETE],
           paths: ['/api/*', '*.js', '*'], notPaths: [/api/secret], ports: ['8080'], notPorts: ['9090']}}],
          when: [{key: 'request.headers[x-a]', values: ['*']}, {key: destination.port, values: ['8080']},
                 {key: destination.ip, values: [10.0.0.1]}, {key: connection.sni, values: ['*.svc']},
                 {key: source.namespace, values: [a]}, {key: source.principal, notValues: [x/y]},
                 {key: remote.ip, values: [1.2.3.4]}, {key: source.ip, values: [5.6.7.8]},
                 {key: request.auth.principal, values: [i/s]}, {key: request.auth.audiences, values: [aud]},
                 {key: request.auth.presenter, values: [azp]}, {key: 'request.auth.claims[a][b]', values: [c]}]}]",
        false,
    );
    let rules = v["permissions"][0]["and"].as_array().unwrap();
    // hosts, notHosts, methods, notMethods, paths, notPaths, ports, notPorts, then the
    // permission-side conditions: destination.port, destination.ip, connection.sni.
    assert_eq!(rules.len(), 11, "{rules:?}");
    let t = text(&v);
    for needle in [
        r#"Suffix(\".example.com\")"#,
        r#"ignore_case: true"#,
        r#"Exact(\"GET\")"#,
        r#"Prefix(\"/api/\")"#,
        r#"Suffix(\".js\")"#,
        r#"SafeRegex"#,
        r#"{"port":8080}"#,
        r#"{"not":{"or":[{"port":9090}]}}"#,
        r#""dest_ip":["10.0.0.1",32]"#,
        r#"Suffix(\".svc\")"#,
        r#"PresentMatch(true)"#,
        r#"Key(\"aud\")"#,
        r#"Key(\"azp\")"#,
        r#"Key(\"a\")"#,
        r#"Key(\"b\")"#,
    ] {
        assert!(t.contains(needle), "{needle} in {t}");
    }
    // Principal-side conditions, in the order written.
    let ids = v["principals"][0]["and"].as_array().unwrap();
    assert_eq!(ids.len(), 9, "{ids:?}");
}

#[test]
fn http_only_fields_on_tcp() {
    let rules = "[{from: [{source: {namespaces: [a]}}], to: [{operation: {methods: [GET], ports: ['80']}}]}]";
    // ALLOW: the rule is dropped (fewer requests allowed).
    let (_, sec) = security(&policy_yaml("ALLOW", rules));
    assert!(rbac::rule_policy(&sec.authorization[0].rules[0], AuthzAction::Allow, true).is_none());
    // DENY: the HTTP-only field is left out (more connections denied).
    let v = rule_json("DENY", rules, true);
    assert_eq!(
        text(&v["permissions"]),
        r#"[{"and":[{"or":[{"port":80}]}]}]"#
    );
    // On HTTP chains the method stays.
    assert!(text(&rule_json("DENY", rules, false)).contains("GET"));
    // requestPrincipals too.
    let (_, sec) = security(&policy_yaml(
        "ALLOW",
        "[{from: [{source: {requestPrincipals: ['*']}}]}]",
    ));
    assert!(rbac::rule_policy(&sec.authorization[0].rules[0], AuthzAction::Allow, true).is_none());
}

#[test]
fn no_rules_never_match_so_allow_denies_all() {
    let (_, sec) = security(&policy_yaml("ALLOW", "[]"));
    let policies: Vec<_> = sec.authorization.iter().map(|p| &**p).collect();
    let r = rbac::action_rules(&policies, AuthzAction::Allow, false).unwrap();
    let rules = r.rules.unwrap();
    assert_eq!(rules.action, Action::Allow as i32);
    let p = &rules.policies["ns[shop]-policy[p]-rule[0]"];
    assert_eq!(*p, rbac::match_never());
    assert!(rbac::action_rules(&policies, AuthzAction::Deny, false).is_none());
    // An empty rule matches everything.
    let v = rule_json("DENY", "[{}]", false);
    assert_eq!(
        text(&v),
        r#"{"permissions":[{"and":["any"]}],"principals":[{"and":["any"]}]}"#
    );
}

#[test]
fn filters_in_istiod_order_jwt_first() {
    let yaml = format!(
        "{}---\n{}---\n{}---\n{}",
        policy_yaml("ALLOW", "[{to: [{operation: {methods: [GET]}}]}]").replace("name: p", "name: a"),
        policy_yaml("DENY", "[{to: [{operation: {paths: [/x]}}]}]").replace("name: p", "name: d"),
        "apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: dry, namespace: shop, annotations: {istio.io/dry-run: 'true'}}
spec: {action: AUDIT, rules: [{}]}
",
        "apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: jwt, namespace: istio-system}
spec: {jwtRules: [{issuer: b, jwksUri: 'https://b.example/jwks'}, {issuer: a, jwks: '{\"keys\":[{\"kty\":\"EC\"}]}'}]}
"
    );
    let (model, sec) = security(&yaml);
    let filters = http_filters(&model, &sec);
    let names: Vec<&str> = filters.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        [matchers::JWT_FILTER, HTTP_RBAC, HTTP_RBAC, HTTP_RBAC]
    );
    let decode = |i: usize| {
        let Some(http_filter::ConfigType::TypedConfig(any)) = &filters[i].config_type else {
            panic!()
        };
        HttpRbac::decode(any.value.as_slice()).unwrap()
    };
    let audit = decode(1);
    assert!(audit.rules.is_none());
    assert_eq!(audit.shadow_rules.unwrap().action, Action::Log as i32);
    assert_eq!(decode(2).rules.unwrap().action, Action::Deny as i32);
    assert_eq!(decode(3).rules.unwrap().action, Action::Allow as i32);
    let tcp: Vec<_> = network_filters(&sec).into_iter().map(|f| f.name).collect();
    assert_eq!(tcp, [NETWORK_RBAC; 3]);
}

#[test]
fn jwt_providers_sorted_by_issuer_missing_token_allowed() {
    let (model, sec) = security(
        "apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: jwt, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  jwtRules:
  - {issuer: b, jwksUri: 'https://b.example/jwks', fromHeaders: [{name: x-t, prefix: 'Bearer '}], fromParams: [tok]}
  - {issuer: a, jwks: '{\"keys\":[{\"kty\":\"EC\"}]}', forwardOriginalToken: true, outputPayloadToHeader: x-p}
",
    );
    let authns: Vec<_> = sec.authentication.iter().map(|a| &**a).collect();
    let config = jwt::jwt_authn(&model, &authns).unwrap();
    let a = &config.providers["origins-0"];
    assert_eq!(a.issuer, "a");
    assert!(a.forward);
    assert_eq!(a.forward_payload_header, "x-p");
    assert_eq!(a.payload_in_metadata, "payload");
    let b = &config.providers["origins-1"];
    assert_eq!(b.from_headers[0].value_prefix, "Bearer ");
    assert_eq!(b.from_params, ["tok"]);
    // Not fetched yet: a key nobody holds.
    let Some(JwksSourceSpecifier::LocalJwks(source)) = &b.jwks_source_specifier else {
        panic!()
    };
    assert_eq!(
        source.specifier,
        Some(Specifier::InlineString(jwt::UNUSABLE_JWKS.into()))
    );
    // Two providers: any one verified, or each missing.
    let Some(RequirementType::Requires(req)) = &config.rules[0].requirement_type else {
        panic!()
    };
    let Some(RequiresType::RequiresAny(any)) = &req.requires_type else {
        panic!()
    };
    assert_eq!(any.requirements.len(), 3);
    let Some(RequiresType::RequiresAll(all)) = &any.requirements[2].requires_type else {
        panic!()
    };
    let Some(RequiresType::RequiresAny(first)) = &all.requirements[0].requires_type else {
        panic!()
    };
    assert!(matches!(
        first.requirements[1].requires_type,
        Some(RequiresType::AllowMissing(_))
    ));

    // Once fetched, the keys are inlined.
    let mut fetched = model.clone();
    fetched
        .fetched_jwks
        .insert("https://b.example/jwks".into(), Arc::from("{\"keys\":[1]}"));
    let config = jwt::jwt_authn(&fetched, &authns).unwrap();
    let Some(JwksSourceSpecifier::LocalJwks(source)) =
        &config.providers["origins-1"].jwks_source_specifier
    else {
        panic!()
    };
    assert_eq!(
        source.specifier,
        Some(Specifier::InlineString("{\"keys\":[1]}".into()))
    );
}

#[test]
fn selection_by_namespace_root_and_selector() {
    let yaml = "apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: mesh, namespace: istio-system}
spec: {}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: other-ns, namespace: elsewhere}
spec: {}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: not-me, namespace: shop}
spec: {selector: {matchLabels: {app: db}}}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: me, namespace: shop}
spec: {selector: {matchLabels: {app: web}}}
";
    let (_, sec) = security(yaml);
    let names: Vec<_> = sec
        .authorization
        .iter()
        .map(|p| p.key.to_string())
        .collect();
    assert_eq!(names, ["istio-system/mesh", "shop/me"]);
}

#[test]
fn path_templates_become_uri_template_permissions() {
    use envoy_types::pb::envoy::extensions::path::r#match::uri_template::v3::UriTemplateMatchConfig;
    use prost::Message;
    let Some(P::UriTemplate(ext)) = matchers::path_permission("/books/{*}/x/{**}").rule else {
        panic!("a template is a uri_template permission");
    };
    assert_eq!(ext.name, "uri-template");
    let any = ext.typed_config.unwrap();
    assert_eq!(
        any.type_url,
        "type.googleapis.com/envoy.extensions.path.match.uri_template.v3.UriTemplateMatchConfig"
    );
    let config = UriTemplateMatchConfig::decode(any.value.as_slice()).unwrap();
    assert_eq!(config.path_template, "/books/*/x/**");
    // `*` forms stay path matchers.
    for plain in ["/books/*", "*/x", "/exact"] {
        let rule = matchers::path_permission(plain).rule;
        assert!(matches!(rule, Some(P::UrlPath(_))), "{plain}");
    }
}
