//! End-to-end: mutual TLS is on by default. meshd runs with its CA and the secure port but
//! without `--mtls`. Two sidecars bootstrapped on the secure port (tokens for their service
//! accounts) talk mTLS: the echo app sees the client's SPIFFE id in
//! `x-forwarded-client-cert`. A third sidecar bootstrapped on the plaintext port beside them
//! proves no identity: its configuration names no SDS secret (so every listener and cluster
//! warms), and it reaches both a pod without a sidecar and the echo pod (PERMISSIVE) in
//! plaintext. Needs root, Envoy and curl (see tests/e2e/mod.rs); fails, never skips,
//! without them.

#[path = "e2e/mod.rs"]
mod harness;

use std::time::Duration;

use harness::envoy;
use harness::meshd::Meshd;
use harness::netns::{Lab, Netns};
use harness::objects;
use harness::pod::Pod;
use harness::process::{wait_for, Proc};
use harness::upstream;
use harness::world::World;

const NS: &str = "demo";
const ECHO_VIP: &str = "10.96.0.10";
const LEGACY_VIP: &str = "10.96.0.11";
const PORT: u16 = 9080;
const CLIENT_ID: &str = "spiffe://cluster.local/ns/demo/sa/client";

/// A running, ready pod with a sidecar (`security.istio.io/tlsMode: istio`) whose service
/// account is its app's name.
fn sidecar_pod_yaml(name: &str, app: &str, ip: &str) -> String {
    upstream::pod_yaml(
        name,
        NS,
        ip,
        &[("app", app), ("security.istio.io/tlsMode", "istio")],
        PORT,
    )
    .replace("spec:\n", &format!("spec:\n  serviceAccountName: {app}\n"))
}

fn http_service(name: &str, vip: &str) -> String {
    objects::service(
        name,
        NS,
        vip,
        name,
        &[objects::Port {
            name: "http-web",
            port: PORT,
            target: PORT,
        }],
    )
}

/// The mesh: echo and client with sidecars on the secure port, `plain` with a sidecar on
/// the plaintext port (no `tlsMode` label: it has no certificate to serve mTLS with), and
/// `legacy`, a pod without a sidecar serving the `legacy` service.
struct Mesh {
    world: World,
    _legacy: (Netns, Proc),
}

impl Mesh {
    fn client(&self) -> &Pod {
        &self.world.client
    }

    fn plain(&self) -> &Pod {
        &self.world.servers[1]
    }
}

fn start_mesh() -> Mesh {
    let mut lab = Lab::new();
    let mut meshd = Meshd::new(&mut lab);
    meshd.write("namespace.yaml", &objects::namespace(NS));
    meshd.write("service-echo.yaml", &http_service("echo", ECHO_VIP));
    meshd.write("service-legacy.yaml", &http_service("legacy", LEGACY_VIP));
    let mut echo = Pod::new(&mut lab, "echo-0", NS);
    echo.app = Some(upstream::start(&lab, &echo.ns, "echo-0", PORT));
    meshd.write(
        "pod-echo.yaml",
        &sidecar_pod_yaml("echo-0", "echo", &echo.ip),
    );
    let mut client = Pod::new(&mut lab, "client", NS);
    meshd.write(
        "pod-client.yaml",
        &sidecar_pod_yaml("client", "client", &client.ip),
    );
    let plain = Pod::new(&mut lab, "plain", NS);
    meshd.write(
        "pod-plain.yaml",
        &upstream::pod_yaml("plain", NS, &plain.ip, &[("app", "plain")], PORT),
    );
    // No capture rules and no sidecar.
    let (legacy_ns, legacy_ip) = lab.attach("legacy");
    let legacy_app = upstream::start(&lab, &legacy_ns, "legacy-0", PORT);
    meshd.write(
        "pod-legacy.yaml",
        &upstream::pod_yaml("legacy-0", NS, &legacy_ip, &[("app", "legacy")], PORT),
    );

    // The default: no --mtls.
    meshd.start_secure(&[]);
    for (pod, app) in [(&mut echo, "echo"), (&mut client, "client")] {
        let bootstrap = meshd.bootstrap_secure(&pod.node_id(), NS, app, false);
        pod.start_envoy(&lab, &bootstrap);
    }
    let mut plain = plain;
    let bootstrap = meshd.bootstrap(&plain.node_id(), false);
    plain.start_envoy(&lab, &bootstrap);

    let world = World {
        client,
        servers: vec![echo, plain],
        meshd,
        lab,
    };
    world.assert_in_sync();
    for (pod, cluster, ip) in [
        (&world.client, "echo", &world.servers[0].ip),
        (&world.servers[1], "echo", &world.servers[0].ip),
        (&world.servers[1], "legacy", &legacy_ip),
    ] {
        let name = format!("outbound|{PORT}||{cluster}.{NS}.svc.cluster.local");
        wait_for(
            &format!("{} to see the {cluster} endpoint", pod.name),
            Duration::from_secs(30),
            || {
                envoy::cluster_endpoints(&pod.ns, &name)
                    .contains(&format!("{ip}:{PORT}"))
                    .then_some(())
            },
        );
    }
    Mesh {
        world,
        _legacy: (legacy_ns, legacy_app),
    }
}

fn get(pod: &Pod, vip: &str, host: &str) -> upstream::Response {
    upstream::request(
        &pod.ns,
        &format!("http://{vip}:{PORT}/"),
        &[("host", &format!("{host}.{NS}.svc.cluster.local"))],
    )
}

fn xfcc(response: &upstream::Response) -> Option<String> {
    response.json()["headers"]["x-forwarded-client-cert"]
        .as_str()
        .map(str::to_string)
}

#[test]
fn mtls_by_default_on_the_secure_port_and_plaintext_beside_it() {
    let _lock = harness::lock();
    let mesh = start_mesh();

    // Secure-port sidecars: mTLS, the app sees the client's identity.
    let response = get(mesh.client(), ECHO_VIP, "echo");
    assert_eq!(response.status, 200, "{response:?}\n{}", mesh.world.logs());
    let forwarded = xfcc(&response).unwrap_or_else(|| panic!("no XFCC at the app: {response:?}"));
    assert!(
        forwarded.contains(&format!("URI={CLIENT_ID}")),
        "the app sees the client's identity: {forwarded}"
    );
    let certs = envoy::admin(&mesh.client().ns, "/certs");
    assert!(certs.contains(CLIENT_ID), "client /certs: {certs}");

    // The plaintext-port sidecar: no secret anywhere in its configuration.
    let dump = envoy::admin(&mesh.plain().ns, "/config_dump");
    for name in ["sdsConfig", "sds_config", "ROOTCA", "tlsMode-istio"] {
        assert!(
            !dump.contains(name),
            "the plaintext sidecar's config names {name}"
        );
    }
    // It calls a pod without a sidecar...
    let legacy = get(mesh.plain(), LEGACY_VIP, "legacy");
    assert_eq!(legacy.status, 200, "{legacy:?}\n{}", mesh.world.logs());
    assert_eq!(legacy.pod().as_deref(), Some("legacy-0"));
    // ...and the echo pod, whose PERMISSIVE port takes plaintext, with no identity.
    let echo = get(mesh.plain(), ECHO_VIP, "echo");
    assert_eq!(echo.status, 200, "{echo:?}\n{}", mesh.world.logs());
    assert_eq!(echo.pod().as_deref(), Some("echo-0"));
    assert_eq!(xfcc(&echo), None, "no certificate, no XFCC");
    // The secure sidecars still talk mTLS afterwards.
    let again = get(mesh.client(), ECHO_VIP, "echo");
    assert!(xfcc(&again).is_some_and(|x| x.contains(CLIENT_ID)));
}
