//! End-to-end: protocol sniffing and VirtualService TCP routes through real Envoy 1.40
//! sidecars in network-namespace pods (see tests/e2e/ for the harness).
//!
//! - A Service port without a name or appProtocol is sniffed: HTTP sent to it goes through
//!   the HTTP connection managers of both sidecars (the application sees the headers only
//!   they add, the cluster's HTTP counters move), while raw TCP on the same port still
//!   reaches the application byte for byte.
//! - A VirtualService `tcp` route with weighted destinations splits connections by weight.
//!
//! Needs root and Envoy; fails (never skips) without them.

#[path = "e2e/mod.rs"]
mod harness;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use harness::envoy;
use harness::meshd::Meshd;
use harness::netns::{set_mode, Lab, Netns};
use harness::objects;
use harness::pod::Pod;
use harness::process::{run_timeout, wait_for, Proc};
use harness::prometheus;
use harness::traffic::{self, app_command};
use harness::world::World;

const NS: &str = "demo";

/// The sniff_server example (examples/sniff_server.rs), built once per run into the test
/// executable's target directory, as the harness does for the echo example.
fn sniff_server_binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| traffic::build_example("sniff_server"))
}

/// Starts the mixed HTTP/line server in `ns` as the application user.
fn start_mixed(lab: &Lab, ns: &Netns, name: &str, port: u16) -> Proc {
    let bin = lab.path("sniff_server");
    if !bin.exists() {
        std::fs::copy(sniff_server_binary(), &bin).expect("copying the sniff_server binary");
        set_mode(&bin, 0o755);
    }
    let mut cmd = app_command(ns);
    cmd.arg(&bin).args([name, &port.to_string()]);
    Proc::spawn_listening(
        &format!("sniff_server {name}"),
        cmd,
        &lab.path(&format!("{name}.app.log")),
    )
}

/// A ClusterIP Service with one port and no port name: its protocol is not declared.
fn unnamed_port_service(name: &str, vip: &str, port: u16) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  namespace: {NS}\nspec:\n  \
         clusterIP: {vip}\n  selector:\n    app: {name}\n  ports:\n  - port: {port}\n    \
         targetPort: {port}\n"
    )
}

/// GET with curl from `ns` as the application user (so that the sidecar captures it).
fn app_curl(ns: &Netns, url: &str) -> Result<String, String> {
    let mut cmd = app_command(ns);
    cmd.args(["curl", "-s", "-S", "-f", "-m", "5", url]);
    let out = run_timeout(cmd, Duration::from_secs(10));
    if out.success() {
        Ok(out.stdout)
    } else {
        Err(format!("{:?}: {}", out.status, out.stderr.trim_end()))
    }
}

/// meshd, the server pods (each with its own app started by the caller's closure) and a
/// client pod. Processes stop before the lab goes.
/// `files` go into meshd's config directory; `servers` are (pod name, app label) pairs
/// whose apps `start_app` starts; every sidecar is synced before this returns.
fn start_world(
    files: &[(&str, String)],
    servers: &[(&str, &str)],
    mut start_app: impl FnMut(&Lab, &mut Pod),
) -> World {
    let mut lab = Lab::new();
    let meshd = Meshd::new(&mut lab);
    meshd.write("namespace.yaml", &objects::namespace(NS));
    for (file, yaml) in files {
        meshd.write(file, yaml);
    }
    let mut pods = Vec::new();
    for (name, app) in servers {
        let mut pod = Pod::new(&mut lab, name, NS);
        meshd.write(
            &format!("pod-{name}.yaml"),
            &objects::pod(name, NS, &pod.ip, app, &[]),
        );
        start_app(&lab, &mut pod);
        pods.push(pod);
    }
    World::start(lab, meshd, pods, NS)
}

/// Waits until the client has `cluster` with `count` endpoints, every proxy has acked
/// meshd's latest config and none has rejected anything.
fn wait_synced(world: &World, clusters: &[(&str, usize)]) {
    for (cluster, count) in clusters {
        wait_for(
            &format!("the client to have {count} endpoints of {cluster}"),
            Duration::from_secs(30),
            || (envoy::cluster_endpoints(&world.client.ns, cluster).len() == *count).then_some(()),
        );
    }
    world.assert_in_sync_by(acked);
}

/// As `syncz::acked`, except that routes count only when the proxy asked for some: a mesh
/// with no HTTP port gives it no connection manager that would.
fn acked(state: &serde_json::Value, node_id: &str) -> bool {
    let Some(entry) = state.get(node_id) else {
        return false;
    };
    ["clusters", "endpoints", "listeners", "routes"]
        .iter()
        .all(|t| {
            let sent = entry[t]["version_sent"].as_str().unwrap_or("");
            let acked = entry[t]["version_acked"].as_str().unwrap_or("");
            let optional = *t == "routes" && sent.is_empty();
            optional || (!acked.is_empty() && acked == sent && entry[t]["nacked"] != true)
        })
}

fn counter(samples: &[prometheus::Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    prometheus::value(samples, name, labels).unwrap_or(0.0)
}

#[test]
fn an_unnamed_port_carries_sniffed_http_and_raw_tcp() {
    let _guard = harness::lock();
    const VIP: &str = "10.96.0.30";
    const PORT: u16 = 8080;
    const FQDN: &str = "mixed.demo.svc.cluster.local";
    let world = start_world(
        &[(
            "service-mixed.yaml",
            unnamed_port_service("mixed", VIP, PORT),
        )],
        &[("mixed-0", "mixed")],
        |lab, pod| pod.app = Some(start_mixed(lab, &pod.ns, &pod.name, PORT)),
    );
    let cluster = format!("outbound|{PORT}||{FQDN}");
    wait_synced(&world, &[(&cluster, 1)]);
    let listeners = envoy::admin(&world.client.ns, "/listeners");
    assert!(
        listeners
            .lines()
            .any(|l| l.starts_with(&format!("{VIP}_{PORT}::"))),
        "the sniffed port has its own listener on the VIP: {listeners}"
    );

    // HTTP: through both connection managers.
    const REQUESTS: u32 = 20;
    let url = format!("http://{VIP}:{PORT}/hello");
    let mut request_ids = std::collections::BTreeSet::new();
    for i in 0..REQUESTS {
        let body = app_curl(&world.client.ns, &url)
            .unwrap_or_else(|e| panic!("request {i} failed: {e}\n{}", world.logs()));
        assert!(body.starts_with("pod=mixed-0 kind=http"), "{body}");
        let fields: BTreeMap<&str, &str> = body
            .split_whitespace()
            .filter_map(|w| w.split_once('='))
            .collect();
        let id = fields["x-request-id"];
        assert!(
            id.len() == 36 && id.matches('-').count() == 4,
            "the client sidecar's connection manager set a UUID request id: {body}"
        );
        request_ids.insert(id.to_string());
        assert_eq!(
            fields["x-envoy-attempt-count"], "1",
            "the client sidecar's route counted the attempt: {body}"
        );
    }
    assert_eq!(request_ids.len(), REQUESTS as usize, "one id per request");
    let client_stats = prometheus::scrape(&world.client.ns);
    // Responses by status code exist only for HTTP (a TCP pool counts its connections as
    // requests in `upstream_rq_total` too).
    let http_200 = |stats: &[prometheus::Sample]| {
        counter(
            stats,
            "envoy_cluster_upstream_rq",
            &[("cluster_name", &cluster), ("response_code", "200")],
        )
    };
    let upstream_rq = http_200(&client_stats);
    assert!(
        upstream_rq >= f64::from(REQUESTS),
        "the client counted {upstream_rq} HTTP 200s from {cluster}, want at least {REQUESTS}"
    );
    let downstream_rq = counter(
        &client_stats,
        "envoy_http_downstream_rq_total",
        &[(
            "http_conn_manager_prefix",
            &format!("outbound_{VIP}_{PORT}"),
        )],
    );
    assert!(
        downstream_rq >= f64::from(REQUESTS),
        "the sniffed HTTP chain's connection manager saw {downstream_rq} requests"
    );
    let server_stats = prometheus::scrape(&world.servers[0].ns);
    let inbound_rq = counter(
        &server_stats,
        "envoy_http_downstream_rq_total",
        &[(
            "http_conn_manager_prefix",
            &format!("inbound_0.0.0.0_{PORT}"),
        )],
    );
    assert!(
        inbound_rq >= f64::from(REQUESTS),
        "the server sidecar sniffed {inbound_rq} HTTP requests, want at least {REQUESTS}"
    );

    // Raw TCP on the same port: the TCP chains on both sides, bytes untouched.
    const LINES: u32 = 5;
    for i in 0..LINES {
        let line = format!("ping {i} not http");
        let reply = traffic::tcp_line(
            &world.lab,
            &world.client.ns,
            &format!("{VIP}:{PORT}"),
            &line,
        )
        .unwrap_or_else(|e| panic!("raw tcp {i} failed: {e}\n{}", world.logs()));
        assert_eq!(reply, format!("mixed-0: {line}"));
    }
    let client_stats = prometheus::scrape(&world.client.ns);
    let tcp_cx = counter(
        &client_stats,
        "envoy_tcp_downstream_cx_total",
        &[("tcp_prefix", &cluster)],
    );
    assert!(
        tcp_cx >= f64::from(LINES),
        "the client's TCP chain to {cluster} carried {tcp_cx} connections, want at least {LINES}"
    );
    assert_eq!(
        http_200(&client_stats),
        upstream_rq,
        "raw TCP connections are not counted as HTTP responses"
    );
    let server_stats = prometheus::scrape(&world.servers[0].ns);
    let inbound_tcp = counter(
        &server_stats,
        "envoy_tcp_downstream_cx_total",
        &[("tcp_prefix", &format!("inbound|{PORT}||"))],
    );
    assert!(
        inbound_tcp >= f64::from(LINES),
        "the server sidecar's TCP chain carried {inbound_tcp} connections, want at least {LINES}"
    );
}

#[test]
fn a_tcp_virtual_service_splits_connections_by_weight() {
    let _guard = harness::lock();
    const PORT: u16 = 9000;
    const CONNECTIONS: u32 = 400;
    const CANARY_WEIGHT: u32 = 30;
    // Each connection picks a cluster at random: the canary's share of 400 has a standard
    // deviation of about 2.3 points, so 8 points either way fails about once in 2,000 runs.
    const TOLERANCE_POINTS: f64 = 8.0;
    let tcp_port = |name| objects::Port {
        name,
        port: PORT,
        target: PORT,
    };
    let split = format!(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: db-split\n  \
         namespace: {NS}\nspec:\n  hosts:\n  - db\n  tcp:\n  - route:\n    - destination:\n        \
         host: db\n      weight: {}\n    - destination:\n        host: db-canary\n      \
         weight: {CANARY_WEIGHT}\n",
        100 - CANARY_WEIGHT
    );
    let world = start_world(
        &[
            (
                "service-db.yaml",
                objects::service("db", NS, "10.96.0.40", "db", &[tcp_port("tcp-db")]),
            ),
            (
                "service-db-canary.yaml",
                objects::service(
                    "db-canary",
                    NS,
                    "10.96.0.41",
                    "db-canary",
                    &[tcp_port("tcp-db")],
                ),
            ),
            ("vs-db-split.yaml", split),
        ],
        &[("db-0", "db"), ("canary-0", "db-canary")],
        |lab, pod| pod.start_app(lab, &[], &[PORT]),
    );
    wait_synced(
        &world,
        &[
            (&format!("outbound|{PORT}||db.{NS}.svc.cluster.local"), 1),
            (
                &format!("outbound|{PORT}||db-canary.{NS}.svc.cluster.local"),
                1,
            ),
        ],
    );
    let mut by_pod: BTreeMap<String, u32> = BTreeMap::new();
    for i in 0..CONNECTIONS {
        let reply = traffic::tcp_line(
            &world.lab,
            &world.client.ns,
            &format!("10.96.0.40:{PORT}"),
            &format!("hello {i}"),
        )
        .unwrap_or_else(|e| panic!("connection {i} failed: {e}\n{}", world.logs()));
        let (pod, echoed) = reply
            .split_once(": ")
            .unwrap_or_else(|| panic!("unexpected reply {reply:?}"));
        assert_eq!(echoed, format!("hello {i}"));
        *by_pod.entry(pod.to_string()).or_default() += 1;
    }
    assert_eq!(
        by_pod.keys().map(String::as_str).collect::<Vec<_>>(),
        ["canary-0", "db-0"],
        "both destinations answered: {by_pod:?}"
    );
    let canary_share = f64::from(by_pod["canary-0"]) * 100.0 / f64::from(CONNECTIONS);
    eprintln!("tcp split over {CONNECTIONS} connections: {by_pod:?} (canary {canary_share:.1}%)");
    assert!(
        (canary_share - f64::from(CANARY_WEIGHT)).abs() <= TOLERANCE_POINTS,
        "the canary got {canary_share:.1}% of {CONNECTIONS} connections, want \
         {CANARY_WEIGHT}% ± {TOLERANCE_POINTS} points: {by_pod:?}"
    );
    // The split happened in the client's tcp_proxy, under the rule's stat prefix.
    let stats = prometheus::scrape(&world.client.ns);
    let split_cx = counter(
        &stats,
        "envoy_tcp_downstream_cx_total",
        &[("tcp_prefix", &format!("db-split.{NS}"))],
    );
    assert!(
        split_cx >= f64::from(CONNECTIONS),
        "the weighted tcp_proxy carried {split_cx} connections, want {CONNECTIONS}"
    );
}
