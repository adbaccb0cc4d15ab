//! End-to-end: a stock Envoy bootstrapped for meshd's secure port (TLS checked against
//! meshd's root, a token from `meshd token`) receives its workload identity over SDS:
//! Envoy's `/certs` shows the SPIFFE SAN of its token and a chain to meshd's root, and with
//! a short lifetime the certificate is renewed and pushed (a new serial). Until the mesh's
//! own TLS references them, a probe cluster in the bootstrap asks for `default` and
//! `ROOTCA` as sidecar clusters will. Needs root, Envoy and curl (see tests/e2e/mod.rs).

#[path = "e2e/mod.rs"]
mod harness;

use std::time::Duration;

use harness::envoy;
use harness::meshd::Meshd;
use harness::netns::Lab;
use harness::objects;
use harness::pod::Pod;
use harness::process::wait_for;
use serde_json::{json, Value};

const NS: &str = "demo";
const SA: &str = "client-sa";

/// `bootstrap` with a static listener whose TLS takes `default` and `ROOTCA` from SDS over
/// ADS, so that Envoy asks meshd for them. (A static cluster cannot: Envoy 1.40 crashes
/// loading a static cluster with an ADS SDS source, before the ADS stream exists.)
fn with_sds_probe(bootstrap: &str) -> String {
    let mut value: Value = meshd::yaml::from_str(bootstrap).expect("the bootstrap is YAML");
    let sds =
        |name: &str| json!({"name": name, "sdsConfig": {"ads": {}, "resourceApiVersion": "V3"}});
    let probe = json!({
        "name": "sds-probe",
        "address": {"socketAddress": {"address": "127.0.0.1", "portValue": 15443}},
        "filterChains": [{
            "filters": [{"name": "envoy.filters.network.echo", "typedConfig": {
                "@type": "type.googleapis.com/envoy.extensions.filters.network.echo.v3.Echo"}}],
            "transportSocket": {"name": "envoy.transport_sockets.tls", "typedConfig": {
                "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
                "commonTlsContext": {
                    "tlsCertificateSdsSecretConfigs": [sds("default")],
                    "validationContextSdsSecretConfig": sds("ROOTCA"),
                }}},
        }],
    });
    value["staticResources"]["listeners"]
        .as_array_mut()
        .expect("static listeners")
        .push(probe);
    meshd::yaml::to_string(&value).expect("the bootstrap renders")
}

/// meshd with its CA and secure port, and one pod whose sidecar uses the secure port.
fn secure_pod(meshd_args: &[&str], delta: bool) -> (Lab, Meshd, Pod) {
    secure_pod_with(meshd_args, delta, &[])
}

/// As `secure_pod`, with `bootstrap_args` for `meshd bootstrap`.
fn secure_pod_with(meshd_args: &[&str], delta: bool, bootstrap_args: &[&str]) -> (Lab, Meshd, Pod) {
    let mut lab = Lab::new();
    let mut meshd = Meshd::new(&mut lab);
    meshd.write("namespace.yaml", &objects::namespace(NS));
    let port = objects::Port {
        name: "http",
        port: 80,
        target: 8080,
    };
    meshd.write(
        "service-echo.yaml",
        &objects::service("echo", NS, "10.96.0.10", "echo", &[port]),
    );
    let mut pod = Pod::new(&mut lab, "client", NS);
    meshd.write(
        "pod-client.yaml",
        &objects::pod("client", NS, &pod.ip, "client", &[]),
    );
    meshd.start_secure(meshd_args);
    let bootstrap = meshd.bootstrap_secure_with(&pod.node_id(), NS, SA, delta, bootstrap_args);
    pod.start_envoy(&lab, &with_sds_probe(&bootstrap));
    (lab, meshd, pod)
}

/// The workload certificate in Envoy's `/certs`: its URI SANs and serial, and the serials
/// of the CA certificates it trusts; `None` until Envoy has it.
fn envoy_certs(pod: &Pod) -> Option<(Vec<String>, String, Vec<String>)> {
    let certs: Value = serde_json::from_str(&envoy::admin_get(&pod.ns, "/certs")?).ok()?;
    let entry = certs["certificates"].as_array()?.iter().find(|c| {
        c["cert_chain"]
            .as_array()
            .is_some_and(|chain| !chain.is_empty())
    })?;
    let leaf = &entry["cert_chain"][0];
    let uris = leaf["subject_alt_names"]
        .as_array()?
        .iter()
        .filter_map(|s| s["uri"].as_str().map(str::to_string))
        .collect();
    let serial = leaf["serial_number"].as_str()?.to_string();
    let roots = entry["ca_cert"]
        .as_array()?
        .iter()
        .filter_map(|c| c["serial_number"].as_str().map(str::to_string))
        .collect();
    Some((uris, serial, roots))
}

/// The serial of meshd's root, as Envoy prints serials (lowercase hex, no leading zeros).
fn root_serial(meshd: &Meshd) -> String {
    let pem = std::fs::read_to_string(meshd.root_cert()).unwrap();
    let der = meshd::ca::certs_in(&pem).remove(0);
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    let hex: String = cert
        .tbs_certificate
        .raw_serial()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    hex.trim_start_matches('0').to_string()
}

fn on_failure(meshd: &Meshd, pod: &Pod) -> String {
    format!("--- meshd\n{}\n{}", meshd.log_tail(), pod.logs())
}

#[test]
fn envoy_receives_its_token_identity_and_meshds_root_over_the_secure_port() {
    let (_lab, meshd, pod) = secure_pod(&[], false);
    let (uris, _, roots) = wait_for(
        "Envoy to hold its workload certificate",
        Duration::from_secs(30),
        || envoy_certs(&pod),
    );
    let want = format!("spiffe://cluster.local/ns/{NS}/sa/{SA}");
    assert_eq!(uris, [want], "{}", on_failure(&meshd, &pod));
    let root = root_serial(&meshd);
    assert!(
        roots.iter().any(|r| r.trim_start_matches('0') == root),
        "Envoy trusts {roots:?}, not meshd's root {root}"
    );
    assert!(envoy::rejected_updates(&pod.ns).is_empty());
    // The stream is meshd's authenticated one: its syncz entry has the secrets acked.
    let syncz = meshd.syncz().expect("syncz");
    assert!(
        syncz.to_string().contains(&pod.node_id()),
        "the proxy is connected: {syncz}"
    );
}

#[test]
fn a_short_lived_certificate_is_renewed_and_pushed_with_a_new_serial() {
    let (_lab, meshd, pod) = secure_pod(&["--workload-cert-ttl", "20s"], true);
    let (_, first, _) = wait_for(
        "Envoy to hold its workload certificate",
        Duration::from_secs(30),
        || envoy_certs(&pod),
    );
    // Renewed at about half of 20 s.
    let (uris, second, _) = wait_for(
        "Envoy to hold a renewed certificate",
        Duration::from_secs(40),
        || envoy_certs(&pod).filter(|(_, serial, _)| *serial != first),
    );
    assert_ne!(first, second);
    assert_eq!(
        uris,
        [format!("spiffe://cluster.local/ns/{NS}/sa/{SA}")],
        "{}",
        on_failure(&meshd, &pod)
    );
    assert!(envoy::rejected_updates(&pod.ns).is_empty());
}

#[test]
fn a_token_rotated_on_disk_is_used_by_the_next_stream_with_watch_token_file() {
    // Streams are closed after 5 s, so Envoy opens new ones (reading the file again).
    let (_lab, meshd, pod) = secure_pod_with(
        &["--max-connection-age", "5s"],
        false,
        &["--watch-token-file"],
    );
    let (uris, _, _) = wait_for(
        "Envoy to hold its workload certificate",
        Duration::from_secs(30),
        || envoy_certs(&pod),
    );
    assert_eq!(uris, [format!("spiffe://cluster.local/ns/{NS}/sa/{SA}")]);
    // The token file now holds another service account's token (as a projected token
    // volume is replaced): the next stream authenticates with it.
    let file = meshd.token_file(NS, SA);
    let rotated = std::fs::read_to_string(meshd.token_file(NS, "rotated-sa")).unwrap();
    let tmp = file.with_extension("new");
    std::fs::write(&tmp, rotated).unwrap();
    harness::netns::set_mode(&tmp, 0o644);
    std::fs::rename(&tmp, &file).unwrap();
    let want = format!("spiffe://cluster.local/ns/{NS}/sa/rotated-sa");
    wait_for(
        "Envoy to hold the rotated token's identity",
        Duration::from_secs(40),
        || envoy_certs(&pod).filter(|(uris, _, _)| *uris == [want.clone()]),
    );
    assert!(
        envoy::rejected_updates(&pod.ns).is_empty(),
        "{}",
        on_failure(&meshd, &pod)
    );
}
