//! A pod: its namespace on the bridge with Istio-style capture, its echo app and its
//! Envoy sidecar. Processes are declared before the namespace so they stop first on drop.

use std::path::PathBuf;

use super::capture;
use super::envoy;
use super::netns::{set_mode, Lab, Netns};
use super::process::Proc;
use super::traffic;

pub struct Pod {
    pub app: Option<Proc>,
    pub envoy: Option<Proc>,
    pub name: String,
    pub namespace: String,
    pub ip: String,
    pub ns: Netns,
}

impl Pod {
    /// A pod namespace with capture rules, nothing running yet.
    pub fn new(lab: &mut Lab, name: &str, namespace: &str) -> Pod {
        let (ns, ip) = lab.attach(name);
        capture::install(&ns);
        Pod {
            app: None,
            envoy: None,
            name: name.to_string(),
            namespace: namespace.to_string(),
            ip,
            ns,
        }
    }

    /// Istio's sidecar node id for this pod.
    pub fn node_id(&self) -> String {
        format!(
            "sidecar~{}~{}.{}~{}.svc.cluster.local",
            self.ip, self.name, self.namespace, self.namespace
        )
    }

    pub fn start_app(&mut self, lab: &Lab, http: &[u16], tcp: &[u16]) {
        self.app = Some(traffic::start_server(lab, &self.ns, &self.name, http, tcp));
    }

    pub fn stop_app(&mut self) {
        if let Some(mut p) = self.app.take() {
            p.kill();
        }
    }

    /// Writes `bootstrap` and starts Envoy from it; waits for it to be ready with the
    /// capture listeners.
    pub fn start_envoy(&mut self, lab: &Lab, bootstrap: &str) {
        let path: PathBuf = lab.path(&format!("{}.envoy.yaml", self.name));
        std::fs::write(&path, bootstrap).expect("writing the envoy bootstrap");
        // Readable by uid 1337 whatever the umask.
        set_mode(&path, 0o644);
        let mut proc = envoy::start(
            &self.ns,
            &self.name,
            &path,
            &lab.path(&format!("{}.envoy.log", self.name)),
        );
        envoy::wait_ready(&self.ns, &mut proc, &["virtualOutbound", "virtualInbound"]);
        self.envoy = Some(proc);
    }

    /// Log tails of this pod's processes, for failure messages.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for p in self.app.iter().chain(self.envoy.iter()) {
            out.push_str(&format!(
                "--- {} ({})\n{}\n",
                p.name,
                p.log.display(),
                p.log_tail(30)
            ));
        }
        out
    }
}
