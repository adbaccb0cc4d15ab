//! End-to-end: DestinationRules as real Envoy sidecars apply them. Requests go from a
//! client pod's app through its sidecar to the `echo` pods' sidecars and apps; each test
//! first shows the behaviour without the rule, then with it. Needs root, Envoy and curl
//! (see tests/e2e/mod.rs); fails, never skips, without them.

#[path = "e2e/mod.rs"]
mod harness;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use harness::envoy;
use harness::meshd::Meshd;
use harness::netns::Lab;
use harness::objects::{self, Port};
use harness::pod::Pod;
use harness::process::{run_timeout, wait_for};
use harness::traffic::app_command;
use harness::world::World;

const NS: &str = "demo";
const SVC: &str = "echo";
const VIP: &str = "10.96.0.10";
const HTTP_PORT: u16 = 9080;
const CLUSTER: &str = "outbound|9080||echo.demo.svc.cluster.local";

fn ports() -> [Port<'static>; 1] {
    [Port {
        name: "http-web",
        port: HTTP_PORT,
        target: HTTP_PORT,
    }]
}

/// meshd, `servers` echo pods and one client pod, all with sidecars in sync.
fn echo_world(servers: usize) -> World {
    let mut lab = Lab::new();
    let meshd = Meshd::new(&mut lab);
    meshd.write("namespace.yaml", &objects::namespace(NS));
    meshd.write(
        "service-echo.yaml",
        &objects::service(SVC, NS, VIP, SVC, &ports()),
    );
    let mut pods = Vec::new();
    for i in 0..servers {
        let name = format!("echo-{i}");
        let mut pod = Pod::new(&mut lab, &name, NS);
        pod.start_app(&lab, &[HTTP_PORT], &[]);
        meshd.write(
            &format!("pod-{name}.yaml"),
            &objects::pod(&name, NS, &pod.ip, SVC, &ports()),
        );
        pods.push(pod);
    }
    let world = World::start(lab, meshd, pods, NS);
    let want: BTreeSet<String> = world
        .servers
        .iter()
        .map(|p| format!("{}:{HTTP_PORT}", p.ip))
        .collect();
    wait_for(
        &format!("the client to see endpoints {want:?}"),
        Duration::from_secs(30),
        || (envoy::cluster_endpoints(&world.client.ns, CLUSTER) == want).then_some(()),
    );
    world.assert_in_sync();
    world
}

/// Writes a DestinationRule for `echo` and waits until the client's Envoy holds config
/// containing every one of `markers` (in its clusters and routes dump) and all proxies
/// are in sync again.
fn apply_rule(world: &World, spec: &str, markers: &[&str]) {
    let indented: String = spec.lines().map(|l| format!("  {l}\n")).collect();
    world.meshd.write(
        "destination-rule.yaml",
        &format!(
            "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata:\n  \
             name: echo\n  namespace: {NS}\nspec:\n  host: echo\n{indented}"
        ),
    );
    wait_for(
        &format!("the client's Envoy to hold {markers:?}"),
        Duration::from_secs(30),
        || {
            let dump = envoy::admin_get(&world.client.ns, "/config_dump")?;
            markers.iter().all(|m| dump.contains(m)).then_some(())
        },
    );
    world.assert_in_sync();
}

/// A stat of the client's HTTP cluster (by its `alt_stat_name`, `<cluster>;`).
fn cluster_stat(world: &World, counter: &str) -> u64 {
    envoy::stat(&world.client.ns, &format!("cluster.{CLUSTER};.{counter}")).unwrap_or(0)
}

/// curl as the client's app (captured by its sidecar), with the given extra arguments.
fn curl(world: &World, args: &[&str]) -> String {
    let mut cmd = app_command(&world.client.ns);
    cmd.args(["curl", "-s", "-m", "10"]).args(args);
    let out = run_timeout(cmd, Duration::from_secs(60));
    assert!(out.status.is_some(), "curl timed out: {}", out.stderr);
    out.stdout
}

fn url() -> String {
    format!("http://{VIP}:{HTTP_PORT}/")
}

/// `count` requests sent at once (one connection each); their status codes, counted.
fn concurrent_statuses(world: &World, count: usize) -> BTreeMap<String, usize> {
    let url = url();
    let mut args = vec![
        "--parallel",
        "--parallel-immediate",
        "--parallel-max",
        "50",
        "-w",
        "%{http_code}\\n",
    ];
    for _ in 0..count {
        // Each URL takes its own output option.
        args.extend(["-o", "/dev/null", url.as_str()]);
    }
    let mut by_status = BTreeMap::new();
    for line in curl(world, &args).lines().filter(|l| !l.trim().is_empty()) {
        *by_status.entry(line.trim().to_string()).or_default() += 1;
    }
    assert_eq!(by_status.values().sum::<usize>(), count, "{by_status:?}");
    by_status
}

/// The answers to `count` sequential requests carrying `x-user: <user>`: by the pod that
/// answered, and the bodies of the other answers (errors from the sidecars).
fn answers(world: &World, user: &str, count: usize) -> (BTreeMap<String, usize>, Vec<String>) {
    let url = url();
    let header = format!("x-user: {user}");
    let mut args = vec!["-H", header.as_str(), "-w", "\\n"];
    for _ in 0..count {
        args.push(&url);
    }
    let out = curl(world, &args);
    let mut by_pod = BTreeMap::new();
    let mut others = Vec::new();
    for line in out.lines().filter(|l| !l.trim().is_empty()) {
        match line.split_whitespace().find_map(|w| w.strip_prefix("pod=")) {
            Some(pod) => *by_pod.entry(pod.to_string()).or_default() += 1,
            None => others.push(line.to_string()),
        }
    }
    assert_eq!(
        by_pod.values().sum::<usize>() + others.len(),
        count,
        "{out}"
    );
    (by_pod, others)
}

/// The pods that answered `count` requests of `user`; every request must be answered.
fn pods_for_user(world: &World, user: &str, count: usize) -> BTreeMap<String, usize> {
    let (by_pod, others) = answers(world, user, count);
    assert!(others.is_empty(), "failed requests: {others:?}");
    by_pod
}

/// connectionPool: with one connection and one pending request allowed, a burst of
/// concurrent requests gets 503s from the client's sidecar (circuit breaker overflow);
/// without the rule, the same burst is served whole (Istio's limits never trip).
#[test]
fn connection_pool_limits_return_503_under_concurrent_load() {
    let _guard = harness::lock();
    let world = echo_world(1);
    let before = concurrent_statuses(&world, 60);
    assert_eq!(before.get("200"), Some(&60), "without a rule: {before:?}");

    apply_rule(
        &world,
        "trafficPolicy:\n  connectionPool:\n    tcp: {maxConnections: 1}\n    \
         http: {http1MaxPendingRequests: 1, maxRequestsPerConnection: 1}",
        &["\"max_connections\": 1", "\"max_pending_requests\": 1"],
    );
    let mut overflowed = 0;
    let mut saw = Vec::new();
    // Each burst is 60 requests at once against 2 places; a few bursts make it certain.
    for _ in 0..3 {
        let after = concurrent_statuses(&world, 60);
        overflowed += after.get("503").copied().unwrap_or(0);
        assert!(
            after.keys().all(|s| s == "200" || s == "503"),
            "only served or overflowed: {after:?}"
        );
        assert!(after.contains_key("200"), "some are served: {after:?}");
        saw.push(after);
        if overflowed > 0 {
            break;
        }
    }
    eprintln!("bursts with the rule: {saw:?}");
    assert!(overflowed > 0, "the limits never tripped: {saw:?}");
    assert!(
        cluster_stat(&world, "upstream_rq_pending_overflow") > 0,
        "the 503s come from the cluster's circuit breaker"
    );
}

/// outlierDetection: a pod whose app is gone answers 503 (its sidecar cannot reach it);
/// after one such answer the client's sidecar ejects it and sends every later request to
/// the healthy pod. Before the ejection a client may see that one 503, as with istiod.
#[test]
fn outlier_detection_ejects_a_failing_endpoint() {
    let _guard = harness::lock();
    let mut world = echo_world(2);
    apply_rule(
        &world,
        "trafficPolicy:\n  outlierDetection:\n    consecutive5xxErrors: 1\n    interval: 1s\n    \
         baseEjectionTime: 5m\n    maxEjectionPercent: 100",
        &["\"consecutive_5xx\": 1"],
    );
    let dead_ip = world.servers[1].ip.clone();
    world.servers[1].stop_app();
    let dead = format!("{CLUSTER}::{dead_ip}:{HTTP_PORT}::health_flags::/failed_outlier_check");
    let mut failed = Vec::new();
    wait_for(
        "the dead pod to be ejected",
        Duration::from_secs(30),
        || {
            let (by_pod, others) = answers(&world, "anyone", 5);
            assert!(by_pod.keys().all(|p| p == "echo-0"), "{by_pod:?}");
            failed.extend(others);
            envoy::admin(&world.client.ns, "/clusters")
                .contains(&dead)
                .then_some(())
        },
    );
    eprintln!("answers that failed before the ejection: {failed:?}");
    assert!(failed.len() <= 1, "one failure ejects the pod: {failed:?}");
    assert!(cluster_stat(&world, "outlier_detection.ejections_enforced_total") >= 1);
    let errors = cluster_stat(&world, "upstream_rq_5xx");
    let by_pod = pods_for_user(&world, "anyone", 30);
    assert_eq!(by_pod.get("echo-0"), Some(&30), "{by_pod:?}");
    assert_eq!(
        cluster_stat(&world, "upstream_rq_5xx"),
        errors,
        "the ejected pod gets no more requests"
    );
}

/// consistentHash on `httpHeaderName`: every request of one user lands on one pod, while
/// users spread over the pods; without the rule one user's requests spread too.
#[test]
fn consistent_hashing_keeps_one_user_on_one_pod() {
    let _guard = harness::lock();
    let world = echo_world(3);
    let before = pods_for_user(&world, "alice", 30);
    assert!(before.len() > 1, "without a rule alice spreads: {before:?}");

    apply_rule(
        &world,
        "trafficPolicy:\n  loadBalancer:\n    consistentHash: {httpHeaderName: x-user}",
        &["RING_HASH", "\"header_name\": \"x-user\""],
    );
    let mut pods_used = BTreeSet::new();
    for i in 0..10 {
        let user = format!("user-{i}");
        let by_pod = pods_for_user(&world, &user, 12);
        assert_eq!(by_pod.len(), 1, "{user} stays on one pod: {by_pod:?}");
        pods_used.extend(by_pod.into_keys());
    }
    assert!(pods_used.len() > 1, "users spread over pods: {pods_used:?}");
}
