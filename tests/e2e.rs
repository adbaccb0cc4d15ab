//! End-to-end: meshd serving real Envoy 1.40 sidecars in network-namespace pods with
//! Istio-style capture. Requests go app -> Envoy -> Envoy -> app; see tests/e2e/ for the
//! harness. Needs root and Envoy; fails (never skips) without them.

#[path = "e2e/mod.rs"]
mod harness;

use std::collections::BTreeSet;
use std::time::Duration;

use harness::envoy;
use harness::meshd::Meshd;
use harness::netns::Lab;
use harness::objects::{self, Port};
use harness::pod::Pod;
use harness::process::wait_for;
use harness::prometheus::{self, Sample};
use harness::syncz;
use harness::traffic::{self, Tally};

const NS: &str = "demo";
const SVC: &str = "echo";
const VIP: &str = "10.96.0.10";
const FQDN: &str = "echo.demo.svc.cluster.local";
const HTTP_PORT: u16 = 9080;
const TCP_PORT: u16 = 9000;

fn ports() -> [Port<'static>; 2] {
    [
        Port {
            name: "http-web",
            port: HTTP_PORT,
            target: HTTP_PORT,
        },
        Port {
            name: "tcp-echo",
            port: TCP_PORT,
            target: TCP_PORT,
        },
    ]
}

fn http_cluster() -> String {
    format!("outbound|{HTTP_PORT}||{FQDN}")
}

/// meshd, the `echo` service's pods and client pods. Processes stop before the lab goes.
struct World {
    clients: Vec<Pod>,
    servers: Vec<Pod>,
    meshd: Meshd,
    lab: Lab,
}

impl World {
    /// `servers` echo pods behind the `echo` service, and one client pod per entry of
    /// `clients` (name, Delta or not), all with sidecars synced from meshd.
    fn new(servers: usize, clients: &[(&str, bool)]) -> World {
        let mut lab = Lab::new();
        let meshd = Meshd::new(&mut lab);
        meshd.write("namespace.yaml", &objects::namespace(NS));
        meshd.write(
            "service-echo.yaml",
            &objects::service(SVC, NS, VIP, SVC, &ports()),
        );
        let mut world = World {
            clients: Vec::new(),
            servers: Vec::new(),
            meshd,
            lab,
        };
        for i in 0..servers {
            let pod = world.new_server(&format!("echo-{i}"));
            world.servers.push(pod);
        }
        for (name, _) in clients {
            let pod = Pod::new(&mut world.lab, name, NS);
            world.meshd.write(
                &format!("pod-{name}.yaml"),
                &objects::pod(name, NS, &pod.ip, "client", &[]),
            );
            world.clients.push(pod);
        }
        world.meshd.start();
        for i in 0..world.servers.len() {
            let bootstrap = world.meshd.bootstrap(&world.servers[i].node_id(), false);
            world.servers[i].start_envoy(&world.lab, &bootstrap);
        }
        for (i, (_, delta)) in clients.iter().enumerate() {
            let bootstrap = world.meshd.bootstrap(&world.clients[i].node_id(), *delta);
            assert_eq!(
                bootstrap.contains("DELTA_GRPC"),
                *delta,
                "bootstrap api type for delta={delta}:\n{bootstrap}"
            );
            world.clients[i].start_envoy(&world.lab, &bootstrap);
        }
        let want: BTreeSet<String> = world.servers.iter().map(endpoint).collect();
        for client in &world.clients {
            wait_endpoints(client, &want);
        }
        world.assert_in_sync();
        world
    }

    /// Every sidecar has acked the latest of every type in meshd's view and has rejected
    /// nothing in its own.
    fn assert_in_sync(&self) {
        let pods: Vec<&Pod> = self.clients.iter().chain(&self.servers).collect();
        let mut last = None;
        wait_for(
            "every proxy to be acked in meshd's syncz",
            Duration::from_secs(45),
            || {
                last = self.meshd.syncz();
                let state = last.as_ref()?;
                pods.iter()
                    .all(|p| syncz::acked(state, &p.node_id()))
                    .then_some(())
            },
        );
        for pod in pods {
            let rejected = envoy::rejected_updates(&pod.ns);
            assert!(
                rejected.is_empty(),
                "{} rejected config: {rejected:?}",
                pod.name
            );
        }
    }

    /// A pod of the service with its app running and its file written; no sidecar yet.
    /// A background HTTP load from every client to the service VIP.
    fn start_loads(&self, duration: Duration) -> Vec<traffic::Load> {
        let addr = format!("{VIP}:{HTTP_PORT}");
        self.clients
            .iter()
            .map(|c| traffic::start_load(&self.lab, &c.ns, &addr, SVC, duration, &c.name))
            .collect()
    }

    fn new_server(&mut self, name: &str) -> Pod {
        let mut pod = Pod::new(&mut self.lab, name, NS);
        pod.start_app(&self.lab, &[HTTP_PORT], &[TCP_PORT]);
        self.meshd.write(
            &format!("pod-{name}.yaml"),
            &objects::pod(name, NS, &pod.ip, SVC, &ports()),
        );
        pod
    }

    fn server_names(&self) -> BTreeSet<String> {
        self.servers.iter().map(|p| p.name.clone()).collect()
    }
}

impl Drop for World {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "=== logs in {} (kept when MESHD_E2E_KEEP=1) ===",
                self.lab.dir.display()
            );
            eprintln!("--- meshd\n{}", self.meshd.log_tail());
            for pod in self.clients.iter().chain(&self.servers) {
                eprint!("{}", pod.logs());
            }
        }
    }
}

fn endpoint(pod: &Pod) -> String {
    format!("{}:{HTTP_PORT}", pod.ip)
}

/// Waits until `client`'s Envoy has exactly `want` as endpoints of the HTTP cluster.
fn wait_endpoints(client: &Pod, want: &BTreeSet<String>) {
    wait_cluster_endpoints(client, &http_cluster(), want);
}

/// Waits until `client`'s Envoy has exactly `want` as endpoints of `cluster`.
fn wait_cluster_endpoints(client: &Pod, cluster: &str, want: &BTreeSet<String>) {
    wait_for(
        &format!("{} to see endpoints {want:?} in {cluster}", client.name),
        Duration::from_secs(30),
        || (envoy::cluster_endpoints(&client.ns, cluster) == *want).then_some(()),
    );
}

fn assert_spread(tally: &Tally, servers: &BTreeSet<String>, what: &str) {
    assert!(
        tally.failures.is_empty(),
        "{what}: failed requests: {tally:?}"
    );
    let answered: BTreeSet<String> = tally.by_pod.keys().cloned().collect();
    assert_eq!(&answered, servers, "{what}: pods that answered: {tally:?}");
}

/// The `/stats` name of a cluster counter: clusters count under their `alt_stat_name`,
/// `<cluster>;` as istiod sets it.
fn cluster_stat(cluster: &str, counter: &str) -> String {
    format!("cluster.{cluster};.{counter}")
}

/// A stat of `pod`'s Envoy that must exist (Envoy creates a cluster's stats with it).
fn stat(pod: &Pod, name: &str) -> u64 {
    envoy::stat(&pod.ns, name).unwrap_or_else(|| panic!("{}: no stat {name}", pod.name))
}

/// Scenarios 1 and 4: HTTP via ClusterIP through both sidecars, spread over all pods,
/// with one client on SotW and one on Delta xDS.
#[test]
fn http_through_both_sidecars_sotw_and_delta() {
    let _guard = harness::lock();
    let world = World::new(3, &[("client-sotw", false), ("client-delta", true)]);
    let servers = world.server_names();
    let addr = format!("{VIP}:{HTTP_PORT}");
    let state = world.meshd.syncz().expect("meshd /debug/syncz");
    for (client, delta) in world.clients.iter().zip([false, true]) {
        assert_eq!(
            syncz::delta(&state, &client.node_id()),
            Some(delta),
            "{} in syncz: {state:#}",
            client.name
        );
        assert!(
            syncz::acked(&state, &client.node_id()),
            "{} not in sync: {state:#}",
            client.name
        );
    }
    let mut retries = 0;
    for client in &world.clients {
        let tally = traffic::http_requests(&world.lab, &client.ns, &addr, SVC, 60);
        eprintln!("{}: {tally:?}", client.name);
        assert_spread(
            &tally,
            &servers,
            &format!("{} with Host {SVC}", client.name),
        );
        assert_eq!(tally.ok(), 60);
        // Every name Istio's virtual host answers to, with and without the port.
        for host in [FQDN, "echo.demo", "echo.demo.svc", "echo.demo:9080", VIP] {
            let t = traffic::http_requests(&world.lab, &client.ns, &addr, host, 2);
            assert!(
                t.failures.is_empty() && t.ok() == 2,
                "{} with Host {host}: {t:?}",
                client.name
            );
        }
        // 60 + 5 x 2 requests, each sent upstream once plus Istio's retries (none when
        // every pod is up, but a retry would not be a failure).
        let outbound = stat(client, &cluster_stat(&http_cluster(), "upstream_rq_total"));
        let retried = stat(client, &cluster_stat(&http_cluster(), "upstream_rq_retry"));
        assert_eq!(
            outbound,
            70 + retried,
            "{}: outbound requests ({retried} retried)",
            client.name
        );
        retries += retried;
    }
    let inbound: u64 = world
        .servers
        .iter()
        .map(|s| {
            let n = stat(
                s,
                &cluster_stat(&format!("inbound|{HTTP_PORT}||"), "upstream_rq_total"),
            );
            assert!(n > 0, "{}: inbound cluster unused", s.name);
            n
        })
        .sum();
    // Every request reached exactly one pod, a retried one maybe two.
    assert!(
        (140..=140 + retries).contains(&inbound),
        "inbound requests over all pods: {inbound} ({retries} retried)"
    );
}

/// Scenario 2: a `tcp-` port goes through tcp_proxy on both sides, SotW and Delta.
#[test]
fn tcp_service_through_tcp_proxy() {
    let _guard = harness::lock();
    let world = World::new(3, &[("client-sotw", false), ("client-delta", true)]);
    let servers = world.server_names();
    let addr = format!("{VIP}:{TCP_PORT}");
    for client in &world.clients {
        let mut answered = BTreeSet::new();
        for i in 0..9 {
            let text = format!("line-{i}");
            let reply = traffic::tcp_line(&world.lab, &client.ns, &addr, &text)
                .unwrap_or_else(|e| panic!("{}: tcp echo {i}: {e}", client.name));
            let (pod, echoed) = reply
                .split_once(": ")
                .unwrap_or_else(|| panic!("unexpected reply {reply:?}"));
            assert_eq!(echoed, text);
            assert!(
                servers.contains(pod),
                "reply from {pod:?}, not a pod of {SVC}"
            );
            answered.insert(pod.to_string());
        }
        // Load balancing picks pods at random: nine connections all landing on one of
        // three pods (p = 3^-8) would mean the balancing is not spreading.
        assert!(
            answered.len() >= 2,
            "{}: tcp connections all went to {answered:?}",
            client.name
        );
        let outbound = stat(
            client,
            &cluster_stat(&format!("outbound|{TCP_PORT}||{FQDN}"), "upstream_cx_total"),
        );
        // One upstream connection per echoed line (tcp_proxy tries each connect once).
        assert_eq!(outbound, 9, "{}: outbound tcp connections", client.name);
    }
    let inbound: u64 = world
        .servers
        .iter()
        .map(|s| {
            stat(
                s,
                &cluster_stat(&format!("inbound|{TCP_PORT}||"), "upstream_cx_total"),
            )
        })
        .sum();
    assert_eq!(inbound, 18, "inbound tcp connections over all pods");
}

/// Asserts that `samples` have `name` with exactly `labels` and a value of at least `min`.
fn assert_metric(pod: &Pod, samples: &[Sample], name: &str, labels: &[(&str, &str)], min: f64) {
    let value = prometheus::value(samples, name, labels);
    let similar: Vec<&Sample> = samples.iter().filter(|s| s.name == name).collect();
    assert!(
        value.is_some_and(|v| v >= min),
        "{}: {name}{labels:?} = {value:?}, want >= {min}; samples named so: {similar:#?}",
        pod.name
    );
}

/// Stats as an Istio sidecar names them: with istiod's stat names and Istio's tag rules
/// in the bootstrap, `/stats/prometheus` on 15090 gives Istio's metric names and labels,
/// whole cluster names included (Envoy's default rules would cut them at the first dot).
#[test]
fn prometheus_stats_have_istio_names_and_labels() {
    let _guard = harness::lock();
    let world = World::new(1, &[("client-sotw", false)]);
    let (client, server) = (&world.clients[0], &world.servers[0]);
    let http = traffic::http_requests(
        &world.lab,
        &client.ns,
        &format!("{VIP}:{HTTP_PORT}"),
        SVC,
        10,
    );
    assert_eq!(http.ok(), 10, "{http:?}");
    for i in 0..3 {
        let reply = traffic::tcp_line(&world.lab, &client.ns, &format!("{VIP}:{TCP_PORT}"), "x");
        assert!(reply.is_ok(), "tcp echo {i}: {reply:?}");
    }
    let outbound_http = http_cluster();
    let outbound_tcp = format!("outbound|{TCP_PORT}||{FQDN}");
    let inbound_http = format!("inbound|{HTTP_PORT}||");
    let inbound_tcp = format!("inbound|{TCP_PORT}||");
    let http_listener = format!("0.0.0.0_{HTTP_PORT}");
    let tcp_listener = format!("{VIP}_{TCP_PORT}");

    let c = prometheus::scrape(&client.ns);
    fn cluster(name: &str) -> [(&str, &str); 1] {
        [("cluster_name", name)]
    }
    assert_metric(
        client,
        &c,
        "envoy_cluster_upstream_rq_total",
        &cluster(&outbound_http),
        10.0,
    );
    assert_metric(
        client,
        &c,
        "envoy_cluster_upstream_rq",
        &[("cluster_name", &outbound_http), ("response_code", "200")],
        10.0,
    );
    assert_metric(
        client,
        &c,
        "envoy_cluster_upstream_rq",
        &[
            ("cluster_name", &outbound_http),
            ("response_code_class", "2xx"),
        ],
        10.0,
    );
    assert_metric(
        client,
        &c,
        "envoy_cluster_upstream_cx_total",
        &cluster(&outbound_tcp),
        3.0,
    );
    assert_metric(
        client,
        &c,
        "envoy_cluster_upstream_cx_total",
        &cluster("xds-grpc"),
        1.0,
    );
    assert_metric(
        client,
        &c,
        "envoy_http_downstream_rq_total",
        &[(
            "http_conn_manager_prefix",
            &format!("outbound_{http_listener}"),
        )],
        10.0,
    );
    assert_metric(
        client,
        &c,
        "envoy_http_downstream_rq",
        &[
            (
                "http_conn_manager_prefix",
                &format!("outbound_{http_listener}"),
            ),
            ("response_code_class", "2xx"),
        ],
        10.0,
    );
    assert_metric(
        client,
        &c,
        "envoy_tcp_downstream_cx_total",
        &[("tcp_prefix", &outbound_tcp)],
        3.0,
    );
    assert_metric(
        client,
        &c,
        "envoy_listener_downstream_cx_total",
        &[("listener_address", &http_listener)],
        1.0,
    );
    assert_metric(
        client,
        &c,
        "envoy_listener_downstream_cx_total",
        &[("listener_address", &tcp_listener)],
        3.0,
    );

    let s = prometheus::scrape(&server.ns);
    assert_metric(
        server,
        &s,
        "envoy_cluster_upstream_rq_total",
        &cluster(&inbound_http),
        10.0,
    );
    assert_metric(
        server,
        &s,
        "envoy_cluster_upstream_rq",
        &[("cluster_name", &inbound_http), ("response_code", "200")],
        10.0,
    );
    assert_metric(
        server,
        &s,
        "envoy_cluster_upstream_cx_total",
        &cluster(&inbound_tcp),
        3.0,
    );
    assert_metric(
        server,
        &s,
        "envoy_http_downstream_rq_total",
        &[(
            "http_conn_manager_prefix",
            &format!("inbound_{http_listener}"),
        )],
        10.0,
    );
    assert_metric(
        server,
        &s,
        "envoy_tcp_downstream_cx_total",
        &[("tcp_prefix", &inbound_tcp)],
        3.0,
    );
    assert_metric(
        server,
        &s,
        "envoy_listener_downstream_cx_total",
        &[("listener_address", "0.0.0.0_15006")],
        // The three TCP connections and at least one pooled HTTP/1.1 connection.
        4.0,
    );

    // Nothing is named the way Envoy's default rules name Istio's clusters.
    for (pod, samples) in [(client, &c), (server, &s)] {
        let split: Vec<&Sample> = samples
            .iter()
            .filter(|x| {
                x.name.contains("svc_cluster_local")
                    || x.labels.contains_key("envoy_cluster_name")
                    || x.labels.values().any(|v| v.ends_with(';'))
            })
            .collect();
        assert!(
            split.is_empty(),
            "{}: default-style names: {split:#?}",
            pod.name
        );
    }
}

/// Scenario 3: a pod file written gets traffic; a pod file removed stops getting it, with
/// no failed request while requests keep flowing, for a SotW and a Delta client.
#[test]
fn endpoints_follow_pod_files_without_failures() {
    let _guard = harness::lock();
    let mut world = World::new(2, &[("client-sotw", false), ("client-delta", true)]);
    let loads = world.start_loads(Duration::from_secs(120));
    std::thread::sleep(Duration::from_secs(1));

    // Add echo-2: app and sidecar first, then the file that makes it an endpoint.
    let mut added = world.new_server("echo-2");
    let bootstrap = world.meshd.bootstrap(&added.node_id(), false);
    added.start_envoy(&world.lab, &bootstrap);
    world.servers.push(added);
    let all: BTreeSet<String> = world.servers.iter().map(endpoint).collect();
    for (client, load) in world.clients.iter().zip(&loads) {
        wait_endpoints(client, &all);
        wait_for(
            &format!("echo-2 to answer {}", client.name),
            Duration::from_secs(20),
            || load.so_far().by_pod.contains_key("echo-2").then_some(()),
        );
    }

    // Remove echo-0: file first, then, once no client routes to it, its app.
    world.meshd.remove("pod-echo-0.yaml");
    let removed = world.servers.remove(0);
    let remaining: BTreeSet<String> = world.servers.iter().map(endpoint).collect();
    for client in &world.clients {
        wait_endpoints(client, &remaining);
    }
    std::thread::sleep(Duration::from_secs(1));
    let before_stop: Vec<u32> = loads
        .iter()
        .map(|l| l.so_far().by_pod.get("echo-0").copied().unwrap_or(0))
        .collect();
    drop(removed);
    std::thread::sleep(Duration::from_secs(3));

    world.assert_in_sync();
    for ((load, client), before) in loads.into_iter().zip(&world.clients).zip(before_stop) {
        let tally = load.stop();
        let name = &client.name;
        eprintln!("{name} churn: {tally:?}; echo-0 answered {before} before its app stopped");
        assert!(
            tally.failures.is_empty(),
            "{name}: failed requests during the change: {tally:?}"
        );
        assert!(
            tally.by_pod.get("echo-2").copied().unwrap_or(0) > 0,
            "{name}: {tally:?}"
        );
        assert_eq!(
            tally.by_pod.get("echo-0").copied().unwrap_or(0),
            before,
            "{name}: echo-0 answered after it was removed: {tally:?}"
        );
        // A floor, not a figure: how many requests a load makes in its time depends on the
        // machine. It shows that requests kept flowing through the change.
        assert!(tally.ok() > 50, "{name}: too few requests: {tally:?}");
    }
}

/// Scenario 5: meshd restarted while traffic flows: nothing fails, and every proxy
/// reconnects and acks again.
#[test]
fn meshd_restart_under_traffic() {
    let _guard = harness::lock();
    let mut world = World::new(3, &[("client-sotw", false), ("client-delta", true)]);
    let loads = world.start_loads(Duration::from_secs(120));
    std::thread::sleep(Duration::from_secs(2));
    world.meshd.stop();
    for pod in world.clients.iter().chain(&world.servers) {
        wait_for(
            &format!("{} to notice meshd is gone", pod.name),
            Duration::from_secs(10),
            || (envoy::stat(&pod.ns, "control_plane.connected_state") == Some(0)).then_some(()),
        );
    }
    std::thread::sleep(Duration::from_secs(2));
    let during = loads.iter().map(|l| l.so_far().ok()).sum::<u32>();
    world.meshd.start();

    // Envoy retries with backoff; the reconnect lands well within assert_in_sync's wait.
    world.assert_in_sync();
    for pod in world.clients.iter().chain(&world.servers) {
        assert_eq!(
            envoy::stat(&pod.ns, "control_plane.connected_state"),
            Some(1),
            "{} not connected to meshd",
            pod.name
        );
    }
    std::thread::sleep(Duration::from_secs(2));
    let after = loads.iter().map(|l| l.so_far().ok()).sum::<u32>();
    assert!(after > during, "no request succeeded after the restart");
    let servers = world.server_names();
    for (load, client) in loads.into_iter().zip(&world.clients) {
        let tally = load.stop();
        eprintln!("{} across the restart: {tally:?}", client.name);
        assert_spread(
            &tally,
            &servers,
            &format!("{} across the restart", client.name),
        );
        assert!(
            tally.ok() > 50,
            "{}: too few requests: {tally:?}",
            client.name
        );
    }
}

const OTHER: &str = "other";
const OTHER_VIP: &str = "10.96.0.11";

/// echo's two clusters, then other's.
fn watched_clusters() -> [String; 3] {
    [
        http_cluster(),
        format!("outbound|{TCP_PORT}||{FQDN}"),
        format!("outbound|{HTTP_PORT}||{OTHER}.{NS}.svc.cluster.local"),
    ]
}

/// meshd's EDS responses so far, over every stream: how many, and the bytes of the
/// resources they carried (`pilot_xds_config_size_bytes{type="eds"}`).
fn eds_pushed(meshd: &Meshd) -> (f64, f64) {
    let text = meshd.admin_get("/metrics").expect("meshd /metrics");
    let samples = prometheus::parse(&text);
    let get = |name: &str| {
        prometheus::value(&samples, name, &[("type", "eds")])
            .unwrap_or_else(|| panic!("meshd /metrics has no {name}{{type=\"eds\"}}:\n{text}"))
    };
    (
        get("pilot_xds_config_size_bytes_count"),
        get("pilot_xds_config_size_bytes_sum"),
    )
}

/// The updates a sidecar applied: per cluster of `clusters`, the EDS responses that carried
/// its endpoints (`update_success`: a SotW EDS response counts only for the clusters it
/// carries), then the CDS responses.
fn updates(pod: &Pod, clusters: &[String]) -> Vec<u64> {
    clusters
        .iter()
        .map(|c| stat(pod, &cluster_stat(c, "update_success")))
        .chain([stat(pod, "cluster_manager.cds.update_success")])
        .collect()
}

/// A pod of the `other` service (no app or sidecar: only its address matters) and its file.
fn other_pod(world: &mut World, name: &str) -> Pod {
    let pod = Pod::new(&mut world.lab, name, NS);
    world.meshd.write(
        &format!("pod-{name}.yaml"),
        &objects::pod(name, NS, &pod.ip, OTHER, &ports()[..1]),
    );
    pod
}

/// Every sidecar's pod, client first.
fn sidecars(world: &World) -> Vec<&Pod> {
    world.clients.iter().chain(&world.servers).collect()
}

/// What a change is checked against, taken before it: every sidecar's `updates` of the
/// watched clusters, meshd's `eds_pushed` and its syncz.
struct Before {
    updates: Vec<Vec<u64>>,
    pushed: (f64, f64),
    syncz: serde_json::Value,
}

impl Before {
    fn take(world: &World) -> Before {
        Before {
            updates: sidecars(world)
                .iter()
                .map(|p| updates(p, &watched_clusters()))
                .collect(),
            pushed: eds_pushed(&world.meshd),
            syncz: world.meshd.syncz().expect("meshd /debug/syncz"),
        }
    }
}

/// Waits until every sidecar has `others`' addresses as the endpoints of `other` and all
/// are in sync, after a change (made since `before`) to `other`'s pods only. Asserts that
/// the change reached the sidecars as SotW EDS responses carrying `other` alone: every
/// sidecar acked a new EDS version and applied an update of `other`'s cluster but none of
/// `echo`'s two clusters (nor of its clusters); the responses averaged fewer bytes than
/// `full` (no more than a response carrying `echo`'s endpoints alone, so less than a full
/// one); Envoy still has, and routes to, `echo`'s endpoints.
fn assert_other_pushed_alone(
    world: &World,
    before: &Before,
    others: &[Pod],
    full: f64,
    what: &str,
) {
    let clusters = watched_clusters();
    let want: BTreeSet<String> = others.iter().map(endpoint).collect();
    for pod in sidecars(world) {
        wait_cluster_endpoints(pod, &clusters[2], &want);
    }
    world.assert_in_sync();
    let echo_http: BTreeSet<String> = world.servers.iter().map(endpoint).collect();
    let echo_tcp: BTreeSet<String> = world
        .servers
        .iter()
        .map(|p| format!("{}:{TCP_PORT}", p.ip))
        .collect();
    let state = world.meshd.syncz().expect("meshd /debug/syncz");
    for (pod, was) in sidecars(world).into_iter().zip(&before.updates) {
        let after = updates(pod, &clusters);
        eprintln!(
            "{what}: {} EDS updates of {clusters:?}, then CDS updates: {was:?} -> {after:?}",
            pod.name
        );
        for (cluster, want) in [(&clusters[0], &echo_http), (&clusters[1], &echo_tcp)] {
            assert_eq!(
                &envoy::cluster_endpoints(&pod.ns, cluster),
                want,
                "{what}: {} lost the endpoints of {cluster}",
                pod.name
            );
        }
        assert!(
            after[2] > was[2],
            "{what}: {} applied no EDS update of {}: {was:?} -> {after:?}",
            pod.name,
            clusters[2]
        );
        assert_eq!(
            (after[0], after[1], after[3]),
            (was[0], was[1], was[3]),
            "{what}: {} applied an update of echo's endpoints or of its clusters (EDS updates \
             of {clusters:?}, then CDS updates: {was:?} -> {after:?}): not a partial push",
            pod.name
        );
        let id = pod.node_id();
        let (old, new) = (&before.syncz[&id]["endpoints"], &state[&id]["endpoints"]);
        assert!(
            new["version_acked"] == new["version_sent"]
                && new["version_sent"] != old["version_sent"]
                && new["responses"].as_u64() > old["responses"].as_u64(),
            "{what}: {} did not ack a new EDS response: before {old:#}, after {new:#}",
            pod.name
        );
    }
    let (pushes, bytes) = eds_pushed(&world.meshd);
    let (pushes, bytes) = (pushes - before.pushed.0, bytes - before.pushed.1);
    eprintln!("{what}: {pushes} EDS responses of {bytes} bytes in all; a full one {full:.0}+");
    let count = sidecars(world).len() as f64;
    assert!(
        pushes >= count && bytes / pushes < full,
        "{what}: {pushes} EDS responses of {bytes} bytes in all, want at least {count} (one \
         per sidecar) of under {full:.0} bytes each on average"
    );
    let client = &world.clients[0];
    let addr = format!("{VIP}:{HTTP_PORT}");
    let tally = traffic::http_requests(&world.lab, &client.ns, &addr, SVC, 20);
    assert_spread(
        &tally,
        &world.server_names(),
        &format!("{what}: echo from {}", client.name),
    );
}

/// SotW endpoint pushes carry only the clusters whose endpoints changed (as istiod's), and
/// stock Envoy keeps the endpoints of the clusters a push leaves out: a pod of `other`
/// added, then one removed, updates `other` in every sidecar while `echo`'s clusters get no
/// EDS update at all, keep their endpoints and keep answering, and every sidecar acks.
#[test]
fn sotw_endpoint_push_carries_only_the_changed_service() {
    let _guard = harness::lock();
    let mut world = World::new(2, &[("client-sotw", false)]);
    // Every EDS response so far was a sidecar's first, with all it subscribed to: some or
    // all of echo's two clusters, unchanged from here on. A full response once `other`
    // exists carries them and `other` too, so it is bigger than this mean.
    let (startup_pushes, startup_bytes) = eds_pushed(&world.meshd);
    let full = startup_bytes / startup_pushes;
    eprintln!("startup: {startup_pushes} EDS responses of {startup_bytes} bytes");
    let echo_only = &watched_clusters()[..2];
    let at_start: Vec<Vec<u64>> = sidecars(&world)
        .iter()
        .map(|p| updates(p, echo_only))
        .collect();

    // other appears: a cluster push, then a full EDS response for the grown subscription,
    // which Envoy counts as an update of every cluster it carries, echo's too.
    let mut others = vec![other_pod(&mut world, "other-0")];
    world.meshd.write(
        "service-other.yaml",
        &objects::service(OTHER, NS, OTHER_VIP, OTHER, &ports()[..1]),
    );
    let want: BTreeSet<String> = others.iter().map(endpoint).collect();
    for pod in sidecars(&world) {
        wait_cluster_endpoints(pod, &watched_clusters()[2], &want);
    }
    world.assert_in_sync();
    for (pod, before) in sidecars(&world).into_iter().zip(at_start) {
        let after = updates(pod, echo_only);
        assert!(
            after.iter().zip(&before).all(|(a, b)| a > b),
            "{}: EDS updates of {echo_only:?}, then CDS updates, did not all grow with the \
             full response: {before:?} -> {after:?}",
            pod.name
        );
    }

    let before = Before::take(&world);
    others.push(other_pod(&mut world, "other-1"));
    assert_other_pushed_alone(&world, &before, &others, full, "other-1 added");

    let before = Before::take(&world);
    world.meshd.remove("pod-other-0.yaml");
    others.remove(0);
    assert_other_pushed_alone(&world, &before, &others, full, "other-0 removed");
}
