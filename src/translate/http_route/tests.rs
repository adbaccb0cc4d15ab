//! Routes built from VirtualServices written as users write them (YAML through the file
//! source and the model builder), checked field by field against istiod's output.

use std::collections::BTreeMap;

use envoy_types::pb::envoy::config::core::v3::header_value_option::HeaderAppendAction;
use envoy_types::pb::envoy::config::route::v3::{
    header_matcher::HeaderMatchSpecifier, query_parameter_matcher::QueryParameterMatchSpecifier,
    redirect_action::RedirectResponseCode, route::Action, route_action::ClusterSpecifier,
    route_action::HostRewriteSpecifier, route_match::PathSpecifier, Route, RouteAction,
};
use envoy_types::pb::envoy::extensions::filters::http::cors::v3::CorsPolicy;
use envoy_types::pb::envoy::extensions::filters::http::fault::v3::{fault_abort, HttpFault};
use envoy_types::pb::envoy::r#type::matcher::v3::string_matcher::MatchPattern;
use envoy_types::pb::google::protobuf::{Duration, UInt32Value};
use prost::Message;

use super::*;
use crate::mesh::build::build_model;
use crate::mesh::ObjectKey;
use crate::source::file::load_dir;
use crate::translate::route::DEFAULT_RETRY_ON;

const SERVICES: &str = "
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: default}
spec:
  clusterIP: 10.96.0.20
  selector: {app: reviews}
  ports: [{name: http, port: 9080}, {name: http-admin, port: 9090}]
---
apiVersion: v1
kind: Service
metadata: {name: ratings, namespace: default}
spec:
  clusterIP: 10.96.0.21
  selector: {app: ratings}
  ports: [{name: http, port: 8080}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
  - {name: v3, labels: {version: v3}}
  - {name: v4, labels: {version: v4}}
  - {name: v9, labels: {version: v9}}
  - {name: shadow, labels: {version: shadow}}
";

fn model(yaml: &str) -> MeshModel {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("objects.yaml"),
        format!("{SERVICES}---\n{yaml}"),
    )
    .unwrap();
    let input = load_dir(dir.path()).unwrap();
    assert!(input.problems.is_empty(), "{:?}", input.problems);
    let built = build_model(&input);
    assert!(built.problems.is_empty(), "{:?}", built.problems);
    built.model
}

fn vs_yaml(name: &str, spec: &str) -> String {
    let spec: String = spec.lines().map(|l| format!("  {l}\n")).collect();
    format!(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: {name}, namespace: default}}\nspec:\n{spec}"
    )
}

struct Proxy {
    namespace: &'static str,
    labels: BTreeMap<String, String>,
    gateway: GatewayRef,
}

fn sidecar(labels: &[(&str, &str)]) -> Proxy {
    Proxy {
        namespace: "default",
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        gateway: GatewayRef::Mesh,
    }
}

fn routes_as(proxy: &Proxy, model: &MeshModel, name: &str, port: u16) -> Vec<Route> {
    let ctx = RouteContext {
        model,
        proxy_namespace: proxy.namespace,
        proxy_labels: &proxy.labels,
        gateway: &proxy.gateway,
        hash_policies: &no_hash_policies,
    };
    let vs = &model.virtual_services[&ObjectKey {
        namespace: "default".into(),
        name: name.into(),
    }];
    build_routes(&ctx, vs, port)
}

/// The routes of VirtualService `reviews` (spec given) for a plain sidecar on 9080.
fn routes(spec: &str) -> Vec<Route> {
    let m = model(&vs_yaml("reviews", spec));
    routes_as(&sidecar(&[]), &m, "reviews", 9080)
}

fn action(r: &Route) -> &RouteAction {
    match &r.action {
        Some(Action::Route(a)) => a,
        other => panic!("not a route action: {other:?}"),
    }
}

fn cluster(r: &Route) -> &str {
    match &action(r).cluster_specifier {
        Some(ClusterSpecifier::Cluster(c)) => c,
        other => panic!("not one cluster: {other:?}"),
    }
}

fn per_filter<M: Message + Default>(r: &Route, filter: &str) -> M {
    M::decode(r.typed_per_filter_config[filter].value.as_slice()).unwrap()
}

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

#[test]
fn weights_headers_timeout_and_default_destination_port() {
    let r = routes(
        "hosts: [reviews]
http:
- timeout: 2.5s
  headers:
    request: {set: {x-route: r, host: rewritten.example}, add: {x-add: a}, remove: [x-gone, host]}
    response: {set: {x-resp: s}, remove: [server]}
  route:
  - destination: {host: reviews, subset: v1}
    weight: 80
    headers: {request: {set: {x-dest: one}}}
  - destination: {host: ratings, port: {number: 8080}}
    weight: 20
  - destination: {host: reviews, subset: v3}
    weight: 0",
    );
    let a = action(&r[0]);
    #[allow(deprecated)]
    let grpc = a.max_grpc_timeout;
    assert_eq!(
        a.timeout,
        Some(Duration {
            seconds: 2,
            nanos: 500_000_000
        })
    );
    assert_eq!(grpc, a.timeout);
    let Some(ClusterSpecifier::WeightedClusters(w)) = &a.cluster_specifier else {
        panic!("{:?}", a.cluster_specifier);
    };
    let clusters: Vec<(&str, u32)> = w
        .clusters
        .iter()
        .map(|c| (c.name.as_str(), c.weight.unwrap().value))
        .collect();
    assert_eq!(
        clusters,
        [
            ("outbound|9080|v1|reviews.default.svc.cluster.local", 80),
            ("outbound|8080||ratings.default.svc.cluster.local", 20),
        ],
        "zero weights are left out; the port defaults to the listener's"
    );
    assert_eq!(
        w.clusters[0].request_headers_to_add[0]
            .header
            .as_ref()
            .unwrap()
            .key,
        "x-dest"
    );
    let route = &r[0];
    let keys: Vec<(&str, i32)> = route
        .request_headers_to_add
        .iter()
        .map(|h| (h.header.as_ref().unwrap().key.as_str(), h.append_action))
        .collect();
    assert_eq!(
        keys,
        [
            ("x-route", HeaderAppendAction::OverwriteIfExistsOrAdd as i32),
            ("x-add", HeaderAppendAction::AppendIfExistsOrAdd as i32),
        ],
        "host is not a header Envoy may set"
    );
    assert_eq!(route.request_headers_to_remove, ["x-gone"]);
    assert_eq!(route.response_headers_to_remove, ["server"]);
    assert_eq!(
        a.host_rewrite_specifier,
        Some(HostRewriteSpecifier::HostRewriteLiteral(
            "rewritten.example".into()
        ))
    );
    assert_eq!(
        route.decorator.as_ref().unwrap().operation,
        "reviews:9080/*",
        "several destinations: named after the VirtualService"
    );
}

#[test]
fn istios_default_retries_unless_set() {
    let r = routes(
        "hosts: [reviews]
http:
- match: [{uri: {prefix: /none}}]
  retries: {attempts: 0}
  route: [{destination: {host: reviews}}]
- match: [{uri: {prefix: /custom}}]
  retries: {attempts: 4, perTryTimeout: 250ms, retryOn: '5xx,503,reset', retryRemoteLocalities: true}
  route: [{destination: {host: reviews}}]
- route: [{destination: {host: reviews}}]",
    );
    assert!(action(&r[0]).retry_policy.is_none(), "attempts 0 disables");
    let custom = action(&r[1]).retry_policy.as_ref().unwrap();
    assert_eq!(custom.num_retries, Some(UInt32Value { value: 4 }));
    assert_eq!(custom.retry_on, "5xx,reset,retriable-status-codes");
    assert_eq!(custom.retriable_status_codes, [503]);
    assert_eq!(
        custom.per_try_timeout,
        Some(Duration {
            seconds: 0,
            nanos: 250_000_000
        })
    );
    assert_eq!(
        custom.retry_priority.as_ref().unwrap().name,
        "envoy.retry_priorities.previous_priorities"
    );
    assert_eq!(custom.retry_host_predicate.len(), 1);
    let default = action(&r[2]).retry_policy.as_ref().unwrap();
    assert_eq!(default.retry_on, DEFAULT_RETRY_ON);
    assert_eq!(default.num_retries, Some(UInt32Value { value: 2 }));
}

#[test]
fn fault_cors_and_mirrors() {
    let r = routes(
        "hosts: [reviews]
http:
- fault:
    delay: {fixedDelay: 1s, percentage: {value: 12.5}}
    abort: {grpcStatus: UNAVAILABLE, percentage: {value: 100}}
  corsPolicy:
    allowOrigins: [{exact: 'https://a.example'}, {regex: 'https://.*\\.b\\.example'}]
    allowMethods: [GET, POST]
    allowHeaders: [x-a, x-b]
    exposeHeaders: [x-c]
    maxAge: 24h
    allowCredentials: true
    unmatchedPreflights: IGNORE
  mirrors:
  - destination: {host: ratings}
    percentage: {value: 25}
  - destination: {host: reviews, subset: shadow}
    percentage: {value: 0}
  route: [{destination: {host: reviews}}]",
    );
    let fault: HttpFault = per_filter(&r[0], "envoy.filters.http.fault");
    let delay = fault.delay.unwrap();
    assert_eq!(delay.percentage.unwrap().numerator, 125_000);
    let abort = fault.abort.unwrap();
    assert_eq!(
        abort.error_type,
        Some(fault_abort::ErrorType::GrpcStatus(14))
    );
    assert_eq!(abort.percentage.unwrap().numerator, 1_000_000);
    let cors: CorsPolicy = per_filter(&r[0], "envoy.filters.http.cors");
    assert_eq!(cors.allow_origin_string_match.len(), 2);
    assert_eq!(cors.allow_methods, "GET,POST");
    assert_eq!(cors.allow_headers, "x-a,x-b");
    assert_eq!(cors.expose_headers, "x-c");
    assert_eq!(cors.max_age, "86400");
    assert!(cors.allow_credentials.unwrap().value);
    assert!(!cors.forward_not_matching_preflights.unwrap().value);
    let mirrors = &action(&r[0]).request_mirror_policies;
    assert_eq!(mirrors.len(), 1, "0% mirrors nothing");
    assert_eq!(
        mirrors[0].cluster,
        "outbound|9080||ratings.default.svc.cluster.local"
    );
    assert_eq!(
        mirrors[0]
            .runtime_fraction
            .as_ref()
            .unwrap()
            .default_value
            .unwrap()
            .numerator,
        250_000
    );
}

#[test]
fn redirect_rewrite_and_direct_response() {
    let r = routes(
        "hosts: [reviews]
http:
- match: [{uri: {prefix: /old}}]
  redirect: {uri: /new, authority: new.example, redirectCode: 307, derivePort: FROM_REQUEST_PORT}
- match: [{uri: {prefix: /http}}]
  redirect: {scheme: http, port: 80}
- match: [{uri: {prefix: /v1}}]
  rewrite: {uri: /v2, authority: v2.reviews}
  route: [{destination: {host: reviews}}]
- match: [{uri: {prefix: /re}}]
  rewrite: {uriRegexRewrite: {match: '^/re/(.*)', rewrite: '/\\1'}}
  route: [{destination: {host: reviews}}]
- match: [{uri: {exact: /teapot}}]
  directResponse: {status: 418, body: {string: short and stout}}",
    );
    let Some(Action::Redirect(redirect)) = &r[0].action else {
        panic!("{:?}", r[0].action);
    };
    assert_eq!(redirect.host_redirect, "new.example");
    assert_eq!(redirect.port_redirect, 9080);
    assert_eq!(
        redirect.response_code,
        RedirectResponseCode::TemporaryRedirect as i32
    );
    assert_eq!(
        r[0].decorator.as_ref().unwrap().operation,
        "reviews:9080/old*"
    );
    let Some(Action::Redirect(http)) = &r[1].action else {
        panic!("{:?}", r[1].action);
    };
    assert_eq!(http.port_redirect, 0, "the scheme's own port is left out");
    let a = action(&r[2]);
    assert_eq!(a.prefix_rewrite, "/v2");
    assert_eq!(
        a.host_rewrite_specifier,
        Some(HostRewriteSpecifier::HostRewriteLiteral(
            "v2.reviews".into()
        ))
    );
    let regex = action(&r[3]).regex_rewrite.as_ref().unwrap();
    assert_eq!(regex.pattern.as_ref().unwrap().regex, "^/re/(.*)");
    assert_eq!(regex.substitution, "/\\1");
    let Some(Action::DirectResponse(direct)) = &r[4].action else {
        panic!("{:?}", r[4].action);
    };
    assert_eq!(direct.status, 418);
    assert!(r[4].typed_per_filter_config.is_empty());
}

#[test]
fn delegates_are_merged_under_the_parent_match() {
    let m = model(&format!(
        "{}---\n{}",
        vs_yaml(
            "reviews",
            "hosts: [reviews]
http:
- name: root
  match: [{uri: {prefix: /api}, headers: {x-team: {exact: a}}}]
  timeout: 3s
  delegate: {name: reviews-api}
- route: [{destination: {host: reviews, subset: v1}}]"
        ),
        vs_yaml(
            "reviews-api",
            "http:
- name: v2
  match: [{uri: {prefix: /api/v2}}]
  route: [{destination: {host: reviews, subset: v2}}]
- name: outside
  match: [{uri: {prefix: /other}}]
  route: [{destination: {host: reviews, subset: v9}}]
- name: rest
  route: [{destination: {host: reviews, subset: v1}}]
  timeout: 1s"
        )
    ));
    let r = routes_as(&sidecar(&[]), &m, "reviews", 9080);
    let names: Vec<&str> = r.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        ["root-v2", "root-rest", ""],
        "/other conflicts with /api"
    );
    let v2 = r[0].r#match.as_ref().unwrap();
    assert_eq!(
        v2.path_specifier,
        Some(PathSpecifier::Prefix("/api/v2".into()))
    );
    assert_eq!(
        v2.headers[0].name, "x-team",
        "the parent's header match is kept"
    );
    assert_eq!(
        action(&r[0]).timeout,
        Some(Duration {
            seconds: 3,
            nanos: 0
        })
    );
    assert_eq!(
        r[1].r#match.as_ref().unwrap().path_specifier,
        Some(PathSpecifier::Prefix("/api".into()))
    );
    assert_eq!(
        action(&r[1]).timeout,
        Some(Duration {
            seconds: 1,
            nanos: 0
        })
    );
    assert_eq!(
        cluster(&r[0]),
        "outbound|9080|v2|reviews.default.svc.cluster.local"
    );
}

#[test]
fn a_gateway_takes_the_only_port_of_a_single_port_service() {
    let m = model(&vs_yaml(
        "reviews",
        "hosts: [reviews]
gateways: [edge]
http:
- route: [{destination: {host: ratings}}]",
    ));
    let gateway = Proxy {
        gateway: GatewayRef::Gateway(ObjectKey {
            namespace: "default".into(),
            name: "edge".into(),
        }),
        ..sidecar(&[])
    };
    let r = routes_as(&gateway, &m, "reviews", 80);
    assert_eq!(
        cluster(&r[0]),
        "outbound|8080||ratings.default.svc.cluster.local"
    );
    let r = routes_as(&sidecar(&[]), &m, "reviews", 80);
    assert_eq!(
        cluster(&r[0]),
        "outbound|80||ratings.default.svc.cluster.local"
    );
}

#[test]
fn virtual_services_claim_services_and_other_hosts_per_port() {
    let m = model(&format!(
        "{}---\n{}",
        vs_yaml(
            "reviews",
            "hosts: [reviews, httpbin.org]
http:
- route: [{destination: {host: reviews, subset: v2}}]"
        ),
        vs_yaml(
            "ratings",
            "hosts: [ratings]
http:
- route: [{destination: {host: ratings}}]"
        )
    ));
    let proxy = sidecar(&[]);
    let ctx = RouteContext {
        model: &m,
        proxy_namespace: proxy.namespace,
        proxy_labels: &proxy.labels,
        gateway: &proxy.gateway,
        hash_policies: &no_hash_policies,
    };
    let vss: Vec<&VirtualService> = m.virtual_services.values().map(|v| v.as_ref()).collect();
    let reviews = m
        .service_by_hostname("reviews.default.svc.cluster.local")
        .unwrap();
    let (hosts, claimed) = vhost::port_virtual_hosts(&ctx, &vss, &[reviews.as_ref()], 9080);
    let names: Vec<&str> = hosts.iter().map(|h| h.hostname()).collect();
    assert_eq!(
        names,
        ["httpbin.org", "reviews.default.svc.cluster.local"],
        "ratings has no 9080, so its VirtualService adds nothing here"
    );
    assert_eq!(
        claimed.into_iter().collect::<Vec<_>>(),
        ["reviews.default.svc.cluster.local"]
    );
    let vh = hosts[0].virtual_host(9080, vec!["httpbin.org".into()]);
    assert_eq!(vh.name, "httpbin.org:9080");
    assert_eq!(
        cluster(&vh.routes[0]),
        "outbound|9080|v2|reviews.default.svc.cluster.local"
    );
    // Port 80, where no service listens: every VirtualService's hosts become plain hosts.
    let (hosts, claimed) = vhost::port_virtual_hosts(&ctx, &vss, &[], 80);
    let names: Vec<&str> = hosts.iter().map(|h| h.hostname()).collect();
    assert_eq!(
        names,
        [
            "ratings.default.svc.cluster.local",
            "reviews.default.svc.cluster.local",
            "httpbin.org"
        ]
    );
    assert!(claimed.is_empty());
}

#[test]
fn faults_without_percentages_touch_no_request() {
    let r = routes(
        "hosts: [reviews]
http:
- fault: {delay: {fixedDelay: 1s}, abort: {httpStatus: 500}}
  route: [{destination: {host: reviews}}]",
    );
    let fault: HttpFault = per_filter(&r[0], "envoy.filters.http.fault");
    assert_eq!(fault.delay.unwrap().percentage.unwrap().numerator, 0);
    assert_eq!(fault.abort.unwrap().percentage.unwrap().numerator, 0);
}
