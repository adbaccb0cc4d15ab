//! What routes do: destinations and weights, headers, timeouts, retries, faults, CORS,
//! mirrors, redirects, rewrites and direct responses.

use super::*;

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
