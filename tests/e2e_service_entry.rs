//! End-to-end: a sidecar reaches a server outside the mesh through ServiceEntries.
//!
//! The outside server is a network namespace on the lab bridge with no capture and no
//! sidecar. Two entries lead to it, each with an address in the service range (the pods'
//! only routed range besides the pod network, so the client's connection is captured):
//! - STATIC, HTTP: `ext-static.example.com` on 10.96.50.1:8080, the server's IP as endpoint
//!   (EDS); nothing listens on 10.96.50.1, only the sidecar's config leads anywhere;
//! - DNS, TCP: `ext-dns.example.com` on 10.96.50.2:9000, its endpoint the name
//!   `echo.outside.test`, which the client's Envoy resolves itself (STRICT_DNS, c-ares)
//!   through the client namespace's hosts file: `ip netns exec` mounts
//!   `/etc/netns/<namespace>/hosts` over `/etc/hosts`, as a cluster's DNS would answer.
//!
//! The proof is Envoy's own accounting: the requests went through
//! `outbound|<port>||<host>`, by the stats and by the Prometheus labels dashboards use.

#[path = "e2e/mod.rs"]
mod harness;

use std::path::PathBuf;
use std::time::Duration;

use harness::envoy;
use harness::meshd::Meshd;
use harness::netns::Lab;
use harness::objects;
use harness::pod::Pod;
use harness::process::{wait_for, Proc};
use harness::prometheus;
use harness::traffic;

const NS: &str = "demo";
const STATIC_HOST: &str = "ext-static.example.com";
const STATIC_VIP: &str = "10.96.50.1";
const DNS_HOST: &str = "ext-dns.example.com";
const DNS_VIP: &str = "10.96.50.2";
const DNS_ENDPOINT: &str = "echo.outside.test";
const HTTP_PORT: u16 = 8080;
const TCP_PORT: u16 = 9000;

fn entries(server_ip: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: ext-static, namespace: {NS}}}
spec:
  hosts: [{STATIC_HOST}]
  addresses: [{STATIC_VIP}]
  ports: [{{number: {HTTP_PORT}, name: http, protocol: HTTP}}]
  location: MESH_EXTERNAL
  resolution: STATIC
  endpoints: [{{address: {server_ip}}}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: ext-dns, namespace: {NS}}}
spec:
  hosts: [{DNS_HOST}]
  addresses: [{DNS_VIP}]
  ports: [{{number: {TCP_PORT}, name: tcp-echo, protocol: TCP}}]
  location: MESH_EXTERNAL
  resolution: DNS
  endpoints: [{{address: {DNS_ENDPOINT}}}]
"
    )
}

/// `/etc/netns/<namespace>/hosts`, removed on drop.
struct HostsFile {
    dir: PathBuf,
}

impl HostsFile {
    fn new(netns: &str, lines: &str) -> HostsFile {
        let dir = PathBuf::from("/etc/netns").join(netns);
        std::fs::create_dir_all(&dir).expect("creating /etc/netns/<ns>");
        let path = dir.join("hosts");
        std::fs::write(&path, format!("127.0.0.1 localhost\n{lines}\n")).expect("hosts file");
        harness::netns::set_mode(&path, 0o644);
        HostsFile { dir }
    }
}

impl Drop for HostsFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn cluster(port: u16, host: &str) -> String {
    format!("outbound|{port}||{host}")
}

/// A counter of `pod`'s Envoy under the cluster's `alt_stat_name` (`<cluster>;`).
fn cluster_counter(pod: &Pod, cluster: &str, counter: &str) -> u64 {
    let name = format!("cluster.{cluster};.{counter}");
    envoy::stat(&pod.ns, &name).unwrap_or_else(|| panic!("{}: no stat {name}", pod.name))
}

#[test]
fn service_entries_reach_a_server_outside_the_mesh() {
    let _guard = harness::lock();
    let mut lab = Lab::new();
    let mut meshd = Meshd::new(&mut lab);
    // Outside the mesh: no capture rules, no sidecar.
    let (outside_ns, outside_ip) = lab.attach("outside");
    let mut outside: Proc =
        traffic::start_server(&lab, &outside_ns, "outside", &[HTTP_PORT], &[TCP_PORT]);

    let mut client = Pod::new(&mut lab, "client", NS);
    let _hosts = HostsFile::new(&client.ns.name, &format!("{outside_ip} {DNS_ENDPOINT}"));
    meshd.write("namespace.yaml", &objects::namespace(NS));
    meshd.write(
        "pod-client.yaml",
        &objects::pod("client", NS, &client.ip, "client", &[]),
    );
    meshd.write("entries.yaml", &entries(&outside_ip));
    meshd.start();
    let bootstrap = meshd.bootstrap(&client.node_id(), false);
    client.start_envoy(&lab, &bootstrap);

    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // EDS for the STATIC entry; the DNS entry's name resolved by Envoy.
        let static_cluster = cluster(HTTP_PORT, STATIC_HOST);
        let dns_cluster = cluster(TCP_PORT, DNS_HOST);
        for (name, want) in [
            (&static_cluster, format!("{outside_ip}:{HTTP_PORT}")),
            (&dns_cluster, format!("{outside_ip}:{TCP_PORT}")),
        ] {
            wait_for(
                &format!("client to have {want} in {name}"),
                Duration::from_secs(30),
                || {
                    envoy::cluster_endpoints(&client.ns, name)
                        .contains(&want)
                        .then_some(())
                },
            );
        }
        let rejected = envoy::rejected_updates(&client.ns);
        assert!(rejected.is_empty(), "client rejected config: {rejected:?}");

        // STATIC, HTTP, by the entry's address and host name.
        let tally = traffic::http_requests(
            &lab,
            &client.ns,
            &format!("{STATIC_VIP}:{HTTP_PORT}"),
            STATIC_HOST,
            5,
        );
        assert!(
            tally.failures.is_empty() && tally.by_pod.get("outside") == Some(&5),
            "requests to {STATIC_HOST}: {tally:?}"
        );
        assert_eq!(
            cluster_counter(&client, &static_cluster, "upstream_rq_total"),
            5
        );

        // DNS, TCP, by the entry's address.
        let reply = traffic::tcp_line(&lab, &client.ns, &format!("{DNS_VIP}:{TCP_PORT}"), "hello");
        assert_eq!(reply.as_deref(), Ok("outside: hello"));
        assert_eq!(
            cluster_counter(&client, &dns_cluster, "upstream_cx_total"),
            1
        );

        // Dashboards see the same through Istio's stats tags.
        let samples = prometheus::scrape(&client.ns);
        assert_eq!(
            prometheus::value(
                &samples,
                "envoy_cluster_upstream_rq_total",
                &[("cluster_name", &static_cluster)]
            ),
            Some(5.0)
        );
        assert_eq!(
            prometheus::value(
                &samples,
                "envoy_cluster_upstream_cx_total",
                &[("cluster_name", &dns_cluster)]
            ),
            Some(1.0)
        );
        // Nothing went the unknown-destination way.
        assert_eq!(
            envoy::stat(&client.ns, "cluster.PassthroughCluster;.upstream_cx_total").unwrap_or(0),
            0
        );
    }));
    if let Err(panic) = result {
        eprintln!("--- meshd\n{}", meshd.log_tail());
        eprint!("{}", client.logs());
        eprintln!("--- outside\n{}", outside.log_tail(30));
        std::panic::resume_unwind(panic);
    }
    outside.kill();
}
