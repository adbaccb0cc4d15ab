//! End-to-end through the Kubernetes API: meshd (`--kubernetes`) reads a real kube-apiserver
//! (scripts/kube-testenv.sh, run inside meshd's network namespace), and stock Envoy sidecars
//! of pods created through the API carry traffic to a Service once the Service, its
//! EndpointSlice and its Pod are created with kubectl, and stop once they are deleted.
//! The test API server runs no controllers: the test writes the EndpointSlice and the Pods'
//! status itself. Needs root, Envoy and curl (see tests/e2e/mod.rs); fails, never skips.

mod common;
#[path = "e2e/mod.rs"]
mod harness;
mod kube;

use std::collections::BTreeSet;
use std::time::Duration;

use harness::envoy;
use harness::meshd::Meshd;
use harness::netns::Lab;
use harness::objects::{self as hobjects, Port};
use harness::pod::Pod;
use harness::process::wait_for;
use harness::traffic;
use harness::world::World;
use kube::objects;
use kube::ApiServer;

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

/// Creates a Pod through the API and sets its status (running, ready, its IP) as a kubelet
/// would.
fn create_pod(server: &ApiServer, pod: &Pod, app: &str, ports: &[Port]) {
    let yaml = hobjects::pod(&pod.name, NS, &pod.ip, app, ports);
    // kubectl create ignores `status`; it goes through the status subresource.
    let spec = yaml.split("status:").next().unwrap();
    server.apply(spec);
    let status = serde_json::json!({
        "status": {
            "phase": "Running",
            "podIP": pod.ip,
            "podIPs": [{"ip": pod.ip}],
            "conditions": [{"type": "Ready", "status": "True"}],
        }
    });
    server.kubectl(
        &[
            "patch",
            "pod",
            &pod.name,
            "-n",
            NS,
            "--subresource=status",
            "--type=merge",
            "-p",
            &status.to_string(),
        ],
        "",
    );
}

/// Whether the proxy has acked the latest clusters and listeners.
fn clusters_and_listeners_acked(syncz: &serde_json::Value, node_id: &str) -> bool {
    let Some(entry) = syncz.get(node_id) else {
        return false;
    };
    ["clusters", "listeners"].iter().all(|t| {
        let sent = entry[t]["version_sent"].as_str().unwrap_or("");
        !sent.is_empty() && entry[t]["version_acked"].as_str() == Some(sent)
    })
}

fn endpoints(world: &World) -> BTreeSet<String> {
    envoy::cluster_endpoints(&world.client.ns, CLUSTER)
}

#[test]
fn a_service_created_and_deleted_through_the_api_carries_traffic_and_stops() {
    let _guard = harness::lock();
    let mut lab = Lab::new();
    let mut meshd = Meshd::new(&mut lab);
    let server = ApiServer::start_with(&lab.path("kube"), "", Some(&meshd.ns.name));
    server.apply(&objects::namespace(NS));
    // meshd keeps its CA in the root namespace's Secrets, as istiod does.
    server.apply(&objects::namespace("istio-system"));

    let mut echo = Pod::new(&mut lab, "echo-0", NS);
    echo.start_app(&lab, &[HTTP_PORT], &[]);
    let client = Pod::new(&mut lab, "client", NS);
    create_pod(&server, &client, "client", &[]);

    meshd.start_kubernetes(&server.kubeconfig(), &[]);
    let mut world = World {
        client,
        servers: vec![echo],
        meshd,
        lab,
    };
    for i in 0..world.servers.len() {
        let bootstrap = world.meshd.bootstrap(&world.servers[i].node_id(), false);
        world.servers[i].start_envoy(&world.lab, &bootstrap);
    }
    let bootstrap = world.meshd.bootstrap(&world.client.node_id(), false);
    world.client.start_envoy(&world.lab, &bootstrap);
    // No HTTP service yet, so no routes to ask for.
    world.assert_in_sync_by(clusters_and_listeners_acked);

    // Before the Service exists nothing routes to its address.
    assert!(endpoints(&world).is_empty());
    let before = traffic::http_requests(
        &world.lab,
        &world.client.ns,
        &format!("{VIP}:{HTTP_PORT}"),
        SVC,
        2,
    );
    assert_eq!(before.ok(), 0, "{before:?}");

    // The Service (at a cluster IP of the test's choosing), its EndpointSlice and its Pod.
    server.apply(&hobjects::service(SVC, NS, VIP, SVC, &ports()));
    let echo_ip = world.servers[0].ip.clone();
    server.apply(
        &objects::endpoint_slice("echo-1", NS, SVC, HTTP_PORT, &echo_ip)
            .replace("- name: http\n", "- name: http-web\n"),
    );
    create_pod(&server, &world.servers[0], SVC, &ports());
    let want: BTreeSet<String> = [format!("{echo_ip}:{HTTP_PORT}")].into();
    wait_for(
        &format!("the client to see endpoints {want:?}"),
        Duration::from_secs(60),
        || (endpoints(&world) == want).then_some(()),
    );
    world.assert_in_sync();
    let tally = traffic::http_requests(
        &world.lab,
        &world.client.ns,
        &format!("{VIP}:{HTTP_PORT}"),
        SVC,
        5,
    );
    assert_eq!(tally.ok(), 5, "{tally:?}");
    assert_eq!(tally.by_pod.get("echo-0"), Some(&5), "{tally:?}");

    // Deleted through the API: the route goes, and traffic stops.
    server.kubectl(
        &[
            "delete",
            "-n",
            NS,
            "service/echo",
            "endpointslice/echo-1",
            "pod/echo-0",
            // No kubelet confirms a graceful deletion here.
            "--grace-period=0",
            "--force",
        ],
        "",
    );
    wait_for(
        "the client to lose the echo cluster",
        Duration::from_secs(60),
        || {
            let dump = envoy::admin_get(&world.client.ns, "/clusters")?;
            (!dump.contains(CLUSTER)).then_some(())
        },
    );
    world.assert_in_sync_by(clusters_and_listeners_acked);
    let after = traffic::http_requests(
        &world.lab,
        &world.client.ns,
        &format!("{VIP}:{HTTP_PORT}"),
        SVC,
        2,
    );
    assert_eq!(after.ok(), 0, "{after:?}");
    drop(world);
    drop(server);
}
