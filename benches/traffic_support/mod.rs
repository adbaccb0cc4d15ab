//! A mesh driven by Istio traffic rules, written as the YAML users apply: N HTTP services
//! over 10 namespaces, each with pods of two versions, a VirtualService with three matches
//! (a header to v2, a path prefix to v1, a 90/10 split) bound to the mesh and to an ingress
//! Gateway, and a DestinationRule with two subsets and a traffic policy. Optionally a
//! root-namespace Sidecar that limits every proxy to its own namespace (`./*`).

use std::fmt::Write as _;
use std::path::Path;

use meshd::mesh::build::build_model;
use meshd::mesh::{MeshModel, ProxyId};
use meshd::source::file::load_dir;

pub const NAMESPACES: usize = 10;

fn objects(services: usize, with_sidecar: bool) -> String {
    let mut y = String::new();
    for n in 0..NAMESPACES {
        let _ = write!(
            y,
            "apiVersion: v1\nkind: Namespace\nmetadata: {{name: ns-{n}}}\n---\n"
        );
    }
    y.push_str(
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: istio-system}\n---\n\
         apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: ingress, namespace: istio-system}\n\
         spec:\n  selector: {istio: ingressgateway}\n  servers:\n  - port: {number: 80, name: http, protocol: HTTP}\n    hosts: ['*/*']\n---\n",
    );
    if with_sidecar {
        y.push_str(
            "apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {name: default, namespace: istio-system}\n\
             spec:\n  egress:\n  - hosts: ['./*']\n---\n",
        );
    }
    for i in 0..services {
        let ns = format!("ns-{}", i % NAMESPACES);
        let name = format!("svc-{i}");
        let port = 8000 + (i % 50);
        let _ = write!(
            y,
            "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: {ns}}}\n\
             spec:\n  clusterIP: 240.{a}.{b}.{c}\n  selector: {{app: {name}}}\n  ports:\n  - {{name: http, port: {port}, targetPort: 8080}}\n---\n",
            a = (i >> 16) & 0xff,
            b = (i >> 8) & 0xff,
            c = i & 0xff,
        );
        for (p, version) in ["v1", "v1", "v2"].iter().enumerate() {
            let _ = write!(
                y,
                "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}-{p}\n  namespace: {ns}\n  labels: {{app: {name}, version: {version}}}\n\
                 spec:\n  containers:\n  - name: app\n    ports:\n    - containerPort: 8080\n\
                 status:\n  phase: Running\n  podIP: 241.{a}.{b}.{p}\n  conditions:\n  - {{type: Ready, status: 'True'}}\n---\n",
                a = (i >> 8) & 0xff,
                b = i & 0xff,
            );
        }
        let _ = write!(
            y,
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: {name}, namespace: {ns}}}\n\
             spec:\n  hosts: [{name}]\n  gateways: [mesh, istio-system/ingress]\n  http:\n\
             \x20 - match: [{{headers: {{end-user: {{exact: jason}}}}}}]\n    route: [{{destination: {{host: {name}, subset: v2}}}}]\n\
             \x20 - match: [{{uri: {{prefix: /api}}}}]\n    route: [{{destination: {{host: {name}, subset: v1}}}}]\n    timeout: 5s\n\
             \x20 - route:\n    - {{destination: {{host: {name}, subset: v1}}, weight: 90}}\n    - {{destination: {{host: {name}, subset: v2}}, weight: 10}}\n    retries: {{attempts: 3, perTryTimeout: 2s}}\n---\n\
             apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: {name}, namespace: {ns}}}\n\
             spec:\n  host: {name}\n  trafficPolicy:\n    connectionPool: {{tcp: {{maxConnections: 100}}, http: {{http1MaxPendingRequests: 10}}}}\n    outlierDetection: {{consecutive5xxErrors: 5, interval: 10s}}\n\
             \x20 subsets:\n  - {{name: v1, labels: {{version: v1}}}}\n  - {{name: v2, labels: {{version: v2}}}}\n---\n",
        );
    }
    y
}

/// The model of that mesh, loaded and checked as `meshd serve` would.
pub fn traffic_mesh(services: usize, with_sidecar: bool) -> MeshModel {
    let dir = tempfile::tempdir().expect("temp dir");
    write_mesh(dir.path(), services, with_sidecar);
    let input = load_dir(dir.path()).expect("the synthetic mesh loads");
    let built = build_model(&input);
    let problems: Vec<String> = built.all_problems(&input).map(|p| p.to_string()).collect();
    assert!(problems.is_empty(), "synthetic mesh problems: {problems:?}");
    built.model
}

pub fn write_mesh(dir: &Path, services: usize, with_sidecar: bool) {
    std::fs::write(dir.join("mesh.yaml"), objects(services, with_sidecar)).expect("writing");
}

/// A sidecar beside the first pod of service 0.
pub fn sidecar() -> ProxyId {
    ProxyId::parse("sidecar~241.0.0.0~svc-0-0.ns-0~ns-0.svc.cluster.local").expect("node id")
}

/// An ingress gateway pod the model does not know, selected by its metadata labels.
pub fn gateway() -> ProxyId {
    let mut p =
        ProxyId::parse("router~10.1.0.1~ingress-0.istio-system~istio-system.svc.cluster.local")
            .expect("node id");
    p.metadata
        .insert("LABELS.istio".to_string(), "ingressgateway".to_string());
    p
}
