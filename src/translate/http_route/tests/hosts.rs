//! Delegation, and which virtual hosts VirtualServices give a port.

use super::*;

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
