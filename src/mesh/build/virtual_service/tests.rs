use std::time::Duration;

use super::*;
use crate::mesh::build::istio_test_support::{assert_rejects, istio};
use crate::mesh::traffic::{HttpAction, StringMatch};

fn vs(yaml_spec: &str) -> wire::IstioObject<wire::VirtualServiceSpec> {
    istio("reviews", "bookinfo", yaml_spec)
}

#[test]
fn resolves_hosts_and_defaults() {
    let checked = check(&vs("
hosts: [reviews, httpbin.org]
http:
- match:
  - uri: {prefix: /api}
    headers: {End-User: {exact: jason}}
  route:
  - destination: {host: reviews, subset: v2}
  timeout: 1.5s
- route:
  - destination: {host: reviews, subset: v1}
    weight: 75
  - destination: {host: ratings.other.svc.cluster.local, port: {number: 9080}}
    weight: 25
"))
    .unwrap();
    assert_eq!(
        checked.hosts,
        ["reviews.bookinfo.svc.cluster.local", "httpbin.org"]
    );
    assert_eq!(checked.gateways, [GatewayRef::Mesh]);
    let first = &checked.http[0];
    assert_eq!(first.timeout, Some(Duration::from_millis(1500)));
    assert_eq!(
        first.matches[0].headers["end-user"],
        StringMatch::Exact("jason".into())
    );
    let HttpAction::Route(lone) = &first.action else {
        panic!("expected a route");
    };
    assert_eq!(lone[0].weight, 100, "a lone destination takes everything");
    assert_eq!(
        lone[0].destination.host,
        "reviews.bookinfo.svc.cluster.local"
    );
    let HttpAction::Route(split) = &checked.http[1].action else {
        panic!("expected a route");
    };
    assert_eq!(split.iter().map(|d| d.weight).collect::<Vec<_>>(), [75, 25]);
    assert_eq!(split[1].destination.port, Some(9080));
}

#[test]
fn gateways_resolve_in_the_rule_namespace() {
    let checked = check(&vs("
hosts: ['*']
gateways: [ingress, istio-system/shared, mesh-gw.edge.svc.cluster.local]
http:
- route:
  - destination: {host: productpage}
"))
    .unwrap();
    let names: Vec<String> = checked
        .gateways
        .iter()
        .map(|g| match g {
            GatewayRef::Mesh => "mesh".to_string(),
            GatewayRef::Gateway(k) => k.to_string(),
        })
        .collect();
    assert_eq!(
        names,
        ["bookinfo/ingress", "istio-system/shared", "edge/mesh-gw"]
    );
}

#[test]
fn rejects_with_field_and_reason() {
    let cases = [
        (
            "hosts: ['*']\nhttp:\n- route:\n  - destination: {host: a}\n",
            "spec.hosts[0]",
            "not allowed for rules bound to the mesh",
        ),
        (
            "hosts: [a]\nhttp:\n- route:\n  - destination: {host: a}\n    weight: 0\n  - destination: {host: b}\n    weight: 0\n",
            "spec.http[0].route",
            "total destination weight is 0",
        ),
        (
            "hosts: [a]\nhttp:\n- route:\n  - destination: {host: a}\n    weight: -1\n  - destination: {host: b}\n",
            "spec.http[0].route[0].weight",
            "negative",
        ),
        (
            "hosts: [a]\nhttp:\n- match:\n  - uri: {regex: '(a'}\n  route:\n  - destination: {host: a}\n",
            "spec.http[0].match[0].uri.regex",
            "not a valid RE2 regex",
        ),
        (
            "hosts: [a]\nhttp:\n- match:\n  - uri: {exact: /a, prefix: /b}\n  route:\n  - destination: {host: a}\n",
            "spec.http[0].match[0].uri",
            "only one of exact, prefix or regex",
        ),
        (
            "hosts: [a]\nhttp:\n- route:\n  - destination: {host: a}\n  timeout: 10\n",
            "spec.http[0].timeout",
            "missing unit",
        ),
        (
            "hosts: [a]\nhttp:\n- route:\n  - destination: {host: a}\n  redirect: {uri: /b}\n",
            "spec.http[0]",
            "only one of route, redirect",
        ),
        (
            "hosts: [a]\nhttp:\n- fault: {abort: {httpStatus: 700}}\n  route:\n  - destination: {host: a}\n",
            "spec.http[0].fault.abort.httpStatus",
            "not in 200-599",
        ),
        (
            "hosts: [a]\nhttp:\n- route:\n  - destination: {host: a, subset: V_1}\n",
            "spec.http[0].route[0].destination.subset",
            "not a valid subset name",
        ),
        (
            "hosts: [a]\ntcp:\n- match:\n  - destinationSubnets: [10.0.0.0/33]\n  route:\n  - destination: {host: a}\n",
            "spec.tcp[0].match[0].destinationSubnets[0]",
            "prefix length",
        ),
        (
            "hosts: [a]\ntls:\n- match:\n  - port: 443\n  route:\n  - destination: {host: a}\n",
            "spec.tls[0].match[0].sniHosts",
            "at least one SNI host",
        ),
        ("hosts: [a]\n", "spec", "at least one http, tls or tcp route"),
        (
            "hosts: [a]\nexportTo: ['*', '.']\nhttp:\n- route:\n  - destination: {host: a}\n",
            "spec.exportTo",
            "only entry",
        ),
    ];
    assert_rejects(&cases, |spec| check(&vs(spec)));
}

#[test]
fn an_invalid_rule_is_reported_and_left_out_alone() {
    let text = "apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: good, namespace: bookinfo}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: bad, namespace: bookinfo}
spec:
  hosts: [ratings]
  http:
  - route:
    - destination: {host: ratings}
    retries: {attempts: 3, perTryTimeout: 0s}
";
    let parsed = crate::source::parse::parse_file(std::path::Path::new("vs.yaml"), text);
    let input = crate::source::InputSet {
        objects: parsed.objects,
        problems: parsed.problems,
    };
    let built = crate::mesh::build::build_model(&input);
    let keys: Vec<String> = built
        .model
        .virtual_services
        .keys()
        .map(|k| k.to_string())
        .collect();
    assert_eq!(keys, ["bookinfo/good"]);
    assert_eq!(built.problems.len(), 1);
    let message = built.problems[0].to_string();
    assert!(
        message.contains("VirtualService bookinfo/bad")
            && message.contains("spec.http[0].retries.perTryTimeout")
            && message.contains("shorter than 1ms"),
        "{message}"
    );
}

#[test]
fn direct_response_bodies_stay_within_a_mebibyte() {
    let body = "x".repeat(1024 * 1024 + 1);
    let spec =
        format!("hosts: [a]\nhttp:\n- directResponse: {{status: 200, body: {{string: {body}}}}}\n");
    assert_rejects(
        &[(
            spec.as_str(),
            "spec.http[0].directResponse.body.string",
            "at most 1048576",
        )],
        |spec| check(&vs(spec)),
    );
}
