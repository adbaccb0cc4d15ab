//! ServiceEntry hosts through the Translator: DNS clusters carry their endpoints inline, so
//! an endpoint-only change of a DNS entry rebuilds the clusters (and the inbound parts that
//! embed them), while a WorkloadEntry that moves behind a STATIC entry only touches EDS.

use super::*;
use crate::mesh::build::yaml_fixture::build_clean;

fn entries(dns_address: &str, vm_address: &str) -> Arc<MeshModel> {
    let yaml = format!(
        "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: dns, namespace: ext}}
spec:
  hosts: [dns.example.com]
  ports: [{{number: 443, name: tls, protocol: TLS}}]
  resolution: DNS
  endpoints: [{{address: {dns_address}}}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: static, namespace: ext}}
spec:
  hosts: [static.example.com]
  addresses: [240.0.0.1]
  ports: [{{number: 8080, name: http, protocol: HTTP}}]
  resolution: STATIC
  workloadSelector: {{labels: {{app: vm}}}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: vm-1, namespace: ext}}
spec: {{address: {vm_address}, labels: {{app: vm}}}}
"
    );
    let built = build_clean(&yaml);
    Arc::new(built.model)
}

#[test]
fn endpoint_changes_of_dns_entries_rebuild_clusters() {
    let node = proxy("sidecar~10.244.1.12~reviews-v1.default~default.svc.cluster.local");
    let first = Translator::new(entries("a.example.com", "192.0.2.1"));
    let before = first.proxy_resources(&node);
    let dns = "outbound|443||dns.example.com";
    assert!(before.of_type(type_url::CLUSTER).contains_key(dns));

    // The WorkloadEntry behind the STATIC entry moves: EDS changes, the rest is carried.
    let second = Translator::next(&first, entries("a.example.com", "192.0.2.2"));
    let after = second.proxy_resources(&node);
    for url in [type_url::CLUSTER, type_url::LISTENER, type_url::ROUTE] {
        assert!(
            Arc::ptr_eq(&before.of_type(url), &after.of_type(url)),
            "{url}"
        );
    }
    assert_ne!(
        before.of_type(type_url::ENDPOINT),
        after.of_type(type_url::ENDPOINT)
    );

    // The DNS entry's endpoint moves: the inline load assignment changes.
    let third = Translator::next(&second, entries("b.example.com", "192.0.2.2"));
    let changed = third.proxy_resources(&node);
    let cluster = |r: &ProxyResources| {
        Cluster::decode(&r.of_type(type_url::CLUSTER)[dns].body.value[..]).unwrap()
    };
    assert_ne!(
        cluster(&after).load_assignment,
        cluster(&changed).load_assignment
    );
    let fresh = Translator::new(entries("b.example.com", "192.0.2.2")).proxy_resources(&node);
    assert_eq!(cluster(&changed), cluster(&fresh));
    for url in [type_url::CLUSTER, type_url::LISTENER] {
        assert_eq!(changed.of_type(url), fresh.of_type(url), "{url}");
    }
}

#[test]
fn entries_are_seen_where_exported_and_within_sidecar_egress() {
    let yaml = "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: private, namespace: ext}
spec:
  hosts: [private.example.com]
  ports: [{number: 443, name: tls, protocol: TLS}]
  resolution: DNS
  exportTo: [.]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: public, namespace: ext}
spec:
  hosts: [public.example.com]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: scoped}
spec:
  egress: [{hosts: [./*]}]
";
    let built = build_clean(yaml);
    let t = Translator::new(Arc::new(built.model));
    let clusters = |ns: &str| -> Vec<String> {
        let node = proxy(&format!(
            "sidecar~10.244.1.5~app.{ns}~{ns}.svc.cluster.local"
        ));
        t.proxy_resources(&node)
            .of_type(type_url::CLUSTER)
            .keys()
            .filter(|k| k.starts_with("outbound|"))
            .cloned()
            .collect()
    };
    assert_eq!(
        clusters("ext"),
        [
            "outbound|443||private.example.com",
            "outbound|80||public.example.com"
        ]
    );
    assert_eq!(clusters("web"), ["outbound|80||public.example.com"]);
    assert!(clusters("scoped").is_empty(), "egress ./* leaves out ext");
    let routes = |ns: &str| {
        let node = proxy(&format!(
            "sidecar~10.244.1.5~app.{ns}~{ns}.svc.cluster.local"
        ));
        t.proxy_resources(&node).of_type(type_url::ROUTE).len()
    };
    assert_eq!(routes("web"), 1);
}

#[test]
fn subsets_of_dns_entries_carry_their_endpoints_inline() {
    let yaml = "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: db, namespace: ext}
spec:
  hosts: [db.example.com]
  ports: [{number: 5432, name: tcp-pg, protocol: TCP}]
  resolution: DNS
  endpoints:
  - {address: primary.db.example.com, labels: {role: primary}}
  - {address: replica.db.example.com, labels: {role: replica}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: db, namespace: ext}
spec:
  host: db.example.com
  subsets:
  - {name: primary, labels: {role: primary}}
  - {name: none, labels: {role: gone}}
";
    let built = build_clean(yaml);
    let t = Translator::new(Arc::new(built.model));
    let r = t.proxy_resources(&proxy("sidecar~10.244.1.5~app.ext~ext.svc.cluster.local"));
    let hosts = |name: &str| -> Vec<String> {
        use envoy_types::pb::envoy::config::core::v3::address::Address as Kind;
        use envoy_types::pb::envoy::config::endpoint::v3::lb_endpoint::HostIdentifier;
        let c = Cluster::decode(&r.of_type(type_url::CLUSTER)[name].body.value[..]).unwrap();
        c.load_assignment.unwrap().endpoints[0]
            .lb_endpoints
            .iter()
            .map(|e| match &e.host_identifier {
                Some(HostIdentifier::Endpoint(ep)) => match &ep.address.as_ref().unwrap().address {
                    Some(Kind::SocketAddress(a)) => a.address.clone(),
                    other => panic!("{other:?}"),
                },
                other => panic!("{other:?}"),
            })
            .collect()
    };
    assert_eq!(
        hosts("outbound|5432||db.example.com"),
        ["primary.db.example.com", "replica.db.example.com"]
    );
    assert_eq!(
        hosts("outbound|5432|primary|db.example.com"),
        ["primary.db.example.com"]
    );
    assert!(
        !r.of_type(type_url::CLUSTER)
            .contains_key("outbound|5432|none|db.example.com"),
        "a DNS subset without endpoints has no cluster"
    );
    assert!(
        r.of_type(type_url::ENDPOINT).is_empty(),
        "DNS clusters take no EDS"
    );
}
