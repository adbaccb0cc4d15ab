//! `meshd serve --kubernetes` against a real kube-apiserver (scripts/kube-testenv.sh): the
//! initial list is served, a Service created and then deleted with kubectl appears in and
//! leaves meshd's `/debug/configz`, and an Istio kind whose CRD serves only v1beta1 is
//! watched at that version; a CRD installed after meshd is ready is picked up, a bad
//! custom resource is rejected alone, and a deleted CRD drops its objects; a list larger
//! than many pages arrives whole.

mod common;
#[path = "kube/mod.rs"]
mod kubeenv;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, Meshd};
use kubeenv::ApiServer;
use serde_json::Value;

impl ApiServer {
    fn install_virtual_service_crd(&self) {
        self.kubectl(&["apply", "-f", "-"], VIRTUAL_SERVICE_CRD);
        self.kubectl(
            &[
                "wait",
                "--for=condition=Established",
                "--timeout=60s",
                "crd/virtualservices.networking.istio.io",
            ],
            "",
        );
    }
}

/// `meshd serve --kubernetes` on loopback ports, its log in `log`.
fn spawn_meshd(kubeconfig: &Path, log: &Path) -> Meshd {
    spawn_meshd_with(kubeconfig, log, &[], &[])
}

/// `spawn_meshd` with more arguments and environment variables.
fn spawn_meshd_with(kubeconfig: &Path, log: &Path, args: &[&str], envs: &[(&str, &str)]) -> Meshd {
    let xds: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let admin: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_meshd"))
        .args(["serve", "--kubernetes", "--kubeconfig"])
        .arg(kubeconfig)
        .args(["--xds-addr", &xds.to_string()])
        .args(["--admin-addr", &admin.to_string()])
        .args(["--secure-xds-addr", "off"])
        .args(["--debounce-quiet-ms", "50"])
        .args(args)
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "meshd=debug")
        .envs(envs.iter().copied())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).expect("creating the meshd log"))
        .spawn()
        .expect("start meshd");
    Meshd { child, xds, admin }
}

/// meshd's `/debug/configz`.
fn configz(meshd: &Meshd) -> Value {
    let (status, body) = meshd.get("/debug/configz");
    assert_eq!(status, 200, "/debug/configz: {body}");
    serde_json::from_str(&body).expect("configz is JSON")
}

/// The hostnames of the services in `configz`.
fn hostnames(configz: &Value) -> Vec<String> {
    configz["services"]
        .as_array()
        .expect("configz has services")
        .iter()
        .filter_map(|s| s["hostname"].as_str().map(str::to_string))
        .collect()
}

fn serves(configz: &Value, hostname: &str) -> bool {
    hostnames(configz).iter().any(|n| n == hostname)
}

/// Waits (bounded) until `check` holds for meshd's configz; returns that configz.
fn wait_for(meshd: &Meshd, log: &Path, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let configz = configz(meshd);
        if check(&configz) {
            return configz;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: meshd serves {configz}\nmeshd log:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

const REVIEWS: &str = "reviews.shop.svc.cluster.local";
const KUBERNETES: &str = "kubernetes.default.svc.cluster.local";

/// Istio's VirtualService CRD reduced to what the API server needs, served at v1beta1 only
/// (meshd prefers v1: it must find v1beta1 through discovery).
const VIRTUAL_SERVICE_CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: virtualservices.networking.istio.io
spec:
  group: networking.istio.io
  scope: Namespaced
  names:
    kind: VirtualService
    listKind: VirtualServiceList
    plural: virtualservices
    singular: virtualservice
  versions:
  - name: v1beta1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
"#;

const OBJECTS: &str = r#"
apiVersion: v1
kind: Namespace
metadata:
  name: shop
---
apiVersion: v1
kind: Service
metadata:
  name: reviews
  namespace: shop
spec:
  ports:
  - name: http
    port: 9080
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: reviews-1
  namespace: shop
  labels:
    kubernetes.io/service-name: reviews
addressType: IPv4
ports:
- name: http
  port: 9080
  protocol: TCP
endpoints:
- addresses: ["10.1.0.5"]
  conditions:
    ready: true
---
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata:
  name: reviews
  namespace: shop
spec:
  hosts: [reviews]
  http:
  - route:
    - destination:
        host: reviews
"#;

#[test]
fn services_created_and_deleted_through_the_api_reach_meshd() {
    let tmp = tempfile::tempdir().expect("temp dir");
    // Without testenv's CRDs: this test installs its own, at v1beta1 only.
    let server = ApiServer::start_without_crds(&tmp.path().join("kube"));
    server.install_virtual_service_crd();
    let log = tmp.path().join("meshd.log");
    let meshd = spawn_meshd(&server.kubeconfig(), &log);

    // The initial list: the API server's own Service `kubernetes` in `default`.
    meshd.wait_ready(Duration::from_secs(60));
    let initial = wait_for(&meshd, &log, "initial list", |c| serves(c, KUBERNETES));
    assert!(
        !serves(&initial, REVIEWS),
        "reviews served before it was created"
    );

    server.kubectl(&["apply", "-f", "-"], OBJECTS);
    // The objects arrive through separate watches: wait for the VirtualService too.
    let configz = wait_for(&meshd, &log, "reviews created", |c| {
        serves(c, REVIEWS) && c["istio"]["VirtualService"] != serde_json::json!([])
    });
    let reviews = configz["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["hostname"] == REVIEWS)
        .unwrap();
    assert_eq!(reviews["ports"][0]["port"], 9080, "{reviews}");
    assert!(
        reviews["clusterIP"]
            .as_str()
            .is_some_and(|ip| ip.starts_with("10.96.")),
        "the cluster IP the API server allocated: {reviews}"
    );
    assert_eq!(
        configz["istio"]["VirtualService"],
        serde_json::json!(["shop/reviews"]),
        "the VirtualService, read at v1beta1"
    );
    assert_eq!(configz["problems"], serde_json::json!([]), "{configz}");

    server.kubectl(
        &[
            "delete",
            "-n",
            "shop",
            "service/reviews",
            "endpointslice/reviews-1",
            "virtualservice/reviews",
        ],
        "",
    );
    wait_for(&meshd, &log, "reviews deleted", |c| {
        !serves(c, REVIEWS) && serves(c, KUBERNETES)
    });
}

const GOOD_AND_BAD_VIRTUAL_SERVICES: &str = r#"
apiVersion: v1
kind: Namespace
metadata:
  name: shop
---
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata:
  name: good
  namespace: shop
spec:
  hosts: [reviews]
  http:
  - route:
    - destination:
        host: reviews
---
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata:
  name: bad
  namespace: shop
spec:
  hosts: [ratings]
  http:
  - timeout: forever
    route:
    - destination:
        host: ratings
"#;

#[test]
fn a_crd_installed_later_is_watched_a_bad_resource_rejected_alone_and_a_deleted_one_dropped() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let server = ApiServer::start_without_crds(&tmp.path().join("kube"));
    let log = tmp.path().join("meshd.log");
    let meshd = spawn_meshd(&server.kubeconfig(), &log);
    // Ready without any Istio CRD: the missing kinds hold nothing back.
    meshd.wait_ready(Duration::from_secs(60));
    wait_for(&meshd, &log, "initial list", |c| serves(c, KUBERNETES));

    server.install_virtual_service_crd();
    server.kubectl(&["apply", "-f", "-"], GOOD_AND_BAD_VIRTUAL_SERVICES);
    let configz = wait_for(&meshd, &log, "the VirtualServices of the new CRD", |c| {
        c["istio"]["VirtualService"] == serde_json::json!(["shop/good"])
            && c["problems"].as_array().is_some_and(|p| !p.is_empty())
    });
    let problems = configz["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 1, "{configz}");
    let problem = problems[0].as_str().unwrap();
    assert!(
        problem.contains("VirtualService shop/bad") && problem.contains("http[0].timeout"),
        "the problem names the object and the field: {problem}"
    );
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        logged
            .lines()
            .any(|l| l.contains("WARN") && l.contains("shop/bad") && l.contains("timeout")),
        "a WARN line names the bad object:\n{logged}"
    );

    server.kubectl(
        &["delete", "crd", "virtualservices.networking.istio.io"],
        "",
    );
    wait_for(&meshd, &log, "the CRD's objects dropped", |c| {
        c["istio"]["VirtualService"] == serde_json::json!([])
            && c["problems"] == serde_json::json!([])
            && serves(c, KUBERNETES)
    });
}

/// Services in one `List`, for one `kubectl create`.
fn service_list(count: usize) -> String {
    let items: Vec<Value> = (0..count)
        .map(|i| {
            serde_json::json!({
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": format!("svc-{i}"), "namespace": "default"},
                "spec": {"ports": [{"name": "http", "port": 80}]},
            })
        })
        .collect();
    serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items}).to_string()
}

#[test]
fn a_list_of_many_pages_arrives_whole() {
    const SERVICES: usize = 1_200;
    let tmp = tempfile::tempdir().expect("temp dir");
    let server = ApiServer::start(&tmp.path().join("kube"));
    server.kubectl(&["create", "-f", "-"], &service_list(SERVICES));
    let log = tmp.path().join("meshd.log");
    // 1,200 Services in pages of 50: 24 pages, each a list request with a continue token.
    let meshd = spawn_meshd_with(
        &server.kubeconfig(),
        &log,
        &[],
        &[
            ("MESHD_KUBE_LIST_PAGE_SIZE", "50"),
            // kube-client logs each request's URL at debug.
            ("RUST_LOG", "meshd=debug,kube_client=debug"),
        ],
    );
    meshd.wait_ready(Duration::from_secs(120));
    // The first published set already holds every page (nothing is published mid-list).
    let configz = configz(&meshd);
    let names = hostnames(&configz);
    assert_eq!(names.len(), SERVICES + 1, "every Service and `kubernetes`");
    for i in [0, 49, 50, 599, SERVICES - 1] {
        let name = format!("svc-{i}.default.svc.cluster.local");
        assert!(names.contains(&name), "{name} missing");
    }
    // It was paged: follow-up list requests of Services carried continue tokens.
    let logged = std::fs::read_to_string(&log).unwrap();
    let pages = logged
        .lines()
        .filter(|l| {
            l.contains("requesting")
                && l.contains("/api/v1/services?")
                && l.contains("limit=50")
                && l.contains("continue=")
        })
        .count();
    assert!(
        pages >= SERVICES / 50 - 1,
        "{pages} continued list requests of Services in the log"
    );
}

const MESH_CONFIG_MAP: &str = r#"
apiVersion: v1
kind: Namespace
metadata:
  name: istio-system
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: istio
  namespace: istio-system
data:
  mesh: |
    outboundTrafficPolicy:
      mode: REGISTRY_ONLY
    trustDomain: cluster.local
"#;

/// The files of `--config-dir`: a Service only they have, and one the cluster has too.
const FILES: &str = r#"
apiVersion: v1
kind: Service
metadata:
  name: from-file
  namespace: shop
spec:
  ports:
  - name: http
    port: 8080
---
apiVersion: v1
kind: Service
metadata:
  name: kubernetes
spec:
  ports:
  - name: https
    port: 8443
"#;

fn outbound_mode(configz: &Value) -> &str {
    configz["mesh"]["outboundTrafficPolicy"]["mode"]
        .as_str()
        .unwrap_or_default()
}

#[test]
fn files_add_to_the_cluster_and_the_mesh_config_map_overrides_the_flags() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let server = ApiServer::start(&tmp.path().join("kube"));
    let dir = tmp.path().join("config");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("services.yaml"), FILES).unwrap();
    let log = tmp.path().join("meshd.log");
    let meshd = spawn_meshd_with(
        &server.kubeconfig(),
        &log,
        &["--config-dir", dir.to_str().unwrap()],
        &[],
    );
    meshd.wait_ready(Duration::from_secs(60));
    let configz = wait_for(&meshd, &log, "files and cluster", |c| {
        serves(c, "from-file.shop.svc.cluster.local") && serves(c, KUBERNETES)
    });
    // The cluster's `kubernetes` (port 443) wins over the file's (8443), named in a problem.
    let kubernetes = configz["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["hostname"] == KUBERNETES)
        .unwrap();
    assert_eq!(kubernetes["ports"][0]["port"], 443, "{kubernetes}");
    let problems = configz["problems"].to_string();
    assert!(
        problems.contains("services.yaml")
            && problems.contains("Service default/kubernetes")
            && problems.contains("kubernetes:Service/default/kubernetes"),
        "the clash names both: {problems}"
    );
    // No ConfigMap: the flags' default.
    assert_eq!(outbound_mode(&configz), "ALLOW_ANY", "{configz}");

    server.kubectl(&["apply", "-f", "-"], MESH_CONFIG_MAP);
    wait_for(&meshd, &log, "the mesh config applied", |c| {
        outbound_mode(c) == "REGISTRY_ONLY"
    });

    server.kubectl(
        &[
            "-n",
            "istio-system",
            "patch",
            "configmap",
            "istio",
            "--type=merge",
            "-p",
            r#"{"data":{"mesh":"outboundTrafficPolicy: {mode: SOMETIMES}"}}"#,
        ],
        "",
    );
    let configz = wait_for(&meshd, &log, "the bad mesh config reported", |c| {
        c["problems"]
            .to_string()
            .contains("data.mesh.outboundTrafficPolicy.mode")
    });
    assert_eq!(
        outbound_mode(&configz),
        "REGISTRY_ONLY",
        "the last valid mesh config stays: {configz}"
    );
    assert!(configz["problems"]
        .to_string()
        .contains("ConfigMap istio-system/istio"));

    server.kubectl(&["-n", "istio-system", "delete", "configmap", "istio"], "");
    wait_for(&meshd, &log, "the mesh config deleted", |c| {
        outbound_mode(c) == "ALLOW_ANY"
            && !c["problems"]
                .to_string()
                .contains("ConfigMap istio-system/istio")
    });
}
