//! A scriptable upstream for traffic-rule tests, and a curl client that reports what the
//! client saw. The upstream (a small Python HTTP/1.1 server, run as the app user) answers
//! every request with JSON naming its pod, the method, path and request headers it got,
//! and how many requests with the same `key` query parameter it has seen; `fail=N` makes it
//! answer 503 to the first N requests of a key, `sleep_ms=M` makes it wait before
//! answering. Each request is also logged as a `request pod=... path=... host=...` line.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::netns::{set_mode, Lab, Netns};
use super::process::{run_timeout, Proc};
use super::traffic::app_command;

const SERVER: &str = r#"
import json, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

NAME, PORT = sys.argv[1], int(sys.argv[2])
seen_by_key = {}
lock = threading.Lock()

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def answer(self):
        length = int(self.headers.get("content-length") or 0)
        if length:
            self.rfile.read(length)
        query = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
        key = query.get("key", "")
        with lock:
            seen_by_key[key] = seen_by_key.get(key, 0) + 1
            seen = seen_by_key[key]
        print("request pod=%s method=%s path=%s host=%s seen=%d"
              % (NAME, self.command, self.path, self.headers.get("host"), seen), flush=True)
        if "sleep_ms" in query:
            time.sleep(int(query["sleep_ms"]) / 1000.0)
        status = 503 if seen <= int(query.get("fail", "0")) else 200
        headers = {}
        for k, v in self.headers.items():
            k = k.lower()
            headers[k] = headers[k] + "," + v if k in headers else v
        body = (json.dumps({
            "pod": NAME,
            "method": self.command,
            "path": self.path,
            "seen": seen,
            "headers": headers,
        }) + "\n").encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = answer

    def log_message(self, *args):
        pass

server = ThreadingHTTPServer(("0.0.0.0", PORT), Handler)
server.daemon_threads = True
print("listening", flush=True)
server.serve_forever()
"#;

fn script(lab: &Lab) -> PathBuf {
    let path = lab.path("upstream.py");
    if !path.exists() {
        std::fs::write(&path, SERVER).expect("writing the upstream script");
        set_mode(&path, 0o644);
    }
    path
}

/// A Python 3 the app user may run: a system one, not a per-user install (pyenv shims under
/// /root are unreadable to other users).
fn python() -> &'static str {
    ["/usr/bin/python3", "/usr/local/bin/python3", "/bin/python3"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("the upstream needs a system python3 (/usr/bin/python3) the app user can run")
}

/// Starts the upstream in `ns` on `port`, answering as `name`.
pub fn start(lab: &Lab, ns: &Netns, name: &str, port: u16) -> Proc {
    let script = script(lab);
    let mut cmd = app_command(ns);
    cmd.args([python(), "-u"])
        .arg(&script)
        .args([name, &port.to_string()]);
    Proc::spawn_listening(
        &format!("upstream {name}"),
        cmd,
        &lab.path(&format!("{name}.upstream.log")),
    )
}

/// The `request ...` lines an upstream has logged so far.
pub fn requests_seen(proc: &Proc) -> Vec<String> {
    std::fs::read_to_string(&proc.log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("request "))
        .map(str::to_string)
        .collect()
}

/// What the client got for one request.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    /// Response headers, lowercase names (the last value of a repeated one).
    pub headers: BTreeMap<String, String>,
    pub body: String,
    /// Wall time of the whole exchange as the client measured it.
    pub elapsed: Duration,
}

impl Response {
    /// The upstream's JSON answer.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not the upstream's JSON ({e}): {self:?}"))
    }

    /// The pod that answered, when the upstream did.
    pub fn pod(&self) -> Option<String> {
        serde_json::from_str::<serde_json::Value>(&self.body)
            .ok()?
            .get("pod")?
            .as_str()
            .map(str::to_string)
    }
}

/// One request with curl from `ns` as the app user (so the sidecar captures it), with
/// extra request headers; redirects are not followed.
pub fn request(ns: &Netns, url: &str, headers: &[(&str, &str)]) -> Response {
    let mut cmd = app_command(ns);
    cmd.arg("curl")
        .args(["-sS", "--max-time", "20", "-D", "-", "-o", "-"]);
    for (k, v) in headers {
        cmd.args(["-H", &format!("{k}: {v}")]);
    }
    cmd.arg(url);
    let start = Instant::now();
    let out = run_timeout(cmd, Duration::from_secs(30));
    let elapsed = start.elapsed();
    assert!(
        out.success(),
        "curl {url} failed ({:?}): {}",
        out.status,
        out.stderr
    );
    parse_response(&out.stdout, elapsed)
}

/// Splits curl's `-D - -o -` output: status line, headers, blank line, body.
fn parse_response(text: &str, elapsed: Duration) -> Response {
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in curl output: {text:?}"));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {head:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Response {
        status,
        headers,
        body: body.to_string(),
        elapsed,
    }
}

/// A running, ready Pod with the given labels (which must include `app`).
pub fn pod_yaml(
    name: &str,
    namespace: &str,
    ip: &str,
    labels: &[(&str, &str)],
    port: u16,
) -> String {
    let labels: String = labels
        .iter()
        .map(|(k, v)| format!("    {k}: {v}\n"))
        .collect();
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: {namespace}\n  \
         labels:\n{labels}spec:\n  containers:\n  - name: app\n    image: upstream\n    ports:\n    \
         - name: http\n      containerPort: {port}\n      protocol: TCP\nstatus:\n  phase: Running\n  \
         podIP: {ip}\n  podIPs:\n  - ip: {ip}\n  conditions:\n  - type: Ready\n    status: \"True\"\n"
    )
}
