//! `meshd-load` against a real `meshd serve`: every simulated proxy (SotW and Delta) syncs
//! all four types, and every one receives a change made to the watched directory.

mod common;

use std::process::Command;

use common::{bookinfo_dir, copy_dir, Meshd};

const NEW_SERVICE: &str = "apiVersion: v1
kind: Service
metadata:
  name: load-extra
  namespace: default
spec:
  selector:
    app: load-extra
  ports:
  - name: http
    port: 9080
";

#[test]
fn every_proxy_syncs_and_receives_a_change() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    copy_dir(&bookinfo_dir(), &config);
    let staged = dir.path().join("load-extra.yaml");
    std::fs::write(&staged, NEW_SERVICE).unwrap();
    let meshd = Meshd::start(&config);

    let change = format!(
        "cp {} {}",
        staged.display(),
        config.join("load-extra.yaml").display()
    );
    let output = Command::new(env!("CARGO_BIN_EXE_meshd-load"))
        .args(["--xds-addr", &meshd.xds.to_string()])
        .args([
            "--proxies",
            "20",
            "--namespaces",
            "3",
            "--delta-fraction",
            "0.5",
        ])
        .args(["--sync-timeout", "120s", "--change-timeout", "60s"])
        .args(["--server-pid", &meshd.child.id().to_string()])
        .args(["--change-cmd", &change])
        .output()
        .expect("run meshd-load");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "meshd-load failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json = stdout.lines().last().expect("a JSON line");
    let report: serde_json::Value = serde_json::from_str(json).expect("the last line is JSON");

    assert_eq!(report["proxies"], 20, "{stdout}");
    assert_eq!(report["delta_proxies"], 10, "{stdout}");
    assert_eq!(report["synced"], 20, "every proxy synced: {stdout}");
    assert!(report["cold_start_ms"].is_number(), "{stdout}");
    // CDS, EDS, LDS and RDS each answered at least once per proxy.
    assert!(
        report["cold_responses_per_proxy"]["mean"].as_f64().unwrap() >= 4.0,
        "{stdout}"
    );
    let change = &report["change"];
    assert_eq!(change["exit_ok"], true, "{stdout}");
    assert_eq!(
        change["received"], 20,
        "every proxy got the change: {stdout}"
    );
    assert_eq!(change["never"], 0, "{stdout}");
    assert!(
        change["bytes_per_proxy"]["mean"].as_f64().unwrap() > 0.0,
        "{stdout}"
    );
    let server = &report["server"];
    assert!(
        server["synced"]["rss_kib"].as_u64().unwrap() > 0,
        "{stdout}"
    );
    // The table is printed for people before the JSON line.
    assert!(stdout.contains("change delay"), "{stdout}");
}

#[test]
fn bad_proxies_are_reported_apart_and_healthy_ones_still_sync_and_change() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    copy_dir(&bookinfo_dir(), &config);
    let staged = dir.path().join("load-extra.yaml");
    std::fs::write(&staged, NEW_SERVICE).unwrap();
    let meshd = Meshd::start(&config);

    let change = format!(
        "cp {} {}",
        staged.display(),
        config.join("load-extra.yaml").display()
    );
    let output = Command::new(env!("CARGO_BIN_EXE_meshd-load"))
        .args(["--xds-addr", &meshd.xds.to_string()])
        .args(["--proxies", "20", "--namespaces", "3"])
        .args(["--delta-fraction", "0.5"])
        .args(["--nack-fraction", "0.1", "--slow-fraction", "0.1"])
        .args(["--never-ack-fraction", "0.1", "--slow-delay", "200ms"])
        .args(["--sync-timeout", "120s", "--change-timeout", "60s"])
        .args(["--change-cmd", &change, "--json-only"])
        .output()
        .expect("run meshd-load");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "meshd-load failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON line");

    assert_eq!(report["proxies"], 20, "{stdout}");
    assert_eq!(report["healthy_proxies"], 14, "{stdout}");
    assert_eq!(report["synced"], 14, "every healthy proxy synced: {stdout}");
    assert_eq!(report["change"]["received"], 14, "{stdout}");
    assert_eq!(report["change"]["never"], 0, "{stdout}");
    let bad = report["bad_clients"].as_array().expect("bad_clients");
    let kinds: Vec<&str> = bad.iter().map(|b| b["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["nack", "slow", "never_ack"], "{stdout}");
    for b in bad {
        assert_eq!(b["proxies"], 2, "{stdout}");
        // Every kind reads, so every one of them sees the new configuration.
        assert_eq!(b["change_received"], 2, "{b}");
        assert!(b["cold_responses_per_proxy"]["mean"].as_f64().unwrap() >= 1.0);
    }
    // Only the slow ones ACK, so only they can be synced.
    assert_eq!(bad[0]["synced"], 0, "{stdout}");
    assert_eq!(bad[1]["synced"], 2, "{stdout}");
    assert_eq!(bad[2]["synced"], 0, "{stdout}");
}
