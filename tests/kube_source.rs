//! `meshd serve --kubernetes` against a real kube-apiserver (scripts/kube-testenv.sh): the
//! initial list is served, a Service created and then deleted with kubectl appears in and
//! leaves meshd's `/debug/configz`, and an Istio kind whose CRD serves only v1beta1 is
//! watched at that version.

mod common;

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, Meshd};
use serde_json::Value;

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/kube-testenv.sh")
}

/// A running etcd + kube-apiserver in a directory of its own, stopped on drop (also when
/// the test fails).
struct ApiServer {
    dir: PathBuf,
    bin: PathBuf,
}

impl ApiServer {
    fn start(dir: &Path) -> ApiServer {
        let built = Command::new(script())
            .arg("build")
            .stderr(Stdio::inherit())
            .output()
            .expect("running kube-testenv.sh build");
        assert!(built.status.success(), "kube-testenv.sh build failed");
        let bin = PathBuf::from(String::from_utf8(built.stdout).unwrap().trim());
        // Constructed before `start` so a start that fails halfway is still stopped.
        let server = ApiServer {
            dir: dir.to_path_buf(),
            bin,
        };
        let status = Command::new(script())
            .arg("start")
            .arg(dir)
            .stdout(Stdio::null())
            .status()
            .expect("running kube-testenv.sh start");
        assert!(status.success(), "kube-testenv.sh start failed");
        server
    }

    fn kubeconfig(&self) -> PathBuf {
        self.dir.join("kubeconfig")
    }

    /// Runs kubectl with `args` and `stdin`; panics with its output when it fails.
    fn kubectl(&self, args: &[&str], stdin: &str) {
        let mut child = Command::new(self.bin.join("kubectl"))
            .arg("--kubeconfig")
            .arg(self.kubeconfig())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting kubectl");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let out = child.wait_with_output().expect("running kubectl");
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        let _ = Command::new(script()).arg("stop").arg(&self.dir).status();
    }
}

/// `meshd serve --kubernetes` on loopback ports, its log in `log`.
fn spawn_meshd(kubeconfig: &Path, log: &Path) -> Meshd {
    let xds: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let admin: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_meshd"))
        .args(["serve", "--kubernetes", "--kubeconfig"])
        .arg(kubeconfig)
        .args(["--xds-addr", &xds.to_string()])
        .args(["--admin-addr", &admin.to_string()])
        .args(["--secure-xds-addr", "off"])
        .args(["--debounce-quiet-ms", "50"])
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "meshd=debug")
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
    let server = ApiServer::start(&tmp.path().join("kube"));
    server.kubectl(&["apply", "-f", "-"], VIRTUAL_SERVICE_CRD);
    server.kubectl(
        &[
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd/virtualservices.networking.istio.io",
        ],
        "",
    );
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
