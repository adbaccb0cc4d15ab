//! Match blocks: fields, one route per block, catch-alls, port and source checks.

use super::*;

#[test]
fn match_blocks_become_one_route_each_and_fields_are_anded() {
    let r = routes(
        "hosts: [reviews]
http:
- name: canary
  match:
  - name: jason
    uri: {prefix: /api}
    headers: {end-user: {exact: jason}, x-any: {regex: '.+'}, x-present: {}}
    withoutHeaders: {x-skip: {exact: '1'}, x-absent: {}}
    queryParams: {v: {regex: '^2.*'}}
    method: {exact: GET}
    authority: {prefix: reviews}
    scheme: {exact: http}
    ignoreUriCase: true
  - uri: {exact: /exact}
  - uri: {regex: '/r/[0-9]+'}
  route: [{destination: {host: reviews, subset: v2}}]
- route: [{destination: {host: reviews, subset: v1}}]",
    );
    assert_eq!(r.len(), 4);
    assert_eq!(r[0].name, "canary.jason");
    assert_eq!(r[1].name, "canary");
    let m = r[0].r#match.as_ref().unwrap();
    assert_eq!(m.path_specifier, Some(PathSpecifier::Prefix("/api".into())));
    assert!(!m.case_sensitive.unwrap().value);
    let names: Vec<&str> = m.headers.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "end-user",
            "x-absent",
            "x-any",
            "x-present",
            "x-skip",
            ":method",
            ":authority",
            ":scheme"
        ]
    );
    assert_eq!(
        m.headers[3].header_match_specifier,
        Some(HeaderMatchSpecifier::PresentMatch(true)),
        "an empty match asks for presence"
    );
    assert!(
        m.headers[1].invert_match && !m.headers[1].treat_missing_header_as_empty,
        "withoutHeaders {{}}: absent (Envoy forbids treat_missing with presence)"
    );
    assert!(matches!(
        &m.headers[2].header_match_specifier,
        Some(HeaderMatchSpecifier::StringMatch(s))
            if matches!(&s.match_pattern, Some(MatchPattern::SafeRegex(r)) if r.regex == ".+")
    ));
    assert!(m.headers[4].invert_match && m.headers[4].treat_missing_header_as_empty);
    match &m.query_parameters[0].query_parameter_match_specifier {
        Some(QueryParameterMatchSpecifier::StringMatch(s)) => assert!(matches!(
            &s.match_pattern,
            Some(MatchPattern::SafeRegex(r)) if r.regex == "^2.*"
        )),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        r[1].r#match.as_ref().unwrap().path_specifier,
        Some(PathSpecifier::Path("/exact".into()))
    );
    assert!(matches!(
        &r[2].r#match.as_ref().unwrap().path_specifier,
        Some(PathSpecifier::SafeRegex(x)) if x.regex == "/r/[0-9]+"
    ));
    assert_eq!(
        cluster(&r[0]),
        "outbound|9080|v2|reviews.default.svc.cluster.local"
    );
    assert_eq!(
        cluster(&r[3]),
        "outbound|9080|v1|reviews.default.svc.cluster.local"
    );
    // Decorators: host:port + path for one destination.
    let ops: Vec<&str> = r
        .iter()
        .map(|r| r.decorator.as_ref().unwrap().operation.as_str())
        .collect();
    assert_eq!(
        ops,
        [
            "reviews.default.svc.cluster.local:9080/api*",
            "reviews.default.svc.cluster.local:9080/exact",
            "reviews.default.svc.cluster.local:9080/r/[0-9]+",
            "reviews.default.svc.cluster.local:9080/*",
        ]
    );
    let meta = &r[0].metadata.as_ref().unwrap().filter_metadata["istio"];
    assert_eq!(
        meta.fields["config"].kind,
        Some(envoy_types::pb::google::protobuf::value::Kind::StringValue(
            "/apis/networking.istio.io/v1/namespaces/default/virtual-service/reviews".into()
        ))
    );
}

#[test]
fn routes_after_a_catch_all_are_left_out() {
    let r = routes(
        "hosts: [reviews]
http:
- match: [{uri: {prefix: /a}}, {uri: {prefix: /}}, {uri: {prefix: /b}}]
  route: [{destination: {host: reviews}}]
- route: [{destination: {host: ratings}}]",
    );
    assert_eq!(r.len(), 2, "the prefix / block ends the list");
    assert!(is_catch_all(&r[1]));
}

#[test]
fn port_and_source_matches_leave_blocks_out_for_other_ports_and_proxies() {
    let m = model(&vs_yaml(
        "reviews",
        "hosts: [reviews]
http:
- match: [{port: 9090, uri: {prefix: /admin}}]
  route: [{destination: {host: reviews}}]
- match: [{sourceLabels: {app: productpage}, uri: {prefix: /p}}]
  route: [{destination: {host: reviews, subset: v2}}]
- match: [{sourceNamespace: other, uri: {prefix: /o}}]
  route: [{destination: {host: reviews, subset: v3}}]
- match: [{gateways: [mesh], uri: {prefix: /m}}, {gateways: [edge], uri: {prefix: /g}}]
  route: [{destination: {host: reviews, subset: v4}}]
- route: [{destination: {host: reviews, subset: v1}}]",
    ));
    let prefixes = |routes: Vec<Route>| -> Vec<String> {
        routes
            .iter()
            .map(|r| match &r.r#match.as_ref().unwrap().path_specifier {
                Some(PathSpecifier::Prefix(p)) => p.clone(),
                other => panic!("{other:?}"),
            })
            .collect()
    };
    let plain = sidecar(&[]);
    assert_eq!(
        prefixes(routes_as(&plain, &m, "reviews", 9080)),
        ["/m", "/"]
    );
    assert_eq!(
        prefixes(routes_as(&plain, &m, "reviews", 9090)),
        ["/admin", "/m", "/"]
    );
    let productpage = sidecar(&[("app", "productpage"), ("version", "v1")]);
    assert_eq!(
        prefixes(routes_as(&productpage, &m, "reviews", 9080)),
        ["/p", "/m", "/"]
    );
    let other = Proxy {
        namespace: "other",
        ..sidecar(&[])
    };
    assert_eq!(
        prefixes(routes_as(&other, &m, "reviews", 9080)),
        ["/o", "/m", "/"]
    );
    let gateway = Proxy {
        gateway: GatewayRef::Gateway(ObjectKey {
            namespace: "default".into(),
            name: "edge".into(),
        }),
        ..sidecar(&[])
    };
    assert_eq!(
        prefixes(routes_as(&gateway, &m, "reviews", 9080)),
        ["/g", "/"]
    );
}
