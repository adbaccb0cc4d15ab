use std::path::Path;

use super::*;
use crate::mesh::model::{Endpoint, TargetPort};
use crate::mesh::Protocol;
use crate::source::parse::parse_file;

fn build(yaml: &str) -> Built {
    let parsed = parse_file(Path::new("t.yaml"), yaml);
    assert!(parsed.problems.is_empty(), "{:?}", parsed.problems);
    build_model(&InputSet {
        objects: parsed.objects,
        problems: Vec::new(),
    })
}

fn key(ns: &str, name: &str) -> ObjectKey {
    ObjectKey {
        namespace: ns.to_string(),
        name: name.to_string(),
    }
}

fn endpoints(built: &Built, ns: &str, svc: &str, port: u16) -> Vec<Endpoint> {
    built
        .model
        .endpoints_of(&key(ns, svc), port)
        .unwrap_or_else(|| panic!("no endpoints entry for {ns}/{svc}:{port}"))
        .endpoints
        .clone()
}

fn addresses(eps: &[Endpoint]) -> Vec<String> {
    eps.iter()
        .map(|e| format!("{}:{}", e.address, e.port))
        .collect()
}

fn pod(name: &str, labels: &str, ip: &str, ready: bool, ports: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: ns\n  labels: {labels}\nspec:\n  serviceAccountName: sa-{name}\n  containers:\n  - name: app\n    ports: {ports}\nstatus:\n  podIP: {ip}\n  conditions:\n  - type: Ready\n    status: \"{}\"\n---\n",
        if ready { "True" } else { "False" }
    )
}

const SERVICE: &str = "apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: ns
spec:
  clusterIP: 10.96.0.5
  selector:
    app: web
  ports:
  - name: http-main
    port: 80
    targetPort: web
  - name: grpc
    port: 81
    targetPort: 9000
  - name: metrics
    port: 82
    appProtocol: http2
  - name: dns
    port: 53
    protocol: UDP
---
";

#[test]
fn services_get_hostnames_ports_and_protocols() {
    let built = build(SERVICE);
    assert!(built.problems.is_empty(), "{:?}", built.problems);
    let svc = &built.model.services[&key("ns", "web")];
    assert_eq!(svc.hostname, "web.ns.svc.cluster.local");
    assert_eq!(svc.cluster_ip.as_deref(), Some("10.96.0.5"));
    let ports: Vec<_> = svc.ports.iter().map(|p| (p.port, p.protocol)).collect();
    // The UDP port is not proxied.
    assert_eq!(
        ports,
        [
            (80, Protocol::Http),
            (81, Protocol::Grpc),
            (82, Protocol::Http2)
        ]
    );
    assert_eq!(svc.ports[0].target_port, TargetPort::Name("web".into()));
    assert_eq!(svc.ports[2].target_port, TargetPort::Number(82));
    assert!(built
        .model
        .service_by_hostname("web.ns.svc.cluster.local")
        .is_some());
    assert!(built.model.namespaces.contains("ns"));
}

#[test]
fn headless_services_have_no_cluster_ip() {
    let built = build(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: h\nspec:\n  clusterIP: None\n  ports:\n  - port: 5432\n",
    );
    assert!(built.problems.is_empty(), "{:?}", built.problems);
    let svc = &built.model.services[&key("default", "h")];
    assert_eq!(svc.cluster_ip, None);
    assert_eq!(svc.ports[0].protocol, Protocol::Unsupported);
}

#[test]
fn endpoints_from_ready_selected_pods_resolve_named_target_ports() {
    let named = "[{name: web, containerPort: 8080}]";
    let input = [
        SERVICE.to_string(),
        pod(
            "a",
            "{app: web, security.istio.io/tlsMode: istio}",
            "10.1.0.2",
            true,
            named,
        ),
        pod("b", "{app: web}", "10.1.0.1", true, "[]"),
        pod("c", "{app: web}", "10.1.0.3", false, named),
        pod("d", "{app: other}", "10.1.0.4", true, named),
    ]
    .concat();
    let built = build(&input);
    assert!(built.problems.is_empty(), "{:?}", built.problems);
    // `b` has no port named `web`: it serves 81 only.
    assert_eq!(
        addresses(&endpoints(&built, "ns", "web", 80)),
        ["10.1.0.2:8080"]
    );
    assert_eq!(
        addresses(&endpoints(&built, "ns", "web", 81)),
        ["10.1.0.1:9000", "10.1.0.2:9000"]
    );
    let ep = &endpoints(&built, "ns", "web", 80)[0];
    assert_eq!(ep.workload, Some(key("ns", "a")));
    assert_eq!(ep.service_account.as_deref(), Some("sa-a"));
    assert!(ep.mtls_ready && ep.ready);
    let a = &built.model.workloads[&key("ns", "a")];
    assert_eq!(a.named_ports["web"], 8080);
    assert_eq!(built.model.workloads_by_ip["10.1.0.3"], key("ns", "c"));
    assert!(!built.model.workloads[&key("ns", "c")].ready);
}

#[test]
fn endpoints_from_slices_replace_pod_derivation() {
    let slice = "apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-x1
  namespace: ns
  labels:
    kubernetes.io/service-name: web
addressType: IPv4
ports:
- name: http-main
  port: 8080
- name: grpc
  port: 9000
endpoints:
- addresses: [10.1.0.9]
  conditions: {ready: false}
  zone: z1
- addresses: [10.1.0.2]
  targetRef: {kind: Pod, name: a, namespace: ns}
- addresses: [10.1.0.7]
---
";
    let input = [
        SERVICE.to_string(),
        slice.to_string(),
        pod(
            "a",
            "{app: web, security.istio.io/tlsMode: istio}",
            "10.1.0.2",
            true,
            "[]",
        ),
        // Selected by the service but ignored: the service has a slice.
        pod("b", "{app: web}", "10.1.0.1", true, "[]"),
        pod("c", "{app: other}", "10.1.0.7", true, "[]"),
    ]
    .concat();
    let built = build(&input);
    assert!(built.problems.is_empty(), "{:?}", built.problems);
    let eps = endpoints(&built, "ns", "web", 80);
    assert_eq!(
        addresses(&eps),
        ["10.1.0.2:8080", "10.1.0.7:8080", "10.1.0.9:8080"]
    );
    assert_eq!(eps[0].workload, Some(key("ns", "a")));
    assert!(eps[0].mtls_ready);
    // Matched by IP when there is no targetRef.
    assert_eq!(eps[1].workload, Some(key("ns", "c")));
    assert!(eps[1].ready);
    assert!(!eps[2].ready);
    assert_eq!(eps[2].zone.as_deref(), Some("z1"));
    assert_eq!(eps[2].workload, None);
    // No slice port named `metrics`: an empty entry.
    assert!(endpoints(&built, "ns", "web", 82).is_empty());
}

#[test]
fn invalid_objects_are_rejected_alone() {
    let input = "apiVersion: v1
kind: Service
metadata:
  name: big
spec:
  ports:
  - name: http
    port: 70000
---
apiVersion: v1
kind: Service
metadata:
  name: twice
spec:
  ports:
  - {name: a, port: 80}
  - {name: b, port: 80}
---
apiVersion: v1
kind: Service
metadata:
  name: ok
spec:
  ports:
  - port: 80
---
apiVersion: v1
kind: Service
metadata:
  name: ok
spec:
  ports:
  - port: 81
---
apiVersion: v1
kind: Service
metadata:
  name: Bad_Name
spec:
  ports:
  - port: 80
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: orphan
addressType: IPv4
---
apiVersion: v1
kind: Pod
metadata:
  name: p
status:
  podIP: 10.0.0.300
";
    let built = build(input);
    let found: Vec<_> = built
        .problems
        .iter()
        .map(|p| {
            format!(
                "{} {} {}",
                p.object.as_ref().unwrap(),
                p.field.as_deref().unwrap_or("-"),
                p.origin.document
            )
        })
        .collect();
    assert_eq!(
        found,
        [
            "Service default/ok metadata.name 3",
            "Service default/big spec.ports[0].port 0",
            "Service default/twice spec.ports[1].port 1",
            "Service default/Bad_Name metadata.name 4",
            "EndpointSlice default/orphan metadata.labels[kubernetes.io/service-name] 5",
            "Pod default/p status.podIP 6",
        ]
    );
    assert!(built.problems[0].reason.contains("duplicate"));
    assert!(built.problems[1].reason.contains("70000"));
    let services: Vec<_> = built.model.services.keys().map(|k| k.to_string()).collect();
    assert_eq!(services, ["default/ok"]);
    assert_eq!(
        built.model.services[&key("default", "ok")].ports[0].port,
        80
    );
}

#[test]
fn bookinfo_builds_cleanly() {
    let input = crate::source::file::load_dir(Path::new("testdata/bookinfo")).unwrap();
    assert!(input.problems.is_empty(), "{:?}", input.problems);
    let built = build_model(&input);
    assert!(built.problems.is_empty(), "{:?}", built.problems);
    let m = &built.model;
    assert_eq!(m.namespaces.iter().collect::<Vec<_>>(), ["default", "shop"]);
    assert_eq!(m.services.len(), 6);
    assert_eq!(m.workloads.len(), 9);
    assert_eq!(
        addresses(&endpoints(&built, "default", "reviews", 9080)),
        ["10.244.1.12:9080", "10.244.1.13:9080", "10.244.1.14:9080"]
    );
    assert_eq!(
        addresses(&endpoints(&built, "default", "ratings", 9080)),
        ["10.244.1.15:9080"]
    );
    assert_eq!(
        addresses(&endpoints(&built, "shop", "db", 5432)),
        ["10.244.2.10:5432"]
    );
    let inventory = &m.services[&key("shop", "inventory")];
    assert_eq!(inventory.ports[0].protocol, Protocol::Grpc);
    assert_eq!(
        m.services[&key("shop", "db")].ports[0].protocol,
        Protocol::Tcp
    );
    let reviews = endpoints(&built, "default", "reviews", 9080);
    assert!(reviews.iter().all(|e| e.mtls_ready
        && e.service_account.as_deref() == Some("bookinfo-reviews")
        && e.zone.is_some()));
}

#[test]
fn model_builder_keeps_the_last_valid_version_of_an_object() {
    let svc = |port: u32, name: &str| {
        format!("apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\nspec:\n  ports:\n  - port: {port}\n---\n")
    };
    let input = |text: &str| InputSet {
        objects: parse_file(Path::new("t.yaml"), text).objects,
        problems: Vec::new(),
    };
    let port_of = |built: &Built, name: &str| {
        built
            .model
            .services
            .get(&key("default", name))
            .map(|s| s.ports[0].port)
    };
    let mut builder = ModelBuilder::default();
    let built = builder.build(&input(&[svc(80, "a"), svc(80, "b")].concat()));
    assert!(built.problems.is_empty());

    // `a` breaks: still served as it was, with the problem reported. `c` was never valid.
    let built = builder.build(&input(
        &[svc(70000, "a"), svc(81, "b"), svc(0, "c")].concat(),
    ));
    assert_eq!(port_of(&built, "a"), Some(80));
    assert_eq!(port_of(&built, "b"), Some(81));
    assert_eq!(port_of(&built, "c"), None);
    assert_eq!(built.problems.len(), 2);
    assert!(built.problems[0]
        .reason
        .ends_with("keeping its last valid version"));

    // Still broken: still kept. Then removed from the input: gone.
    let built = builder.build(&input(&[svc(70001, "a"), svc(81, "b")].concat()));
    assert_eq!(port_of(&built, "a"), Some(80));
    let built = builder.build(&input(&svc(81, "b")));
    assert_eq!(port_of(&built, "a"), None);
    assert!(built.problems.is_empty());

    // The stateless builder rejects without memory.
    assert_eq!(port_of(&build_model(&input(&svc(70000, "a"))), "a"), None);
}

#[test]
fn services_sharing_a_cluster_ip_are_kept_and_the_later_reported() {
    let svc = |name: &str, ip: &str| {
        format!("apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  namespace: ns\nspec:\n  clusterIP: {ip}\n  ports:\n  - port: 80\n---\n")
    };
    // Input order, not name order, decides which one is reported.
    let built = build(&format!(
        "{}{}{}",
        svc("zeta", "10.96.0.7"),
        svc("alpha", "10.96.0.7"),
        svc("other", "10.96.0.8")
    ));
    assert_eq!(built.model.services.len(), 3);
    for name in ["zeta", "alpha"] {
        let ip = built.model.services[&key("ns", name)].cluster_ip.as_deref();
        assert_eq!(ip, Some("10.96.0.7"));
    }
    assert_eq!(built.problems.len(), 1, "{:?}", built.problems);
    let problem = &built.problems[0];
    assert_eq!(problem.object.as_ref().unwrap().name, "alpha");
    assert_eq!(problem.field.as_deref(), Some("spec.clusterIP"));
    assert!(problem.reason.contains("ns/zeta"), "{}", problem.reason);
    assert_eq!(problem.origin.document, 1);
}
