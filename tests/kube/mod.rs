//! Shared helpers for the tests against a real kube-apiserver (scripts/kube-testenv.sh):
//! the API server itself (start, stop, restart, kubectl, etcd compaction), meshd against it
//! (`meshd`), a TCP proxy that drops connections (`proxy`) and an ADS client standing in for
//! a sidecar (`ads`).
//!
//! A test binary using this declares `mod common; mod kube;` (the meshd helpers build on
//! `common::Meshd`).
#![allow(dead_code)] // each test binary uses a different part

pub mod ads;
pub mod faults;
pub mod meshd;
pub mod objects;
pub mod proxy;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/kube-testenv.sh")
}

/// A running etcd + kube-apiserver in a directory of its own, stopped on drop (also when
/// the test fails).
pub struct ApiServer {
    pub dir: PathBuf,
    pub bin: PathBuf,
    /// The extra kube-apiserver flags it was started with (kept for restarts).
    apiserver_args: String,
    /// The network namespace it runs in (`ip netns exec`), if not the test's own.
    netns: Option<String>,
    /// Whether `start` installs testenv/crds (Istio's kinds).
    crds: bool,
}

impl ApiServer {
    pub fn start(dir: &Path) -> ApiServer {
        ApiServer::start_with(dir, "", None)
    }

    /// Starts without testenv/crds: no Istio kind is served until a test installs one.
    pub fn start_without_crds(dir: &Path) -> ApiServer {
        ApiServer::start_server(dir, "", None, false)
    }

    /// Starts with extra kube-apiserver flags (`KUBE_TESTENV_APISERVER_ARGS`), inside
    /// network namespace `netns` when given (kubectl then runs there too).
    pub fn start_with(dir: &Path, apiserver_args: &str, netns: Option<&str>) -> ApiServer {
        ApiServer::start_server(dir, apiserver_args, netns, true)
    }

    fn start_server(
        dir: &Path,
        apiserver_args: &str,
        netns: Option<&str>,
        crds: bool,
    ) -> ApiServer {
        let built = Command::new(script())
            .arg("build")
            .stderr(Stdio::inherit())
            .output()
            .expect("running kube-testenv.sh build");
        assert!(built.status.success(), "kube-testenv.sh build failed");
        let bin = PathBuf::from(String::from_utf8(built.stdout).unwrap().trim());
        // Constructed before `start` so a start that fails halfway is still stopped.
        let server = ApiServer {
            dir: dir.to_path_buf(),
            bin,
            apiserver_args: apiserver_args.to_string(),
            netns: netns.map(str::to_string),
            crds,
        };
        // The script picks free ports and releases them before the servers bind them, so
        // another process may take one first: a failed start is retried on new ports.
        for attempt in 1..=3 {
            match server.try_script("start") {
                Ok(()) => return server,
                Err(e) if attempt < 3 => eprintln!("kube-testenv.sh start failed; retrying: {e}"),
                Err(e) => panic!("kube-testenv.sh start failed 3 times: {e}"),
            }
        }
        unreachable!()
    }

    fn try_script(&self, verb: &str) -> Result<(), String> {
        let out = self
            .command(&script())
            .arg(verb)
            .arg(&self.dir)
            .env("KUBE_TESTENV_APISERVER_ARGS", &self.apiserver_args)
            .env("KUBE_TESTENV_NO_CRDS", if self.crds { "0" } else { "1" })
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .expect("running kube-testenv.sh");
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        eprint!("{stderr}");
        if out.status.success() {
            Ok(())
        } else {
            Err(stderr)
        }
    }

    /// A command running `program` where the server runs (its network namespace).
    fn command(&self, program: &Path) -> Command {
        match &self.netns {
            Some(ns) => {
                let mut cmd = Command::new("ip");
                cmd.args(["netns", "exec", ns]).arg(program);
                cmd
            }
            None => Command::new(program),
        }
    }

    /// Stops kube-apiserver and starts it again on the same port (etcd keeps running).
    pub fn restart_apiserver(&self) {
        if let Err(e) = self.try_script("restart-apiserver") {
            panic!("kube-testenv.sh restart-apiserver failed: {e}");
        }
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.join("kubeconfig")
    }

    fn port(&self, name: &str) -> u16 {
        let ports = std::fs::read_to_string(self.dir.join("ports")).expect("reading ports");
        ports
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}=")))
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {ports}"))
    }

    pub fn apiserver_port(&self) -> u16 {
        self.port("APISERVER_PORT")
    }

    /// Writes a copy of the kubeconfig at `path` with the server address's port replaced
    /// (a proxy in front of the server) and, when given, another bearer token.
    pub fn kubeconfig_with(&self, path: &Path, port: Option<u16>, token: Option<&str>) {
        let mut text = std::fs::read_to_string(self.kubeconfig()).expect("reading kubeconfig");
        if let Some(port) = port {
            text = text.replace(
                &format!("https://127.0.0.1:{}", self.apiserver_port()),
                &format!("https://127.0.0.1:{port}"),
            );
        }
        if let Some(token) = token {
            let own = std::fs::read_to_string(self.dir.join("token")).expect("reading token");
            text = text.replace(own.trim(), token);
        }
        std::fs::write(path, text).expect("writing kubeconfig");
    }

    /// Runs kubectl with `args` and `stdin`; its stdout, or its output as the error.
    pub fn try_kubectl(&self, args: &[&str], stdin: &str) -> Result<String, String> {
        let mut child = self
            .command(&self.bin.join("kubectl"))
            .arg("--kubeconfig")
            .arg(self.kubeconfig())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting kubectl");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let out = child.wait_with_output().expect("running kubectl");
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        if out.status.success() {
            Ok(stdout)
        } else {
            Err(format!(
                "kubectl {args:?} failed: {stdout}{}",
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    /// Runs kubectl; panics with its output when it fails.
    pub fn kubectl(&self, args: &[&str], stdin: &str) -> String {
        self.try_kubectl(args, stdin)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// A kube-rs client for the server, as meshd makes it from the kubeconfig.
    pub async fn client(&self) -> ::kube::Client {
        ::meshd::source::kube::client(Some(&self.kubeconfig()))
            .await
            .expect("client for the test API server")
    }

    pub fn apply(&self, yaml: &str) {
        self.kubectl(&["apply", "-f", "-"], yaml);
    }

    /// Applies a CRD unless the server has it already (the testenv may install Istio's
    /// own), and waits until the server serves it.
    pub fn apply_crd(&self, yaml: &str, name: &str) {
        if self.try_kubectl(&["get", "crd", name], "").is_err() {
            self.apply(yaml);
        }
        self.kubectl(
            &[
                "wait",
                "--for=condition=Established",
                "--timeout=60s",
                &format!("crd/{name}"),
            ],
            "",
        );
    }

    /// A POST to etcd's JSON gateway; the response body.
    fn etcd(&self, path: &str, body: &str) -> serde_json::Value {
        let out = self
            .command(Path::new("curl"))
            .args(["-sS", "--max-time", "10", "-X", "POST", "-d", body])
            .arg(format!("http://127.0.0.1:{}{path}", self.port("ETCD_PORT")))
            .output()
            .expect("running curl");
        assert!(out.status.success(), "etcd {path}: {out:?}");
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("etcd {path} answered {:?}: {e}", out.stdout))
    }

    /// Compacts etcd's history up to its current revision (physically, as the API server's
    /// own periodic compaction does), so that a watch resumed from any older resource
    /// version gets `410 Gone`; returns that revision.
    pub fn compact(&self) -> u64 {
        // A range over an empty key answers with the store's current revision.
        let header = self.etcd("/v3/kv/range", r#"{"key":"AA=="}"#);
        let revision: u64 = header["header"]["revision"]
            .as_str()
            .and_then(|r| r.parse().ok())
            .unwrap_or_else(|| panic!("no revision in {header}"));
        let done = self.etcd(
            "/v3/kv/compaction",
            &format!(r#"{{"revision":"{revision}","physical":true}}"#),
        );
        assert!(done.get("header").is_some(), "compaction: {done}");
        revision
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        let _ = Command::new(script()).arg("stop").arg(&self.dir).status();
    }
}
