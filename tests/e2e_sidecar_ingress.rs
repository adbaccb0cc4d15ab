//! End-to-end: a Sidecar's `ingress` listener decides where a workload's inbound traffic
//! goes. The `ratings` Service sends port 9080 to the pod's port 9080, where nothing
//! listens; the app listens on 8080. With a Sidecar whose ingress listener takes 9080 to
//! `127.0.0.1:8080`, requests through the client's and the server's sidecars are answered;
//! once the Sidecar is gone, the server's sidecar delivers to the port dialled again and
//! they fail.

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
use harness::traffic;
use harness::world::World;

const NS: &str = "demo";
const VIP: &str = "10.96.0.20";
const FQDN: &str = "ratings.demo.svc.cluster.local";
const SERVICE_PORT: u16 = 9080;
const APP_PORT: u16 = 8080;

fn sidecar() -> String {
    format!(
        "apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {{name: ratings, namespace: {NS}}}
spec:
  workloadSelector:
    labels: {{app: ratings}}
  ingress:
  - port: {{number: {SERVICE_PORT}, protocol: HTTP, name: http}}
    defaultEndpoint: 127.0.0.1:{APP_PORT}
"
    )
}

#[test]
fn sidecar_ingress_sends_inbound_traffic_to_the_default_endpoint() {
    let _guard = harness::lock();
    let mut lab = Lab::new();
    let meshd = Meshd::new(&mut lab);
    let ports = [Port {
        name: "http",
        port: SERVICE_PORT,
        target: SERVICE_PORT,
    }];
    let mut server = Pod::new(&mut lab, "ratings-0", NS);
    server.start_app(&lab, &[APP_PORT], &[]);
    meshd.write("namespace.yaml", &objects::namespace(NS));
    meshd.write(
        "service.yaml",
        &objects::service("ratings", NS, VIP, "ratings", &ports),
    );
    meshd.write(
        "pod-server.yaml",
        &objects::pod("ratings-0", NS, &server.ip, "ratings", &ports),
    );
    meshd.write("sidecar.yaml", &sidecar());
    let world = World::start(lab, meshd, vec![server], NS);
    let (server, client, lab) = (&world.servers[0], &world.client, &world.lab);

    let outbound = format!("outbound|{SERVICE_PORT}||{FQDN}");
    let want = BTreeSet::from([format!("{}:{SERVICE_PORT}", server.ip)]);
    wait_for(
        "the client to see the server's endpoint",
        Duration::from_secs(30),
        || (envoy::cluster_endpoints(&client.ns, &outbound) == want).then_some(()),
    );
    let inbound = format!("inbound|{SERVICE_PORT}||");
    let loopback = BTreeSet::from([format!("127.0.0.1:{APP_PORT}")]);
    wait_for(
        "the server's inbound cluster to point at the default endpoint",
        Duration::from_secs(30),
        || (envoy::cluster_endpoints(&server.ns, &inbound) == loopback).then_some(()),
    );
    for pod in [server, client] {
        let rejected = envoy::rejected_updates(&pod.ns);
        assert!(rejected.is_empty(), "{} rejected: {rejected:?}", pod.name);
    }

    let tally = traffic::http_requests(lab, &client.ns, &format!("{VIP}:{SERVICE_PORT}"), FQDN, 5);
    assert!(
        tally.failures.is_empty() && tally.by_pod.get("ratings-0") == Some(&5),
        "with the Sidecar: {tally:?}"
    );
    let served = envoy::stat(&server.ns, &format!("cluster.{inbound};.upstream_rq_total"));
    assert_eq!(served, Some(5), "server inbound requests");

    // Without the Sidecar, the service's target port is used again: nothing there.
    world.meshd.remove("sidecar.yaml");
    wait_for(
        "requests to fail once the Sidecar is removed",
        Duration::from_secs(30),
        || {
            let t =
                traffic::http_requests(lab, &client.ns, &format!("{VIP}:{SERVICE_PORT}"), FQDN, 1);
            (t.ok() == 0).then_some(())
        },
    );
    // Original destination again: the hosts are the addresses dialled, if any.
    let hosts = envoy::cluster_endpoints(&server.ns, &inbound);
    assert!(
        hosts.is_subset(&BTreeSet::from([format!("{}:{SERVICE_PORT}", server.ip)])),
        "inbound hosts without the Sidecar: {hosts:?}"
    );
}
