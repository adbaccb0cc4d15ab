//! meshd against the faults a real kube-apiserver (scripts/kube-testenv.sh) puts on its
//! watchers: every connection dropped by a TCP proxy in between, the API server restarted,
//! etcd compacted so that a resumed watch gets `410 Gone`, and API priority and fairness
//! answering `429`. In each case meshd's watches recover and changes made meanwhile arrive;
//! a relist of unchanged objects builds and pushes nothing.

mod common;
mod kube;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use kube::ads::AdsProbe;
use kube::faults::{compact_while_cut_off, watched_kinds};
use kube::meshd::{self as km, serves, wait_configz, wait_until};
use kube::objects;
use kube::proxy::DropProxy;
use kube::ApiServer;

const NS: &str = "shop";
const KUBERNETES: &str = "kubernetes.default.svc.cluster.local";
const PROBE: &str = "sidecar~10.244.0.99~probe.shop~shop.svc.cluster.local";

fn host(name: &str) -> String {
    format!("{name}.{NS}.svc.cluster.local")
}

/// A Service and its EndpointSlice in `NS`.
fn service_with_slice(name: &str, ip: &str) -> String {
    format!(
        "{}---\n{}",
        objects::service(name, NS, 9080),
        objects::endpoint_slice(&format!("{name}-1"), NS, name, 9080, ip)
    )
}

/// The API server (without its watch cache, so that watches are served from etcd and a
/// resumed one sees etcd's compaction), the namespace, and the VirtualService CRD.
fn api_server(dir: &Path, extra_args: &str) -> ApiServer {
    let server = ApiServer::start_with(dir, &format!("--watch-cache=false {extra_args}"), None);
    server.apply_crd(
        objects::VIRTUAL_SERVICE_CRD,
        "virtualservices.networking.istio.io",
    );
    server.apply(&objects::namespace(NS));
    server
}

fn assert_running(meshd: &mut common::Meshd, log: &Path) {
    assert!(
        meshd.child.try_wait().unwrap().is_none(),
        "meshd exited\n{}",
        km::log_text(log)
    );
}

#[test]
fn watches_resume_after_a_proxy_drops_every_connection() {
    let tmp = tempfile::tempdir().unwrap();
    let server = api_server(&tmp.path().join("kube"), "");
    let proxy = DropProxy::start(server.apiserver_port());
    let kubeconfig = tmp.path().join("via-proxy");
    server.kubeconfig_with(&kubeconfig, Some(proxy.port), None);
    let log = tmp.path().join("meshd.log");
    let mut meshd = km::spawn(&kubeconfig, &log, &[]);
    km::wait_ready(&meshd, &log);
    wait_configz(&meshd, &log, "initial list", |c| serves(c, KUBERNETES));

    // Connections dropped once: the watches resume and see what happens next.
    proxy.drop_connections();
    server.apply(&service_with_slice("reviews", "10.1.0.5"));
    wait_configz(&meshd, &log, "reviews after a drop", |c| {
        serves(c, &host("reviews"))
    });

    // An outage: every connection dropped and new ones refused while a change is made.
    proxy.cut();
    server.apply(&service_with_slice("ratings", "10.1.0.6"));
    server.kubectl(&["delete", "-n", NS, "service/reviews"], "");
    // Nothing can reach meshd while the proxy refuses; the outage lasts long enough for
    // the watchers to fail and back off.
    wait_until(&log, "meshd to notice the outage", || {
        km::log_text(&log).contains("Kubernetes watch failed")
    });
    let during = km::configz(&meshd);
    assert!(serves(&during, &host("reviews")), "{during}");
    assert!(!serves(&during, &host("ratings")), "{during}");
    proxy.resume();
    wait_configz(&meshd, &log, "the outage's changes", |c| {
        serves(c, &host("ratings")) && !serves(c, &host("reviews"))
    });
    assert_running(&mut meshd, &log);
}

#[test]
fn changes_after_an_apiserver_restart_arrive() {
    let tmp = tempfile::tempdir().unwrap();
    let server = api_server(&tmp.path().join("kube"), "");
    let log = tmp.path().join("meshd.log");
    let mut meshd = km::spawn(&server.kubeconfig(), &log, &[]);
    km::wait_ready(&meshd, &log);
    server.apply(&service_with_slice("reviews", "10.1.0.5"));
    wait_configz(&meshd, &log, "reviews", |c| serves(c, &host("reviews")));

    server.restart_apiserver();
    server.apply(&service_with_slice("ratings", "10.1.0.6"));
    server.apply(&objects::virtual_service(
        "ratings",
        NS,
        "ratings",
        "after-restart",
    ));
    server.kubectl(&["delete", "-n", NS, "service/reviews"], "");
    wait_configz(&meshd, &log, "changes made after the restart", |c| {
        serves(c, &host("ratings"))
            && !serves(c, &host("reviews"))
            && c["istio"]["VirtualService"] == serde_json::json!(["shop/ratings"])
    });
    assert_running(&mut meshd, &log);
}

#[test]
fn a_watch_resumed_after_compaction_gets_410_and_an_unchanged_relist_pushes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let server = api_server(&tmp.path().join("kube"), "");
    server.apply(&service_with_slice("reviews", "10.1.0.5"));
    let proxy = DropProxy::start(server.apiserver_port());
    let kubeconfig = tmp.path().join("via-proxy");
    server.kubeconfig_with(&kubeconfig, Some(proxy.port), None);
    let log = tmp.path().join("meshd.log");
    let mut meshd = km::spawn(&kubeconfig, &log, &[]);
    km::wait_ready(&meshd, &log);
    wait_configz(&meshd, &log, "initial list", |c| {
        serves(c, &host("reviews"))
    });
    let probe = AdsProbe::connect(meshd.xds, PROBE);
    wait_until(&log, "the probe to hold every type", || {
        probe.versions().len() == 4
    });
    assert!(watched_kinds(&log) >= 4, "{}", km::log_text(&log));

    // Nothing changed: the relist finds what the stores hold and builds nothing.
    let generation = km::generation(&meshd);
    let pushes = km::pushes(&meshd);
    let seen = probe.seen();
    compact_while_cut_off(&server, &proxy, &log, NS, "unchanged");
    // The relisted kinds have been applied; give a spurious build the debounce it would
    // need to show before counting.
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(km::generation(&meshd), generation, "a generation was built");
    assert_eq!(km::pushes(&meshd), pushes, "something was pushed");
    assert_eq!(
        probe.seen().responses,
        seen.responses,
        "the probe got a push"
    );
    assert_eq!(probe.versions(), seen.versions);

    // Changed while cut off: the relist brings the change, and only it is built.
    let versions = probe.versions();
    proxy.cut();
    server.apply(&service_with_slice("ratings", "10.1.0.6"));
    compact_while_cut_off(&server, &proxy, &log, NS, "changed");
    wait_configz(&meshd, &log, "ratings after the relist", |c| {
        serves(c, &host("ratings"))
    });
    wait_until(&log, "the probe to get the change", || {
        let now = probe.versions();
        now["clusters"] != versions["clusters"] && now["endpoints"] != versions["endpoints"]
    });
    assert_running(&mut meshd, &log);
}

/// meshd's own ServiceAccount (not in `system:masters`, which priority and fairness never
/// limits), allowed to read everything, and its token.
fn limited_identity(server: &ApiServer) -> String {
    server.apply(&format!(
        "{}---\napiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: meshd\n  namespace: meshd-system\n",
        objects::namespace("meshd-system")
    ));
    // Not `view`: it leaves out Secrets, which meshd reads.
    server.kubectl(
        &[
            "create",
            "clusterrole",
            "meshd-read",
            "--verb=get,list,watch",
            "--resource=*.*",
        ],
        "",
    );
    server.kubectl(
        &[
            "create",
            "clusterrolebinding",
            "meshd-read",
            "--clusterrole=meshd-read",
            "--serviceaccount=meshd-system:meshd",
        ],
        "",
    );
    server
        .kubectl(&["create", "token", "meshd", "-n", "meshd-system"], "")
        .trim()
        .to_string()
}

/// A priority level with the least concurrency there is (one seat), rejecting instead of
/// queueing, for every request of meshd's ServiceAccount.
const STARVED: &str = r#"
apiVersion: flowcontrol.apiserver.k8s.io/v1
kind: PriorityLevelConfiguration
metadata: {name: meshd-starved}
spec:
  type: Limited
  limited:
    nominalConcurrencyShares: 0
    lendablePercent: 0
    borrowingLimitPercent: 0
    limitResponse: {type: Reject}
---
apiVersion: flowcontrol.apiserver.k8s.io/v1
kind: FlowSchema
metadata: {name: meshd-starved}
spec:
  priorityLevelConfiguration: {name: meshd-starved}
  matchingPrecedence: 500
  distinguisherMethod: {type: ByUser}
  rules:
  - subjects:
    - kind: ServiceAccount
      serviceAccount: {name: meshd, namespace: meshd-system}
    resourceRules:
    - verbs: ["*"]
      apiGroups: ["*"]
      resources: ["*"]
      clusterScope: true
      namespaces: ["*"]
    nonResourceRules:
    - verbs: ["*"]
      nonResourceURLs: ["*"]
"#;

/// Keeps the starved priority level's one seat busy: a single curl sending many small
/// requests as meshd's ServiceAccount, several at a time. Killed on drop.
struct SeatHog(Child);

impl SeatHog {
    fn start(server: &ApiServer, token: &str) -> SeatHog {
        let child = Command::new("curl")
            .args([
                "-sk",
                "--parallel",
                "--parallel-max",
                "4",
                "-o",
                "/dev/null",
            ])
            .args(["-H", &format!("Authorization: Bearer {token}")])
            .arg(format!(
                "https://127.0.0.1:{}/api/v1/namespaces?hog=[1-1000000]",
                server.apiserver_port()
            ))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting curl");
        SeatHog(child)
    }
}

impl Drop for SeatHog {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn priority_and_fairness_429s_are_retried_until_meshd_converges() {
    let tmp = tempfile::tempdir().unwrap();
    let server = api_server(&tmp.path().join("kube"), "");
    let token = limited_identity(&server);
    server.apply(STARVED);
    let kubeconfig = tmp.path().join("as-meshd");
    server.kubeconfig_with(&kubeconfig, None, Some(&token));
    let log = tmp.path().join("meshd.log");

    let hog = SeatHog::start(&server, &token);
    let mut meshd = km::spawn(&kubeconfig, &log, &[]);
    wait_until(&log, "meshd to be refused with 429", || {
        let text = km::log_text(&log);
        text.contains("Too many requests")
    });
    server.apply(&service_with_slice("reviews", "10.1.0.5"));
    assert_running(&mut meshd, &log);
    drop(hog);

    km::wait_ready(&meshd, &log);
    wait_configz(&meshd, &log, "reviews once the seat is free", |c| {
        serves(c, &host("reviews")) && serves(c, KUBERNETES)
    });
    let text = km::log_text(&log);
    assert!(
        text.lines()
            .any(|l| l.contains("WARN") && l.contains("Too many requests")),
        "the refusals are logged as warnings:\n{text}"
    );
    if std::env::var_os("MESHD_KUBE_SHOW_LOG").is_some() {
        eprintln!("{text}");
    }
    assert_running(&mut meshd, &log);
}
