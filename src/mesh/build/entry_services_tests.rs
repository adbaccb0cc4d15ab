use std::path::Path;

use super::*;
use crate::mesh::build::yaml_fixture::build_clean;
use crate::mesh::build::{build_model, Built};
use crate::mesh::traffic::Location;
use crate::source::parse::parse_file;
use crate::source::InputSet;

fn key(ns: &str, name: &str) -> ObjectKey {
    ObjectKey {
        namespace: ns.into(),
        name: name.into(),
    }
}

fn addresses(built: &Built, ns: &str, host: &str, port: u16) -> Vec<String> {
    built
        .model
        .endpoints_of(&key(ns, host), port)
        .unwrap_or_else(|| panic!("no endpoints for {ns}/{host}:{port}"))
        .endpoints
        .iter()
        .map(|e| format!("{}:{}", e.address, e.port))
        .collect()
}

#[test]
fn each_host_becomes_a_service_with_the_entry_attributes() {
    let built = build_clean(
        "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ext, namespace: shop}
spec:
  hosts: [api.example.com, legacy]
  addresses: [240.0.0.9]
  ports:
  - {number: 443, name: tls, protocol: TLS}
  - {number: 8080, name: http, protocol: HTTP, targetPort: 80}
  location: MESH_INTERNAL
  resolution: STATIC
  exportTo: [.]
  endpoints:
  - {address: 10.1.0.5, ports: {tls: 8443}}
  - {address: 10.1.0.6, locality: eu/eu-west-1a, serviceAccount: vm}
",
    );
    let svc = built
        .model
        .service_by_hostname("api.example.com")
        .expect("by hostname");
    assert_eq!(svc.key, key("shop", "api.example.com"));
    assert_eq!(svc.resolution(), Resolution::Static);
    assert!(!svc.mesh_external());
    assert_eq!(svc.vips(), ["240.0.0.9"]);
    assert!(svc.export_to().visible_to("shop"));
    assert!(!svc.export_to().visible_to("web"));
    assert_eq!(svc.ports[1].target_port, TargetPort::Number(80));
    let ServiceOrigin::ServiceEntry(attrs) = &svc.origin else {
        panic!("origin {:?}", svc.origin);
    };
    assert_eq!(attrs.entry, key("shop", "ext"));
    assert_eq!(attrs.location, Location::MeshInternal);
    // The short host resolves in the entry's namespace.
    assert!(built
        .model
        .service_by_hostname("legacy.shop.svc.cluster.local")
        .is_some());
    assert_eq!(
        addresses(&built, "shop", "api.example.com", 443),
        ["10.1.0.5:8443", "10.1.0.6:443"]
    );
    assert_eq!(
        addresses(&built, "shop", "api.example.com", 8080),
        ["10.1.0.5:80", "10.1.0.6:80"],
        "no port of that name: the target port"
    );
    let eps = &built
        .model
        .endpoints_of(&key("shop", "api.example.com"), 443)
        .unwrap()
        .endpoints;
    assert!(!eps[0].mtls_ready);
    assert!(eps[1].mtls_ready, "a service account means a sidecar");
    assert_eq!(eps[1].zone.as_deref(), Some("eu-west-1a"));
}

#[test]
fn dns_entries_without_endpoints_resolve_their_host() {
    let built = build_clean(
        "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ext, namespace: shop}
spec:
  hosts: [api.example.com]
  ports: [{number: 443, name: tls, protocol: TLS}]
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: none, namespace: shop}
spec:
  hosts: [any.example.com]
  ports: [{number: 80, name: http}]
",
    );
    assert_eq!(
        addresses(&built, "shop", "api.example.com", 443),
        ["api.example.com:443"]
    );
    assert!(addresses(&built, "shop", "any.example.com", 80).is_empty());
    let svc = built.model.service_by_hostname("any.example.com").unwrap();
    assert_eq!(svc.resolution(), Resolution::None);
    assert!(svc.mesh_external(), "MESH_EXTERNAL by default");
}

#[test]
fn a_workload_selector_picks_workload_entries_and_pods_of_the_namespace() {
    let built = build_clean(
        "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: vms, namespace: shop}
spec:
  hosts: [vm.shop.internal]
  ports: [{number: 9080, name: http, targetPort: 8080}]
  location: MESH_INTERNAL
  resolution: STATIC
  workloadSelector: {labels: {app: vm}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: vm-1, namespace: shop, labels: {app: vm}}
spec: {address: 10.2.0.1, ports: {http: 9999}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: vm-2, namespace: shop}
spec: {address: 10.2.0.2, labels: {app: vm}, serviceAccount: vm}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: by-name, namespace: shop}
spec: {address: vm3.example.com, labels: {app: vm}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: elsewhere, namespace: web}
spec: {address: 10.2.0.4, labels: {app: vm}}
---
apiVersion: v1
kind: Pod
metadata: {name: vm-pod, namespace: shop, labels: {app: vm}}
spec: {containers: [{name: app}]}
status:
  podIP: 10.3.0.1
  conditions: [{type: Ready, status: 'True'}]
",
    );
    assert_eq!(
        addresses(&built, "shop", "vm.shop.internal", 9080),
        ["10.2.0.1:9999", "10.2.0.2:8080", "10.3.0.1:8080"],
        "metadata labels select too; a DNS name only for DNS resolution; own namespace only"
    );
}

#[test]
fn external_name_services_resolve_the_external_name() {
    let built = build_clean(
        "apiVersion: v1
kind: Service
metadata: {name: db, namespace: shop}
spec:
  type: ExternalName
  externalName: DB.Example.com.
  ports: [{name: tcp-pg, port: 5432}]
",
    );
    let svc = &built.model.services[&key("shop", "db")];
    assert_eq!(svc.hostname, "db.shop.svc.cluster.local");
    assert_eq!(
        svc.origin,
        ServiceOrigin::ExternalName("db.example.com".into())
    );
    assert_eq!(svc.resolution(), Resolution::Dns);
    assert_eq!(
        addresses(&built, "shop", "db", 5432),
        ["db.example.com:5432"]
    );
}

#[test]
fn bad_external_names_are_rejected_with_the_field() {
    for (name, reason) in [
        ("''", "needs an external name"),
        ("10.0.0.1", "not a DNS name"),
    ] {
        let parsed = parse_file(
            Path::new("t.yaml"),
            &format!(
                "apiVersion: v1
kind: Service
metadata: {{name: db, namespace: shop}}
spec: {{type: ExternalName, externalName: {name}, ports: [{{port: 5432}}]}}
"
            ),
        );
        let built = build_model(&InputSet {
            objects: parsed.objects,
            problems: Vec::new(),
        });
        assert_eq!(built.problems.len(), 1, "{name}");
        let problem = &built.problems[0];
        assert_eq!(problem.field.as_deref(), Some("spec.externalName"));
        assert!(problem.reason.contains(reason), "{}", problem.reason);
    }
}
