//! End-to-end: a Sidecar resource scopes what a real Envoy sidecar receives, and
//! REGISTRY_ONLY blocks destinations outside the registry, through real traffic.

#[path = "e2e/mod.rs"]
mod harness;

use std::time::Duration;

use harness::envoy;
use harness::meshd::Meshd;
use harness::netns::Lab;
use harness::objects::{self, Port};
use harness::pod::Pod;
use harness::process::wait_for;
use harness::traffic;
use harness::world::World;

const HTTP: u16 = 9080;
const OUTSIDE_TCP: u16 = 7000;

fn http_port() -> [Port<'static>; 1] {
    [Port {
        name: "http-web",
        port: HTTP,
        target: HTTP,
    }]
}

fn active_clusters(pod: &Pod) -> u64 {
    envoy::stat(&pod.ns, "cluster_manager.active_clusters").unwrap_or(0)
}

fn has_cluster(pod: &Pod, name: &str) -> bool {
    envoy::admin(&pod.ns, "/clusters")
        .lines()
        .any(|l| l.starts_with(&format!("{name}::")))
}

const SIDECAR: &str = "apiVersion: networking.istio.io/v1
kind: Sidecar
metadata:
  name: default
  namespace: demo
spec:
  egress:
  - hosts: [\"./*\"]
  outboundTrafficPolicy:
    mode: REGISTRY_ONLY
";

#[test]
fn sidecar_scope_shrinks_config_and_registry_only_blocks_unknown_destinations() {
    let _guard = harness::lock();
    let mut lab = Lab::new();
    let meshd = Meshd::new(&mut lab);
    meshd.write(
        "ns.yaml",
        &format!(
            "{}---\n{}",
            objects::namespace("demo"),
            objects::namespace("other")
        ),
    );
    // Three services: one in the client's namespace, two elsewhere.
    for (name, ns, vip) in [
        ("echo", "demo", "10.96.0.10"),
        ("far", "other", "10.96.0.20"),
        ("farther", "other", "10.96.0.21"),
    ] {
        meshd.write(
            &format!("svc-{name}.yaml"),
            &objects::service(name, ns, vip, name, &http_port()),
        );
    }
    let mut server = Pod::new(&mut lab, "echo-0", "demo");
    server.start_app(&lab, &[HTTP], &[]);
    meshd.write(
        "pod-echo-0.yaml",
        &objects::pod("echo-0", "demo", &server.ip, "echo", &http_port()),
    );
    let mut world = World::start(lab, meshd, vec![server], "demo");
    // A host outside the mesh: no sidecar, not in the registry.
    let (outside_ns, outside_ip) = world.lab.attach("outside");
    let _outside =
        traffic::start_server(&world.lab, &outside_ns, "outside", &[HTTP], &[OUTSIDE_TCP]);
    let (client, lab) = (&world.client, &world.lab);
    let far = "outbound|9080||far.other.svc.cluster.local";
    wait_for(
        "the client to get every cluster",
        Duration::from_secs(30),
        || has_cluster(client, far).then_some(()),
    );
    let unscoped = active_clusters(client);

    // Mesh default ALLOW_ANY: the outside host is reachable over HTTP and TCP.
    let outside_http = format!("{outside_ip}:{HTTP}");
    let tally = traffic::http_requests(lab, &client.ns, &outside_http, "outside", 3);
    assert_eq!(tally.by_pod.get("outside"), Some(&3), "{tally:?}");
    let outside_tcp = format!("{outside_ip}:{OUTSIDE_TCP}");
    assert!(traffic::tcp_line(lab, &client.ns, &outside_tcp, "hi").is_ok());

    world.meshd.write("sidecar.yaml", SIDECAR);
    let scoped = wait_for("the Sidecar to apply", Duration::from_secs(30), || {
        (!has_cluster(client, far)).then(|| active_clusters(client))
    });
    // The two services of the other namespace (one cluster each) are gone.
    assert_eq!(
        scoped + 2,
        unscoped,
        "clusters before {unscoped}, after {scoped}"
    );
    assert!(has_cluster(
        client,
        "outbound|9080||echo.demo.svc.cluster.local"
    ));

    // Its own namespace still works; destinations outside the registry do not.
    let tally = traffic::http_requests(lab, &client.ns, "10.96.0.10:9080", "echo", 5);
    assert_eq!(tally.by_pod.get("echo-0"), Some(&5), "{tally:?}");
    let tally = traffic::http_requests(lab, &client.ns, &outside_http, "outside", 3);
    assert_eq!(tally.ok(), 0, "REGISTRY_ONLY let HTTP out: {tally:?}");
    assert!(
        tally.failures.len() == 3 && tally.failures.iter().all(|f| f.contains("502")),
        "blocked HTTP answers 502 (block_all): {tally:?}"
    );
    assert!(
        traffic::tcp_line(lab, &client.ns, &outside_tcp, "hi").is_err(),
        "REGISTRY_ONLY let TCP out"
    );
    assert!(envoy::rejected_updates(&client.ns).is_empty());
}
