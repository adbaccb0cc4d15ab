//! `meshd serve --kubernetes` as a process against the test API server, and what the tests
//! read from it: `/debug/configz`, `/debug/syncz` and the counters of `/metrics`.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{free_port, Meshd};

/// How long any wait on meshd may take before the test fails (a bound, not a speed claim).
pub const WAIT: Duration = Duration::from_secs(90);

/// `meshd serve --kubernetes` on loopback ports with `extra` flags, its log in `log`.
pub fn spawn(kubeconfig: &Path, log: &Path, extra: &[&str]) -> Meshd {
    let xds: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let admin: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_meshd"))
        .args(["serve", "--kubernetes", "--kubeconfig"])
        .arg(kubeconfig)
        .args(["--xds-addr", &xds.to_string()])
        .args(["--admin-addr", &admin.to_string()])
        // Replicas share the host's ports: no secure port (the CA is tested elsewhere).
        .args(["--secure-xds-addr", "off"])
        .args(["--debounce-quiet-ms", "50"])
        .args(extra)
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "meshd=debug")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).expect("creating the meshd log"))
        .spawn()
        .expect("start meshd");
    Meshd { child, xds, admin }
}

/// meshd's `/debug/configz`.
pub fn configz(meshd: &Meshd) -> Value {
    let (status, body) = meshd.get("/debug/configz");
    assert_eq!(status, 200, "/debug/configz: {body}");
    serde_json::from_str(&body).expect("configz is JSON")
}

/// The hostnames of the services in `configz`.
pub fn hostnames(configz: &Value) -> Vec<String> {
    configz["services"]
        .as_array()
        .expect("configz has services")
        .iter()
        .filter_map(|s| s["hostname"].as_str().map(str::to_string))
        .collect()
}

pub fn serves(configz: &Value, hostname: &str) -> bool {
    hostnames(configz).iter().any(|n| n == hostname)
}

/// Waits (bounded by `WAIT`) until `check` holds for meshd's configz; returns that configz.
pub fn wait_configz(
    meshd: &Meshd,
    log: &Path,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok((200, body)) = crate::common::http_get(meshd.admin, "/debug/configz") {
            let configz: Value = serde_json::from_str(&body).expect("configz is JSON");
            if check(&configz) {
                return configz;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: meshd serves {configz}\nmeshd log:\n{}",
                log_text(log)
            );
        }
        assert!(
            Instant::now() < deadline,
            "{what}: meshd not answering\nmeshd log:\n{}",
            log_text(log)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits (bounded by `WAIT`) until `check` holds; the log goes into the failure message.
pub fn wait_until(log: &Path, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !check() {
        assert!(
            Instant::now() < deadline,
            "{what}: not within {WAIT:?}\nmeshd log:\n{}",
            log_text(log)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn log_text(log: &Path) -> String {
    std::fs::read_to_string(log).unwrap_or_default()
}

/// The samples of `/metrics` whose name (before any label) is `name`, summed.
pub fn metric(meshd: &Meshd, name: &str) -> f64 {
    let (status, body) = meshd.get("/metrics");
    assert_eq!(status, 200, "/metrics: {body}");
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .filter(|(series, _)| series.split('{').next() == Some(name))
        .filter_map(|(_, v)| v.parse::<f64>().ok())
        .sum()
}

/// Configuration generations built since start.
pub fn generation(meshd: &Meshd) -> u64 {
    metric(meshd, "meshd_config_generation") as u64
}

/// xDS responses sent, all types.
pub fn pushes(meshd: &Meshd) -> u64 {
    metric(meshd, "pilot_xds_pushes") as u64
}

/// `/debug/syncz` for one proxy: per type short name, the version sent.
pub fn sent_versions(
    meshd: &Meshd,
    node_id: &str,
) -> Option<std::collections::BTreeMap<String, String>> {
    let (status, body) = crate::common::http_get(
        meshd.admin,
        &format!("/debug/syncz?proxyID={node_id}&names=false"),
    )
    .ok()?;
    if status != 200 {
        return None;
    }
    let syncz: Value = serde_json::from_str(&body).ok()?;
    let entry = syncz.get(node_id)?;
    Some(
        ["clusters", "endpoints", "listeners", "routes"]
            .iter()
            .filter_map(|t| {
                let v = entry.get(*t)?.get("version_sent")?.as_str()?;
                Some((t.to_string(), v.to_string()))
            })
            .collect(),
    )
}

/// Waits (bounded by `WAIT`) until meshd's `/ready` answers 200; its log on failure.
pub fn wait_ready(meshd: &Meshd, log: &Path) {
    wait_until(log, "meshd to be ready", || {
        matches!(crate::common::http_get(meshd.admin, "/ready"), Ok((200, _)))
    });
}
