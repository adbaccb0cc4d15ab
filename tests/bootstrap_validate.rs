//! `meshd bootstrap` prints a bootstrap the real Envoy accepts (`envoy --mode validate`),
//! for SotW and Delta ADS, with the xDS server given by IP or by name. Envoy is found
//! through `MESHD_ENVOY` or `PATH`; without it the test fails.

mod common;

use std::path::PathBuf;
use std::process::Command;

const NODE_ID: &str = "sidecar~10.244.1.10~productpage-v1.default~default.svc.cluster.local";

fn envoy() -> PathBuf {
    common::envoy::envoy_binary()
}

fn meshd_bootstrap(extra: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_meshd"))
        .args(["bootstrap", "--node-id", NODE_ID])
        .args(extra)
        .output()
        .expect("running meshd bootstrap")
}

fn validate(extra: &[&str]) -> String {
    let out = meshd_bootstrap(extra);
    assert!(
        out.status.success(),
        "meshd bootstrap {extra:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let yaml = String::from_utf8(out.stdout).expect("bootstrap is utf-8");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bootstrap.yaml");
    std::fs::write(&path, &yaml).unwrap();
    let result = common::envoy::validate_file(&envoy(), &path);
    assert!(
        result.is_ok(),
        "envoy rejected the bootstrap for {extra:?}: {}\n--- bootstrap ---\n{yaml}",
        result.unwrap_err()
    );
    yaml
}

#[test]
fn sotw_bootstrap_is_valid() {
    let yaml = validate(&["--xds-address", "meshd.istio-system.svc:15010"]);
    assert!(yaml.contains("apiType: GRPC"), "{yaml}");
    assert!(yaml.contains("STRICT_DNS"), "{yaml}");
    // CDS and LDS wait for meshd without a deadline, so Envoy is not ready without config.
    assert_eq!(yaml.matches("initialFetchTimeout: 0s").count(), 2, "{yaml}");
    assert!(yaml.contains("SERVICE_ACCOUNT: default"), "{yaml}");
    assert!(yaml.contains("name: meshd_readiness_15021"), "{yaml}");
    assert!(yaml.contains("name: meshd_prometheus_15090"), "{yaml}");
    assert!(!yaml.contains("0.0.0.0_150"), "{yaml}");
}

#[test]
fn delta_bootstrap_is_valid() {
    let yaml = validate(&[
        "--xds-address",
        "10.96.0.15:15010",
        "--delta",
        "--admin-port",
        "15100",
    ]);
    assert!(yaml.contains("apiType: DELTA_GRPC"), "{yaml}");
    assert!(yaml.contains("portValue: 15100"), "{yaml}");
}

#[test]
fn bad_xds_address_is_an_error() {
    let out = meshd_bootstrap(&["--xds-address", "no-port-here"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--xds-address"), "{stderr}");
}
