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

/// The secure bootstraps (TLS to meshd's port 15012 and a token), both forms, are accepted
/// by Envoy; a token file with a final newline is refused for `--watch-token-file`.
#[test]
fn secure_bootstraps_are_valid() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca");
    let token = Command::new(env!("CARGO_BIN_EXE_meshd"))
        .args(["token", "--ca-dir"])
        .arg(&ca)
        .args(["--namespace", "default", "--service-account", "productpage"])
        .output()
        .unwrap();
    assert!(
        token.status.success(),
        "{}",
        String::from_utf8_lossy(&token.stderr)
    );
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, &token.stdout).unwrap();
    // `meshd token` makes the key only; the root comes from `meshd serve`: any PEM root
    // will do for validation.
    let root = meshd::ca::Authority::in_memory().unwrap().root_pem();
    let root_file = dir.path().join("root-cert.pem");
    std::fs::write(&root_file, root).unwrap();
    let (root_arg, token_arg) = (root_file.to_str().unwrap(), token_file.to_str().unwrap());
    let common = [
        "--xds-address",
        "meshd.istio-system.svc:15012",
        "--root-cert",
        root_arg,
        "--token-file",
        token_arg,
    ];
    let yaml = validate(&common);
    assert!(yaml.contains("UpstreamTlsContext"), "{yaml}");
    assert!(yaml.contains("sni: istiod.istio-system.svc"), "{yaml}");
    assert!(yaml.contains("key: authorization"), "{yaml}");
    let mut watch = common.to_vec();
    watch.push("--watch-token-file");
    let yaml = validate(&watch);
    assert!(
        yaml.contains("envoy.grpc_credentials.file_based_metadata"),
        "{yaml}"
    );
    assert!(yaml.contains(token_arg), "{yaml}");
    assert!(!yaml.contains("key: authorization"), "{yaml}");

    std::fs::write(&token_file, [&token.stdout[..], b"\n"].concat()).unwrap();
    let out = meshd_bootstrap(&watch);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("whitespace"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
