//! meshd in its own namespace on the bridge: its config directory, `meshd serve`,
//! `meshd bootstrap` for each sidecar, and its admin views.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use super::envoy::http_get_in;
use super::netns::{Lab, Netns};
use super::process::{run_timeout, wait_for, Proc};

pub const XDS_PORT: u16 = 15010;
pub const ADMIN_PORT: u16 = 15014;
/// The authenticated xDS port (TLS, bearer tokens), as istiod's.
pub const SECURE_XDS_PORT: u16 = 15012;

pub struct Meshd {
    pub proc: Option<Proc>,
    pub ip: String,
    pub config_dir: PathBuf,
    log_dir: PathBuf,
    starts: u32,
    pub ns: Netns,
}

impl Meshd {
    /// The namespace and an empty config directory; not started.
    pub fn new(lab: &mut Lab) -> Meshd {
        let (ns, ip) = lab.attach("cp");
        let config_dir = lab.path("config");
        std::fs::create_dir_all(&config_dir).expect("creating the config dir");
        Meshd {
            proc: None,
            ip,
            config_dir,
            log_dir: lab.dir.clone(),
            starts: 0,
            ns,
        }
    }

    pub fn xds_address(&self) -> String {
        format!("{}:{XDS_PORT}", self.ip)
    }

    /// Writes a config file atomically (a temp name meshd ignores, then rename).
    pub fn write(&self, file: &str, yaml: &str) {
        let tmp = self.config_dir.join(format!(".{file}.tmp"));
        std::fs::write(&tmp, yaml).expect("writing a config file");
        std::fs::rename(&tmp, self.config_dir.join(file)).expect("renaming a config file");
    }

    pub fn remove(&self, file: &str) {
        std::fs::remove_file(self.config_dir.join(file)).expect("removing a config file");
    }

    /// Starts `meshd serve` and waits until it reports ready.
    pub fn start(&mut self) {
        self.start_with(&[]);
    }

    /// As `start`, with `extra` arguments for `meshd serve`.
    pub fn start_with(&mut self, extra: &[&str]) {
        assert!(self.proc.is_none(), "meshd already running");
        self.starts += 1;
        let mut cmd = self.ns.command(env!("CARGO_BIN_EXE_meshd"));
        cmd.arg("serve")
            .arg("--config-dir")
            .arg(&self.config_dir)
            .args(["--xds-addr", &format!("0.0.0.0:{XDS_PORT}")])
            .args(["--admin-addr", &format!("0.0.0.0:{ADMIN_PORT}")])
            .args(["--poll-interval-ms", "100", "--debounce-quiet-ms", "50"])
            .args(extra);
        self.spawn_ready(cmd, Duration::from_secs(30));
    }

    /// As `start_with`, with environment variables `env` for meshd (e.g. `SSL_CERT_FILE`).
    pub fn start_with_env(&mut self, extra: &[&str], env: &[(&str, &str)]) {
        assert!(self.proc.is_none(), "meshd already running");
        self.starts += 1;
        let mut cmd = self.ns.command(env!("CARGO_BIN_EXE_meshd"));
        cmd.arg("serve")
            .arg("--config-dir")
            .arg(&self.config_dir)
            .args(["--xds-addr", &format!("0.0.0.0:{XDS_PORT}")])
            .args(["--admin-addr", &format!("0.0.0.0:{ADMIN_PORT}")])
            .args(["--poll-interval-ms", "100", "--debounce-quiet-ms", "50"])
            .args(extra)
            .envs(env.iter().copied());
        self.spawn_ready(cmd, Duration::from_secs(30));
    }

    /// Runs `cmd` (a `meshd serve`) as this meshd, its log numbered by start, and waits up
    /// to `timeout` until it reports ready.
    fn spawn_ready(&mut self, mut cmd: std::process::Command, timeout: Duration) {
        cmd.env("RUST_LOG", "info").env("NO_COLOR", "1");
        let log = self.log_dir.join(format!("meshd-{}.log", self.starts));
        let mut proc = Proc::spawn("meshd", cmd, &log);
        wait_for("meshd to be ready", timeout, || {
            proc.assert_running();
            self.admin_get("/ready")
        });
        self.proc = Some(proc);
    }

    /// As `start_with`, reading the cluster of `kubeconfig` (`--kubernetes`) instead of the
    /// config directory; the API server must be reachable from meshd's namespace.
    pub fn start_kubernetes(&mut self, kubeconfig: &std::path::Path, extra: &[&str]) {
        assert!(self.proc.is_none(), "meshd already running");
        self.starts += 1;
        let mut cmd = self.ns.command(env!("CARGO_BIN_EXE_meshd"));
        cmd.args(["serve", "--kubernetes", "--kubeconfig"])
            .arg(kubeconfig)
            .args(["--xds-addr", &format!("0.0.0.0:{XDS_PORT}")])
            .args(["--admin-addr", &format!("0.0.0.0:{ADMIN_PORT}")])
            .args(["--debounce-quiet-ms", "50"])
            .args(extra);
        self.spawn_ready(cmd, Duration::from_secs(60));
    }

    pub fn stop(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.kill();
        }
    }

    pub fn admin_get(&self, path: &str) -> Option<String> {
        http_get_in(&self.ns, &format!("http://127.0.0.1:{ADMIN_PORT}{path}"))
    }

    pub fn syncz(&self) -> Option<serde_json::Value> {
        serde_json::from_str(&self.admin_get("/debug/syncz")?).ok()
    }

    /// `meshd bootstrap` for a sidecar with `node_id`, SotW or Delta.
    pub fn bootstrap(&self, node_id: &str, delta: bool) -> String {
        self.bootstrap_with(node_id, delta, &[])
    }

    /// As `bootstrap`, with `extra` arguments for `meshd bootstrap` (such as `--label`).
    pub fn bootstrap_with(&self, node_id: &str, delta: bool, extra: &[&str]) -> String {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_meshd"));
        cmd.args([
            "bootstrap",
            "--node-id",
            node_id,
            "--xds-address",
            &self.xds_address(),
        ]);
        print_bootstrap(
            cmd,
            extra,
            delta,
            &format!("meshd bootstrap --node-id {node_id}"),
        )
    }

    pub fn log_tail(&self) -> String {
        self.proc
            .as_ref()
            .map(|p| p.log_tail(40))
            .unwrap_or_default()
    }
}

/// The CA and the secure xDS port: `meshd serve --ca-dir` with tokens from `meshd token`.
impl Meshd {
    /// The CA directory `start_secure` uses (beside the config directory).
    pub fn ca_dir(&self) -> PathBuf {
        self.config_dir.with_file_name("ca")
    }

    /// meshd's root certificate, once `start_secure` has made it.
    pub fn root_cert(&self) -> PathBuf {
        self.ca_dir().join("root-cert.pem")
    }

    pub fn secure_xds_address(&self) -> String {
        format!("{}:{SECURE_XDS_PORT}", self.ip)
    }

    /// Starts meshd with its CA in `ca_dir()` and the secure port open, with `extra`
    /// arguments for `meshd serve` (e.g. `--workload-cert-ttl 20s`). A restart keeps the CA.
    pub fn start_secure(&mut self, extra: &[&str]) {
        let ca = self.ca_dir().display().to_string();
        let secure = format!("0.0.0.0:{SECURE_XDS_PORT}");
        let mut args = vec![
            "--ca-dir",
            ca.as_str(),
            "--secure-xds-addr",
            secure.as_str(),
        ];
        args.extend_from_slice(extra);
        self.start_with(&args);
    }

    /// A token for `namespace`/`service_account` from `meshd token`, written to a file
    /// (readable by Envoy's uid) whose path is returned.
    pub fn token_file(&self, namespace: &str, service_account: &str) -> PathBuf {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_meshd"));
        cmd.args(["token", "--ca-dir"]).arg(self.ca_dir()).args([
            "--namespace",
            namespace,
            "--service-account",
            service_account,
        ]);
        let out = run_timeout(cmd, Duration::from_secs(10));
        assert!(out.success(), "meshd token failed: {}", out.stderr);
        let path = self
            .config_dir
            .with_file_name(format!("token-{namespace}-{service_account}"));
        std::fs::write(&path, out.stdout.trim()).expect("writing a token file");
        super::netns::set_mode(&path, 0o644);
        path
    }

    /// The bootstrap of a sidecar that connects to the secure port with a token for
    /// `namespace`/`service_account` (also its node metadata SERVICE_ACCOUNT), checking
    /// meshd's certificate against its root. Needs `start_secure` first.
    pub fn bootstrap_secure(
        &self,
        node_id: &str,
        namespace: &str,
        service_account: &str,
        delta: bool,
    ) -> String {
        self.bootstrap_secure_with(node_id, namespace, service_account, delta, &[])
    }

    /// As `bootstrap_secure`, with `extra` arguments for `meshd bootstrap`.
    pub fn bootstrap_secure_with(
        &self,
        node_id: &str,
        namespace: &str,
        service_account: &str,
        delta: bool,
        extra: &[&str],
    ) -> String {
        let token = self.token_file(namespace, service_account);
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_meshd"));
        cmd.args(["bootstrap", "--node-id", node_id, "--xds-address"])
            .arg(self.secure_xds_address())
            .arg("--root-cert")
            .arg(self.root_cert())
            .arg("--token-file")
            .arg(&token)
            .args(["--service-account", service_account]);
        let what = format!("meshd bootstrap (secure) --node-id {node_id}");
        print_bootstrap(cmd, extra, delta, &what)
    }
}

/// Runs a `meshd bootstrap` command with `extra` arguments (and `--delta`), and returns
/// what it printed; a failure names `what`.
fn print_bootstrap(mut cmd: Command, extra: &[&str], delta: bool, what: &str) -> String {
    cmd.args(extra);
    if delta {
        cmd.arg("--delta");
    }
    let out = run_timeout(cmd, Duration::from_secs(10));
    assert!(
        out.success(),
        "{what} failed ({:?}): {}",
        out.status,
        out.stderr
    );
    out.stdout
}
