//! End-to-end: mutual TLS between real Envoy sidecars with certificates from meshd's CA
//! (`meshd serve --mtls` with the secure port). A client pod's app calls the `echo` pod
//! through both sidecars; a pod without a sidecar (no capture, no Envoy) calls the echo
//! pod's address directly. Checks: the connection between the sidecars is TLS and the echo
//! app sees the client's SPIFFE id in `x-forwarded-client-cert`; the client sidecar holds
//! its workload certificate (`/certs`); PERMISSIVE (the default) also serves the pod without
//! a sidecar, STRICT refuses it, DISABLE is plaintext for everyone; AuthorizationPolicy
//! rules on principals and namespaces match the identity mTLS proves. Needs root, Envoy and
//! curl (see tests/e2e/mod.rs); fails, never skips, without them.

#[path = "e2e/mod.rs"]
mod harness;

use std::time::Duration;

use harness::envoy;
use harness::meshd::Meshd;
use harness::netns::{Lab, Netns};
use harness::objects;
use harness::pod::Pod;
use harness::process::{run_timeout, wait_for};
use harness::traffic::app_command;
use harness::upstream;
use harness::world::World;

const NS: &str = "demo";
const VIP: &str = "10.96.0.10";
const PORT: u16 = 9080;
const CLUSTER: &str = "outbound|9080||echo.demo.svc.cluster.local";
const CLIENT_ID: &str = "spiffe://cluster.local/ns/demo/sa/client";
const ECHO_ID: &str = "spiffe://cluster.local/ns/demo/sa/echo";

/// A running, ready pod with a sidecar (`security.istio.io/tlsMode: istio`) whose service
/// account is its app's name.
fn sidecar_pod_yaml(name: &str, app: &str, ip: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: {NS}\n  labels:\n    \
         app: {app}\n    security.istio.io/tlsMode: istio\nspec:\n  serviceAccountName: {app}\n  \
         containers:\n  - name: app\nstatus:\n  phase: Running\n  podIP: {ip}\n  podIPs:\n  \
         - ip: {ip}\n  conditions:\n  - type: Ready\n    status: \"True\"\n"
    )
}

/// The mesh: meshd with its CA and `--mtls`, the echo pod (upstream app on 9080) and the
/// client pod, both with sidecars bootstrapped for the secure port, and a namespace for a
/// pod without a sidecar.
struct Mesh {
    world: World,
    legacy: Netns,
}

fn start_mesh() -> Mesh {
    start_mesh_with(&[])
}

/// `start_mesh` with more flags for meshd.
fn start_mesh_with(extra: &[&str]) -> Mesh {
    let mut lab = Lab::new();
    let mut meshd = Meshd::new(&mut lab);
    meshd.write("namespace.yaml", &objects::namespace(NS));
    meshd.write(
        "service-echo.yaml",
        &objects::service(
            "echo",
            NS,
            VIP,
            "echo",
            &[objects::Port {
                name: "http-web",
                port: PORT,
                target: PORT,
            }],
        ),
    );
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
    // No capture rules and no sidecar: a workload outside the mesh.
    let (legacy, _) = lab.attach("legacy");
    secure::start(&mut meshd, &lab, extra);
    for (pod, app) in [(&mut echo, "echo"), (&mut client, "client")] {
        let bootstrap = secure::bootstrap(&meshd, &lab, pod, app);
        pod.start_envoy(&lab, &bootstrap);
    }
    let world = World {
        client,
        servers: vec![echo],
        meshd,
        lab,
    };
    world.assert_in_sync();
    wait_for(
        "the client to see the echo endpoint",
        Duration::from_secs(30),
        || {
            let want = format!("{}:{PORT}", world.servers[0].ip);
            envoy::cluster_endpoints(&world.client.ns, CLUSTER)
                .contains(&want)
                .then_some(())
        },
    );
    Mesh { world, legacy }
}

/// The client app's request to the echo service through both sidecars.
fn through_sidecars(mesh: &Mesh) -> upstream::Response {
    upstream::request(
        &mesh.world.client.ns,
        &format!("http://{VIP}:{PORT}/"),
        &[("host", "echo.demo.svc.cluster.local")],
    )
}

/// A request from the pod without a sidecar straight to the echo pod, claiming an identity
/// in `x-forwarded-client-cert`: the upstream's answer, or curl's error when the connection
/// fails.
fn from_outside(mesh: &Mesh) -> Result<String, String> {
    let mut cmd = app_command(&mesh.legacy);
    cmd.arg("curl").args([
        "-sS",
        "--max-time",
        "10",
        "-o",
        "-",
        // A forged identity: the sidecar must not pass it on from a plaintext connection.
        "-H",
        "x-forwarded-client-cert: URI=spiffe://cluster.local/ns/demo/sa/forged",
        &format!("http://{}:{PORT}/", mesh.world.servers[0].ip),
    ]);
    let out = run_timeout(cmd, Duration::from_secs(20));
    if out.success() {
        Ok(out.stdout)
    } else {
        Err(out.stderr)
    }
}

/// TLS handshakes of the client's echo cluster, whichever transport socket made them (a
/// cluster with transport socket matches counts them per match).
fn handshakes(mesh: &Mesh) -> u64 {
    envoy::admin(&mesh.world.client.ns, "/stats?filter=ssl.handshake")
        .lines()
        .filter_map(|l| l.split_once(": "))
        // Stats carry istiod's stat name, `<cluster>;`.
        .filter(|(k, _)| k.starts_with(&format!("cluster.{CLUSTER};.")))
        .filter_map(|(_, v)| v.trim().parse::<u64>().ok())
        .sum()
}

fn xfcc(response: &upstream::Response) -> Option<String> {
    response.json()["headers"]["x-forwarded-client-cert"]
        .as_str()
        .map(str::to_string)
}

/// Writes a namespace-wide PeerAuthentication and waits until the echo sidecar's
/// `virtualInbound` shows it (`marker` in its listener dump) and everyone is in sync.
fn peer_authentication(mesh: &Mesh, mode: &str, marker: impl Fn(&str) -> bool) {
    mesh.world.meshd.write(
        "peer-authentication.yaml",
        &format!(
            "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata:\n  \
             name: default\n  namespace: {NS}\nspec:\n  mtls:\n    mode: {mode}\n"
        ),
    );
    wait_for(
        &format!("the echo sidecar to take PeerAuthentication {mode}"),
        Duration::from_secs(30),
        || {
            let dump = envoy::admin_get(
                &mesh.world.servers[0].ns,
                "/config_dump?resource=dynamic_listeners",
            )?;
            marker(&dump).then_some(())
        },
    );
    mesh.world.assert_in_sync();
}

#[test]
fn sidecars_talk_mtls_and_peer_authentication_decides_who_else_may() {
    let _lock = harness::lock();
    let mesh = start_mesh();

    // PERMISSIVE (no PeerAuthentication): sidecar to sidecar is mTLS with the client's id.
    let before = handshakes(&mesh);
    let response = through_sidecars(&mesh);
    assert_eq!(response.status, 200, "{response:?}\n{}", mesh.world.logs());
    let forwarded = xfcc(&response).unwrap_or_else(|| panic!("no XFCC at the app: {response:?}"));
    assert!(
        forwarded.contains(&format!("URI={CLIENT_ID}")),
        "the app sees the client's identity: {forwarded}"
    );
    assert!(
        forwarded.contains(&format!("By={ECHO_ID}")),
        "and its own: {forwarded}"
    );
    assert!(
        handshakes(&mesh) > before,
        "the client's upstream connection was TLS: {}",
        envoy::admin(&mesh.world.client.ns, "/stats?filter=ssl")
    );
    // The client sidecar holds its own workload certificate from meshd.
    let certs = envoy::admin(&mesh.world.client.ns, "/certs");
    assert!(certs.contains(CLIENT_ID), "client /certs: {certs}");
    let parsed: serde_json::Value = serde_json::from_str(&certs).expect("/certs is JSON");
    let with_roots = parsed["certificates"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["ca_cert"].as_array().is_some_and(|a| !a.is_empty()))
        .count();
    assert!(with_roots > 0, "the mesh roots are loaded too: {certs}");
    // A workload without a sidecar is served in plaintext, without an identity.
    let outside =
        from_outside(&mesh).unwrap_or_else(|e| panic!("PERMISSIVE refused plaintext: {e}"));
    assert!(outside.contains("\"pod\": \"echo-0\""), "{outside}");
    assert!(
        !outside.contains("x-forwarded-client-cert"),
        "a plaintext caller's XFCC is dropped: {outside}"
    );

    // STRICT: the sidecar's chain requires a client certificate; plaintext is refused.
    peer_authentication(&mesh, "STRICT", |dump| !dump.contains("raw_buffer"));
    let response = through_sidecars(&mesh);
    assert_eq!(response.status, 200, "{response:?}");
    assert!(xfcc(&response).is_some_and(|x| x.contains(CLIENT_ID)));
    let refused = from_outside(&mesh);
    assert!(refused.is_err(), "STRICT served plaintext: {refused:?}");

    // DISABLE: plaintext for everyone, the client does not even try TLS.
    peer_authentication(&mesh, "DISABLE", |dump| {
        !dump.contains("require_client_certificate")
    });
    wait_for(
        "the client's cluster to drop mTLS",
        Duration::from_secs(30),
        || {
            let dump = envoy::admin_get(
                &mesh.world.client.ns,
                "/config_dump?resource=dynamic_active_clusters",
            )?;
            let cluster = dump
                .split("\"name\": \"")
                .find(|c| c.starts_with(CLUSTER))?;
            (!cluster.contains("tlsMode-istio")).then_some(())
        },
    );
    let before = handshakes(&mesh);
    let response = through_sidecars(&mesh);
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(xfcc(&response), None, "no client certificate, no XFCC");
    assert_eq!(handshakes(&mesh), before, "no TLS under DISABLE");
    assert!(from_outside(&mesh).is_ok());
}

/// Writes an AuthorizationPolicy for the echo workload with `rules` (YAML under `spec:`).
fn authorization_policy(mesh: &Mesh, action: &str, rules: &str) {
    mesh.world.meshd.write(
        "authorization-policy.yaml",
        &format!(
            "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  \
             name: echo\n  namespace: {NS}\nspec:\n  selector:\n    matchLabels:\n      \
             app: echo\n  action: {action}\n  rules:\n{rules}"
        ),
    );
}

/// Waits until the client's request through both sidecars gets `status` (a connection the
/// client sidecar opened before the change keeps the old chain until it closes).
fn wait_status(mesh: &Mesh, status: u16, what: &str) {
    wait_for(what, Duration::from_secs(30), || {
        (through_sidecars(mesh).status == status).then_some(())
    });
}

/// AuthorizationPolicy rules on the peer identity mTLS proves: principals and namespaces
/// match the client's SPIFFE id; a caller without a sidecar has none and is denied.
#[test]
fn authorization_policy_matches_the_mtls_principal_and_namespace() {
    let _lock = harness::lock();
    let mesh = start_mesh();
    assert_eq!(through_sidecars(&mesh).status, 200, "{}", mesh.world.logs());

    authorization_policy(
        &mesh,
        "ALLOW",
        "  - from:\n    - source:\n        principals: [cluster.local/ns/demo/sa/client]\n",
    );
    // The pod without a sidecar proves no principal: denied once the policy is in force.
    wait_for(
        "the echo sidecar to deny a caller without identity",
        Duration::from_secs(30),
        || {
            from_outside(&mesh)
                .ok()
                .filter(|body| body.contains("RBAC: access denied"))
        },
    );
    let response = through_sidecars(&mesh);
    assert_eq!(
        response.status, 200,
        "the client's principal is allowed: {response:?}"
    );

    authorization_policy(
        &mesh,
        "ALLOW",
        "  - from:\n    - source:\n        principals: [cluster.local/ns/demo/sa/other]\n",
    );
    wait_status(&mesh, 403, "another principal only: the client is denied");

    authorization_policy(
        &mesh,
        "ALLOW",
        "  - from:\n    - source:\n        namespaces: [demo]\n",
    );
    wait_status(&mesh, 200, "the client's namespace is allowed");

    authorization_policy(
        &mesh,
        "DENY",
        "  - from:\n    - source:\n        notNamespaces: [elsewhere]\n",
    );
    wait_status(
        &mesh,
        403,
        "DENY of every namespace but another: the client is denied",
    );
}

/// The serial numbers of the client sidecar's workload certificates (`/certs`).
fn client_serials(mesh: &Mesh) -> Vec<String> {
    let certs = envoy::admin(&mesh.world.client.ns, "/certs");
    let parsed: serde_json::Value = serde_json::from_str(&certs).expect("/certs is JSON");
    parsed["certificates"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|c| c["cert_chain"].as_array().cloned().unwrap_or_default())
        .filter(|c| c.to_string().contains(CLIENT_ID))
        .filter_map(|c| c["serial_number"].as_str().map(str::to_string))
        .collect()
}

/// With 20-second certificates, meshd renews each sidecar's certificate about every ten
/// seconds; requests sent all along through both sidecars (new connections and reused ones)
/// never fail, and the client holds a new serial each time.
#[test]
fn certificates_rotate_under_traffic_without_a_failed_request() {
    let _lock = harness::lock();
    let mesh = start_mesh_with(&["--workload-cert-ttl", "20s"]);
    let mut serials: Vec<String> = Vec::new();
    let mut failures = Vec::new();
    let mut sent = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(45);
    while std::time::Instant::now() < deadline {
        let response = through_sidecars(&mesh);
        sent += 1;
        if response.status != 200 {
            failures.push(format!("{response:?}"));
        }
        for serial in client_serials(&mesh) {
            if !serials.contains(&serial) {
                serials.push(serial);
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        failures.is_empty(),
        "{} of {sent} requests failed during rotation: {failures:?}\n{}",
        failures.len(),
        mesh.world.logs()
    );
    assert!(
        serials.len() >= 3,
        "the client's certificate was renewed at least twice in 45 s: {serials:?}"
    );
}

/// meshd with its CA and the secure port (branch `ca`'s harness) and `--mtls`, and
/// bootstraps that connect there with a token for the pod's service account.
mod secure {
    use super::*;

    pub fn start(meshd: &mut Meshd, _lab: &Lab, extra: &[&str]) {
        let mut args = vec!["--mtls"];
        args.extend_from_slice(extra);
        meshd.start_secure(&args);
    }

    /// The pod's service account is its app's name (`sidecar_pod_yaml`).
    pub fn bootstrap(meshd: &Meshd, _lab: &Lab, pod: &Pod, app: &str) -> String {
        meshd.bootstrap_secure(&pod.node_id(), NS, app, false)
    }
}
