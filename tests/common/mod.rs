//! Helpers shared by integration tests that run the real `meshd` binary.
#![allow(dead_code)]

pub mod envoy;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free TCP port on 127.0.0.1 (bound then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind 127.0.0.1:0")
        .local_addr()
        .expect("local addr")
        .port()
}

/// Copies a directory tree.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy file");
        }
    }
}

pub fn bookinfo_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/bookinfo")
}

/// A `meshd serve` process on loopback ports, killed on drop.
pub struct Meshd {
    pub child: Child,
    pub xds: SocketAddr,
    pub admin: SocketAddr,
}

impl Meshd {
    pub fn start(config_dir: &Path) -> Meshd {
        let meshd = Meshd::spawn(config_dir, &[], Stdio::inherit());
        meshd.wait_ready(Duration::from_secs(30));
        meshd
    }

    /// Starts `meshd serve` with `extra` flags and its stderr to `stderr`; does not wait.
    pub fn spawn(config_dir: &Path, extra: &[&str], stderr: impl Into<Stdio>) -> Meshd {
        let xds: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let admin: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        // Tests share the host's ports: the secure port is opened only when asked for.
        let secure_off: &[&str] = if extra.contains(&"--secure-xds-addr") {
            &[]
        } else {
            &["--secure-xds-addr", "off"]
        };
        let child = Command::new(env!("CARGO_BIN_EXE_meshd"))
            .args(["serve", "--config-dir"])
            .arg(config_dir)
            .args([
                "--xds-addr",
                &xds.to_string(),
                "--admin-addr",
                &admin.to_string(),
            ])
            .args(["--poll-interval-ms", "100", "--debounce-quiet-ms", "50"])
            .args(secure_off)
            .args(extra)
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("start meshd");
        Meshd { child, xds, admin }
    }

    /// Sends `signal` (`TERM`, `INT`) to the process.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args(["-s", signal, &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -s {signal} failed");
    }

    /// Waits for the process to exit on its own.
    pub fn wait_exit(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for meshd") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "meshd still running after {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn wait_ready(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok((200, _)) = http_get(self.admin, "/ready") {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "meshd not ready on {} within {timeout:?}",
                self.admin
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn get(&self, path: &str) -> (u16, String) {
        http_get(self.admin, path).unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }
}

impl Drop for Meshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until the file at `log` contains `needle`; returns the log.
pub fn wait_log(log: &Path, needle: &str, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if text.contains(needle) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "no {needle:?} in the log within {timeout:?}:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A minimal HTTP/1.0 GET: status code and body.
pub fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad response: {response:?}")))?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}
