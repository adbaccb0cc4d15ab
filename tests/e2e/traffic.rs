//! The echo application (examples/echo.rs) as server inside pods and as client sending
//! requests from a pod namespace, and the tallies the tests assert on.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use super::netns::{set_mode, Lab, Netns};
use super::process::{run_timeout, wait_for, Proc};

/// Apps run as an ordinary user, neither root nor the proxy's 1337.
pub const APP_UID: u32 = 1000;

/// `setpriv` in `ns` switching to the app user (so the sidecar captures what it sends);
/// the caller appends the program and its arguments.
pub fn app_command(ns: &Netns) -> Command {
    let mut cmd = ns.command("setpriv");
    let uid = APP_UID.to_string();
    cmd.args(["--reuid", &uid, "--regid", &uid, "--clear-groups"]);
    cmd
}

/// The echo example binary, (re)built once per test run into the same target directory
/// as the test executable: `cargo test --all-targets` compiles examples only as test
/// harnesses, so the plain binary may be missing or stale.
pub fn echo_binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(p) = std::env::var_os("MESHD_E2E_ECHO") {
            return PathBuf::from(p);
        }
        build_example("echo")
    })
}

/// Builds the example `name` into the test executable's target directory and profile;
/// its path. Callers keep it in a `OnceLock` so it is built once per run.
pub fn build_example(name: &str) -> PathBuf {
    // target/<profile>/deps/<test>-<hash> -> target/<profile>/examples/<name>
    let exe = std::env::current_exe().expect("current_exe");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executable under target/<profile>/deps");
    let target_dir = profile_dir.parent().expect("target directory");
    let profile = profile_dir
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("debug");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| env!("CARGO").to_string());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--quiet", "--example", name, "--target-dir"])
        .arg(target_dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    match profile {
        "debug" => {}
        "release" => {
            cmd.arg("--release");
        }
        other => {
            cmd.args(["--profile", other]);
        }
    }
    let out = run_timeout(cmd, Duration::from_secs(600));
    let bin = profile_dir.join("examples").join(name);
    assert!(
        out.success() && bin.exists(),
        "building the {name} example failed ({:?}) or {} is missing: {}",
        out.status,
        bin.display(),
        out.stderr
    );
    bin
}

/// Copies the echo binary into the lab directory so the app user can run it wherever the
/// build lives.
pub fn install_echo(lab: &Lab) -> PathBuf {
    let target = lab.path("echo");
    if !target.exists() {
        std::fs::copy(echo_binary(), &target).expect("copying the echo binary");
        set_mode(&target, 0o755);
    }
    target
}

/// Starts the echo server in `ns`, answering as `name`.
pub fn start_server(lab: &Lab, ns: &Netns, name: &str, http: &[u16], tcp: &[u16]) -> Proc {
    let bin = install_echo(lab);
    let mut cmd = app_command(ns);
    cmd.arg(&bin).args(["serve", "--name", name]);
    for p in http {
        cmd.args(["--http", &p.to_string()]);
    }
    for p in tcp {
        cmd.args(["--tcp", &p.to_string()]);
    }
    Proc::spawn_listening(
        &format!("echo {name}"),
        cmd,
        &lab.path(&format!("{name}.echo.log")),
    )
}

/// Outcome of a run of HTTP requests.
#[derive(Debug, Default)]
pub struct Tally {
    /// Successful responses by the pod that answered.
    pub by_pod: BTreeMap<String, u32>,
    /// Failed requests, with why.
    pub failures: Vec<String>,
}

impl Tally {
    pub fn parse(stdout: &str) -> Tally {
        let mut t = Tally::default();
        for line in stdout.lines() {
            if let Some(body) = line.strip_prefix("ok ") {
                let pod = body
                    .split_whitespace()
                    .find_map(|w| w.strip_prefix("pod="))
                    .unwrap_or("?")
                    .to_string();
                *t.by_pod.entry(pod).or_default() += 1;
            } else if !line.trim().is_empty() {
                t.failures.push(line.to_string());
            }
        }
        t
    }

    pub fn ok(&self) -> u32 {
        self.by_pod.values().sum()
    }
}

fn client(lab: &Lab, ns: &Netns, addr: &str, host: &str) -> Command {
    let bin = install_echo(lab);
    let mut cmd = app_command(ns);
    cmd.arg(&bin).args([
        "http-get",
        "--addr",
        addr,
        "--host",
        host,
        "--timeout-ms",
        "3000",
    ]);
    cmd
}

/// Sends `count` HTTP requests from `ns` to `addr` with the given Host header.
pub fn http_requests(lab: &Lab, ns: &Netns, addr: &str, host: &str, count: u32) -> Tally {
    let mut cmd = client(lab, ns, addr, host);
    cmd.args(["--count", &count.to_string()]);
    let out = run_timeout(cmd, Duration::from_secs(10 + u64::from(count) * 3));
    assert!(
        out.status.is_some(),
        "the http client timed out: {}",
        out.stderr
    );
    Tally::parse(&out.stdout)
}

/// A request loop running in the background for a fixed time.
pub struct Load {
    proc: Proc,
    duration: Duration,
}

/// Starts sending a request every `interval_ms` for `duration` from `ns`.
pub fn start_load(
    lab: &Lab,
    ns: &Netns,
    addr: &str,
    host: &str,
    duration: Duration,
    tag: &str,
) -> Load {
    let mut cmd = client(lab, ns, addr, host);
    cmd.args([
        "--duration-ms",
        &duration.as_millis().to_string(),
        "--interval-ms",
        "20",
    ]);
    Load {
        proc: Proc::spawn(
            &format!("load {tag}"),
            cmd,
            &lab.path(&format!("load-{tag}.log")),
        ),
        duration,
    }
}

impl Load {
    /// Stops the loop now and returns what it saw.
    pub fn stop(mut self) -> Tally {
        self.proc.kill();
        read_log(&self.proc.log)
    }

    /// What the loop has seen so far.
    pub fn so_far(&self) -> Tally {
        read_log(&self.proc.log)
    }

    /// Waits for the loop to end (bounded) and returns what it saw.
    pub fn finish(mut self) -> Tally {
        wait_for(
            "the request loop to finish",
            self.duration + Duration::from_secs(15),
            || (!self.proc.running()).then_some(()),
        );
        read_log(&self.proc.log)
    }
}

/// Sends one line over TCP from `ns` and returns the echoed line.
pub fn tcp_line(lab: &Lab, ns: &Netns, addr: &str, line: &str) -> Result<String, String> {
    let bin = install_echo(lab);
    let mut cmd = app_command(ns);
    cmd.arg(&bin)
        .args(["tcp-send", "--addr", addr, "--line", line]);
    let out = run_timeout(cmd, Duration::from_secs(10));
    if out.success() {
        Ok(out.stdout.trim_end().to_string())
    } else {
        Err(format!("{:?}: {}", out.status, out.stderr.trim_end()))
    }
}

/// A loop's log, minus a last line cut off by killing the loop mid-write.
fn read_log(path: &Path) -> Tally {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let complete = match text.rfind('\n') {
        Some(i) => &text[..=i],
        None => "",
    };
    Tally::parse(complete)
}
