//! Harness for the end-to-end tests: pods as network namespaces on a private bridge,
//! Istio-style traffic capture, stock Envoy sidecars, the echo app, and meshd.
//!
//! Needs root, iproute2, iptables, util-linux's setpriv, curl and Envoy 1.40
//! (scripts/install-test-deps.sh). Environment knobs: `MESHD_E2E_KEEP=1` keeps the lab
//! directory (configs, bootstraps, every log) under the temp dir; `MESHD_E2E_ENVOY` and
//! `MESHD_E2E_ECHO` point at the Envoy and echo binaries instead of looking them up.
#![allow(dead_code)] // each test binary uses a different part of the harness

pub mod capture;
pub mod envoy;
pub mod meshd;
pub mod netns;
pub mod objects;
pub mod pod;
pub mod process;
pub mod prometheus;
pub mod syncz;
pub mod traffic;
pub mod upstream;
pub mod world;

use std::sync::{Mutex, MutexGuard};

/// Serializes the e2e tests of one binary: they are heavy and the machine small.
/// Also checks, once per test, that the environment can run them at all.
pub fn lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    let guard = LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    preflight();
    guard
}

/// Fails (never skips) with what is missing.
fn preflight() {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or("?")
        .to_string();
    assert!(
        uid == "0",
        "the e2e tests need root (network namespaces, iptables); running as uid {uid}"
    );
    for tool in [
        "ip",
        "iptables-restore",
        "setpriv",
        "curl",
        "kill",
        "python3",
    ] {
        assert!(
            on_path(tool),
            "the e2e tests need `{tool}` on PATH; run scripts/install-test-deps.sh"
        );
    }
    let _ = envoy::binary();
}

/// Whether `tool` is an executable file in a directory of PATH.
pub fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false)
}
