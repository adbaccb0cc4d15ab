//! End-to-end: the CA changing under live mTLS traffic between real Envoy sidecars
//! (`meshd serve --mtls --ca-dir` with the secure port). A client pod's app calls the echo
//! pod through both sidecars, continuously, on a thread that counts every request that
//! fails. Checks: Istio's staged root rotation done by editing the CA directory (no
//! restart) with zero failed requests, the proxies' trust bundles and certificates
//! following each stage, and new connections using the new chain at the end; meshd killed
//! and started again with the same CA directory while traffic flows, the proxies
//! reconnecting and getting certificates from the same root; two sidecars of one service
//! account holding different keys. Needs root, Envoy and curl (see tests/e2e/mod.rs);
//! fails, never skips, without them.

#[path = "e2e/mod.rs"]
mod harness;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine;
use harness::envoy;
use harness::meshd::Meshd;
use harness::netns::{set_mode, Lab, Netns};
use harness::objects;
use harness::pod::Pod;
use harness::process::{run_timeout, wait_for};
use harness::traffic::app_command;
use harness::upstream;
use harness::world::World;
use x509_parser::prelude::*;

const NS: &str = "demo";
const VIP: &str = "10.96.0.10";
const PORT: u16 = 9080;
const CLUSTER: &str = "outbound|9080||echo.demo.svc.cluster.local";

/// A running, ready pod with a sidecar running as service account `sa`.
fn sidecar_pod_yaml(name: &str, app: &str, sa: &str, ip: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: {NS}\n  labels:\n    \
         app: {app}\n    security.istio.io/tlsMode: istio\nspec:\n  serviceAccountName: {sa}\n  \
         containers:\n  - name: app\nstatus:\n  phase: Running\n  podIP: {ip}\n  podIPs:\n  \
         - ip: {ip}\n  conditions:\n  - type: Ready\n    status: \"True\"\n"
    )
}

/// The mesh of e2e_mtls (echo pod and client pod with sidecars on the secure port), with
/// the client's service account `client_sa`, and the sidecars' bootstraps trusting
/// meshd's serving certificate through `xds_roots` (meshd's root plus `extra_root`).
struct Mesh {
    world: World,
    xds_roots: PathBuf,
}

fn start_mesh(client_sa: &str, extra: &[&str], extra_root: &str) -> Mesh {
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
        &sidecar_pod_yaml("echo-0", "echo", "echo", &echo.ip),
    );
    let mut client = Pod::new(&mut lab, "client", NS);
    meshd.write(
        "pod-client.yaml",
        &sidecar_pod_yaml("client", "client", client_sa, &client.ip),
    );
    let mut args = vec!["--mtls"];
    args.extend_from_slice(extra);
    meshd.start_secure(&args);
    // What a sidecar checks meshd's serving certificate against: read once by Envoy, so
    // it must hold the next root before the signing CA changes (SECURITY.md).
    let xds_roots = lab.path("xds-roots.pem");
    let current = std::fs::read_to_string(meshd.root_cert()).expect("meshd's root");
    std::fs::write(&xds_roots, current + extra_root).expect("writing the xds roots");
    set_mode(&xds_roots, 0o644);
    for (pod, sa) in [(&mut echo, "echo"), (&mut client, client_sa)] {
        let bootstrap = bootstrap(&meshd, pod, sa, &xds_roots);
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
    Mesh { world, xds_roots }
}

/// A secure-port bootstrap for `pod` as `sa`, checking meshd against `roots`.
fn bootstrap(meshd: &Meshd, pod: &Pod, sa: &str, roots: &Path) -> String {
    let token = meshd.token_file(NS, sa);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_meshd"));
    cmd.args(["bootstrap", "--node-id", &pod.node_id(), "--xds-address"])
        .arg(meshd.secure_xds_address())
        .arg("--root-cert")
        .arg(roots)
        .arg("--token-file")
        .arg(&token)
        .args(["--service-account", sa]);
    let out = run_timeout(cmd, Duration::from_secs(10));
    assert!(out.success(), "meshd bootstrap failed: {}", out.stderr);
    out.stdout
}

/// One request from the client app through both sidecars: the status and body, or
/// curl's error when the exchange failed.
fn request(client: &Netns) -> Result<(u16, String), String> {
    let mut cmd = app_command(client);
    cmd.args([
        "curl",
        "-sS",
        "--max-time",
        "10",
        "-o",
        "-",
        "-w",
        "\n%{http_code}",
    ])
    .args(["-H", "host: echo.demo.svc.cluster.local"])
    .arg(format!("http://{VIP}:{PORT}/"));
    let out = run_timeout(cmd, Duration::from_secs(20));
    if !out.success() {
        return Err(out.stderr);
    }
    let (body, code) = out.stdout.rsplit_once('\n').unwrap_or(("", ""));
    let code = code.trim().parse().map_err(|_| out.stdout.clone())?;
    Ok((code, body.to_string()))
}

/// Requests sent one after another until stopped; every one that is not a 200 is kept.
#[derive(Default)]
struct Traffic {
    sent: AtomicU64,
    failed: Mutex<Vec<String>>,
    stop: AtomicBool,
}

impl Traffic {
    fn run(&self, client: &Netns) {
        while !self.stop.load(Ordering::Relaxed) {
            let outcome = request(client);
            self.sent.fetch_add(1, Ordering::Relaxed);
            match outcome {
                Ok((200, _)) => {}
                other => self.failed.lock().unwrap().push(format!("{other:?}")),
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until at least `more` further requests went out (traffic really flows).
    fn wait_more(&self, more: u64) {
        let start = self.sent.load(Ordering::Relaxed);
        wait_for("requests to flow", Duration::from_secs(60), || {
            (self.sent.load(Ordering::Relaxed) >= start + more).then_some(())
        });
    }

    fn assert_none_failed(&self, what: &str, mesh: &Mesh) {
        let failed = self.failed.lock().unwrap();
        let sent = self.sent.load(Ordering::Relaxed);
        assert!(sent > 20, "too little traffic to judge: {sent} requests");
        assert!(
            failed.is_empty(),
            "{} of {sent} requests failed {what}: {failed:?}\n{}",
            failed.len(),
            mesh.world.logs()
        );
        eprintln!("{what}: {sent} requests, none failed");
    }
}

fn pem_certs(text: &str) -> Vec<Vec<u8>> {
    meshd::ca::certs_in(text)
}

fn serial_hex(der: &[u8]) -> String {
    let (_, cert) = X509Certificate::from_der(der).expect("X.509");
    let hex: String = cert
        .tbs_certificate
        .raw_serial()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    hex.trim_start_matches('0').to_string()
}

/// The serials of the roots each TLS context of `pod`'s Envoy trusts (`/certs`), leaving
/// out the bootstrap's own xDS roots file.
fn trusted_root_serials(mesh: &Mesh, pod: &Pod) -> Vec<Vec<String>> {
    let certs = envoy::admin(&pod.ns, "/certs");
    let parsed: serde_json::Value = serde_json::from_str(&certs).expect("/certs is JSON");
    let xds_roots = mesh.xds_roots.display().to_string();
    parsed["certificates"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["ca_cert"].as_array())
        .filter(|roots| !roots.is_empty())
        .filter(|roots| roots.iter().all(|r| r["path"].as_str() != Some(&xds_roots)))
        .map(|roots| {
            roots
                .iter()
                .filter_map(|r| r["serial_number"].as_str())
                .map(|s| s.to_lowercase().trim_start_matches('0').to_string())
                .collect()
        })
        .collect()
}

/// Waits until every SDS trust bundle of both sidecars holds exactly `want` (serials).
fn wait_bundles(mesh: &Mesh, want: &[String], what: &str) {
    let mut want = want.to_vec();
    want.sort();
    wait_for(what, Duration::from_secs(60), || {
        mesh.world
            .pods()
            .all(|pod| {
                let bundles = trusted_root_serials(mesh, pod);
                !bundles.is_empty()
                    && bundles.iter().all(|b| {
                        let mut b = b.clone();
                        b.sort();
                        b.dedup();
                        b == want
                    })
            })
            .then_some(())
    });
}

/// The DER chain of the `default` secret `pod`'s Envoy holds (its config dump shows the
/// chain; the key is redacted there).
fn workload_chain(pod: &Pod) -> Vec<Vec<u8>> {
    let dump = envoy::admin(&pod.ns, "/config_dump?resource=dynamic_active_secrets");
    let parsed: serde_json::Value = serde_json::from_str(&dump).expect("config dump is JSON");
    let b64 = parsed["configs"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["name"] == "default")
        .and_then(|c| c["secret"]["tls_certificate"]["certificate_chain"]["inline_bytes"].as_str())
        .map(str::to_string)
        .unwrap_or_default();
    let pem = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap_or_default();
    pem_certs(&String::from_utf8_lossy(&pem))
}

/// Whether `pod`'s workload certificate chains, by verified signatures, to `root`.
fn chains_to(pod: &Pod, root: &[u8]) -> bool {
    let chain = workload_chain(pod);
    if chain.last().map(Vec::as_slice) != Some(root) {
        return false;
    }
    chain.windows(2).all(|pair| {
        let (_, child) = X509Certificate::from_der(&pair[0]).expect("X.509");
        let (_, parent) = X509Certificate::from_der(&pair[1]).expect("X.509");
        child.verify_signature(Some(parent.public_key())).is_ok()
    })
}

/// Replaces a CA file the way an operator's tooling should: a temporary name, then a
/// rename, so meshd never reads half a file (it would refuse one anyway).
fn put_ca_file(meshd: &Meshd, file: &str, text: &str) {
    let dir = meshd.ca_dir();
    let tmp = dir.join(format!(".{file}.tmp"));
    std::fs::write(&tmp, text).expect("writing a CA file");
    if file == "ca-key.pem" {
        set_mode(&tmp, 0o600);
    }
    std::fs::rename(&tmp, dir.join(file)).expect("renaming a CA file");
}

fn sha256_hex(der: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, der)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The `Hash=` of `x-forwarded-client-cert` in the echo app's answers to a burst of
/// concurrent requests: concurrency makes the client sidecar open new connections, which
/// take the certificates it holds now.
fn client_cert_hashes_of_new_connections(mesh: &Mesh) -> Vec<String> {
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..6)
            .map(|_| s.spawn(|| request(&mesh.world.client.ns)))
            .collect();
        handles
            .into_iter()
            .filter_map(|h| h.join().ok()?.ok())
            .filter_map(|(_, body)| {
                let json: serde_json::Value = serde_json::from_str(&body).ok()?;
                let xfcc = json["headers"]["x-forwarded-client-cert"].as_str()?;
                xfcc.split(';')
                    .find_map(|kv| kv.strip_prefix("Hash="))
                    .map(str::to_string)
            })
            .collect()
    })
}

/// Istio's staged root rotation by editing `--ca-dir` while meshd runs and requests flow
/// through both sidecars: (1) the bundle gains the new root, (2) the new root signs, (3) the
/// old root leaves; no request fails, and afterwards new connections use the new chain.
#[test]
fn staged_root_rotation_under_traffic_fails_no_request() {
    let _lock = harness::lock();
    let (next_root, next_key) = meshd::ca::Authority::new_root_pems().expect("a new root");
    let mesh = start_mesh(
        "client",
        &["--ca-reload-interval", "1s", "--ca-reissue-window", "5s"],
        &next_root,
    );
    let meshd = &mesh.world.meshd;
    let old_root_pem = std::fs::read_to_string(meshd.root_cert()).unwrap();
    let old_root = pem_certs(&old_root_pem).remove(0);
    let new_root = pem_certs(&next_root).remove(0);
    let (old_serial, new_serial) = (serial_hex(&old_root), serial_hex(&new_root));
    for pod in mesh.world.pods() {
        assert!(
            chains_to(pod, &old_root),
            "{} starts on the old root",
            pod.name
        );
    }
    wait_bundles(
        &mesh,
        std::slice::from_ref(&old_serial),
        "the sidecars to trust the old root",
    );

    let traffic = Traffic::default();
    std::thread::scope(|s| {
        s.spawn(|| traffic.run(&mesh.world.client.ns));
        traffic.wait_more(10);

        // Stage 1: the bundle holds both roots; the old CA still signs.
        put_ca_file(meshd, "root-cert.pem", &(old_root_pem.clone() + &next_root));
        wait_bundles(
            &mesh,
            &[old_serial.clone(), new_serial.clone()],
            "stage 1: both sidecars to trust the old and the new root",
        );
        for pod in mesh.world.pods() {
            assert!(chains_to(pod, &old_root), "stage 1 reissues nothing");
        }
        traffic.wait_more(10);

        // Stage 2: the new root signs. The key goes first: for a moment the directory
        // holds the old certificate with the new key, which meshd must refuse.
        put_ca_file(meshd, "ca-key.pem", &next_key);
        std::thread::sleep(Duration::from_millis(2500));
        put_ca_file(meshd, "ca-cert.pem", &next_root);
        wait_for(
            "stage 2: both workload certificates to chain to the new root",
            Duration::from_secs(60),
            || {
                mesh.world
                    .pods()
                    .all(|pod| chains_to(pod, &new_root))
                    .then_some(())
            },
        );
        traffic.wait_more(10);

        // Stage 3: the old root leaves the bundle.
        put_ca_file(meshd, "root-cert.pem", &next_root);
        wait_bundles(
            &mesh,
            std::slice::from_ref(&new_serial),
            "stage 3: both sidecars to trust the new root only",
        );
        traffic.wait_more(20);
        traffic.stop.store(true, Ordering::Relaxed);
    });
    traffic.assert_none_failed("during the staged root rotation", &mesh);

    let log = std::fs::read_to_string(mesh.world.lab.dir.join("meshd-1.log")).unwrap();
    assert!(
        log.contains("does not match the key"),
        "the half-changed directory was refused:\n{}",
        meshd.log_tail()
    );
    // New connections between the sidecars handshake with the new chain against a bundle
    // that holds the new root only: the echo sidecar reports the client's new leaf.
    let client_leaf = workload_chain(&mesh.world.client).remove(0);
    let want = sha256_hex(&client_leaf);
    let hashes = wait_for(
        "a new connection to carry the client's new certificate",
        Duration::from_secs(30),
        || {
            let hashes = client_cert_hashes_of_new_connections(&mesh);
            hashes.contains(&want).then_some(hashes)
        },
    );
    assert!(!hashes.is_empty());
}

/// meshd killed and started again with the same CA directory and ports while requests
/// flow: Envoy keeps its last configuration and certificates, so no request fails; the
/// proxies reconnect and get new certificates from the same root.
#[test]
fn meshd_restart_under_traffic_keeps_the_root_and_fails_no_request() {
    let _lock = harness::lock();
    let mut mesh = start_mesh("client", &[], "");
    let root = pem_certs(&std::fs::read_to_string(mesh.world.meshd.root_cert()).unwrap()).remove(0);
    let before: Vec<Vec<u8>> = mesh
        .world
        .pods()
        .map(|p| workload_chain(p).remove(0))
        .collect();
    let traffic = Traffic::default();
    std::thread::scope(|s| {
        s.spawn(|| traffic.run(&mesh.world.client.ns));
        traffic.wait_more(10);
        // Down for a while: Envoy keeps serving with what it holds.
        mesh.world.meshd.stop();
        traffic.wait_more(20);
        mesh.world.meshd.start_secure(&["--mtls"]);
        mesh.world.assert_in_sync();
        wait_for(
            "both sidecars to get new certificates from the restarted meshd",
            Duration::from_secs(60),
            || {
                mesh.world
                    .pods()
                    .zip(&before)
                    .all(|(p, old)| {
                        let chain = workload_chain(p);
                        chain.first() != Some(old) && chains_to(p, &root)
                    })
                    .then_some(())
            },
        );
        traffic.wait_more(10);
        traffic.stop.store(true, Ordering::Relaxed);
    });
    traffic.assert_none_failed("while meshd restarted", &mesh);
}

/// Two sidecars of one service account: the same SPIFFE identity, different keys.
#[test]
fn two_sidecars_of_one_service_account_get_different_keys() {
    let _lock = harness::lock();
    let mesh = start_mesh("echo", &[], "");
    let leaves: Vec<Vec<u8>> = mesh
        .world
        .pods()
        .map(|p| workload_chain(p).remove(0))
        .collect();
    let parsed: Vec<_> = leaves
        .iter()
        .map(|der| X509Certificate::from_der(der).expect("X.509").1)
        .collect();
    let san = |c: &X509Certificate| {
        format!(
            "{:?}",
            c.subject_alternative_name()
                .expect("SAN")
                .expect("SAN")
                .value
        )
    };
    assert!(
        san(&parsed[0]).contains("spiffe://cluster.local/ns/demo/sa/echo"),
        "{}",
        san(&parsed[0])
    );
    assert_eq!(san(&parsed[0]), san(&parsed[1]), "one identity");
    assert_ne!(
        parsed[0].public_key().raw,
        parsed[1].public_key().raw,
        "two proxies never share a key"
    );
    // And they talk mTLS to each other with those certificates.
    let (status, body) = request(&mesh.world.client.ns).expect("a request through both sidecars");
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("URI=spiffe://cluster.local/ns/demo/sa/echo"),
        "{body}"
    );
}
