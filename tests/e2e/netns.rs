//! Network namespaces standing in for pods, all on one bridge that itself lives in a
//! dedicated namespace: no interface, route or address of the test ever touches the root
//! namespace, so no test packet can reach a real network. Names carry the test process id;
//! namespaces left behind by crashed runs are removed before new ones are made.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use super::process::must;

/// Prefix of every namespace and temp directory the e2e tests create.
pub const PREFIX: &str = "mde2e";
/// Pods and meshd sit in this /24 on the bridge.
pub const POD_NET: &str = "10.244.0";
/// Service ClusterIPs; routed to eth0 in every pod so the capture rules see them.
pub const SERVICE_CIDR: &str = "10.96.0.0/16";

/// A named network namespace, deleted (with every process still inside) on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn create(name: &str) -> Netns {
        must("ip", &["netns", "add", name]);
        let ns = Netns {
            name: name.to_string(),
        };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// `ip -n NAME ARGS...`
    pub fn ip(&self, args: &[&str]) -> String {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        must("ip", &all)
    }

    /// A command that runs `program` inside this namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name, program]);
        cmd
    }

    /// Runs a setup command inside the namespace; it must succeed.
    pub fn exec(&self, program: &str, args: &[&str]) -> String {
        let mut all = vec!["netns", "exec", self.name.as_str(), program];
        all.extend_from_slice(args);
        must("ip", &all)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        remove_netns(&self.name);
    }
}

fn remove_netns(name: &str) {
    let pids = Command::new("ip")
        .args(["netns", "pids", name])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
        .unwrap_or_default();
    for pid in pids.split_whitespace() {
        let _ = Command::new("kill").args(["-9", pid]).status();
    }
    let _ = Command::new("ip").args(["netns", "del", name]).status();
}

/// Removes namespaces and directories of earlier runs whose process is gone.
pub fn cleanup_stale() {
    let list = must("ip", &["netns", "list"]);
    for line in list.lines() {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        if owner_gone(name) {
            remove_netns(name);
        }
    }
    if let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            if owner_gone(&name) {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
}

/// `mde2e-<pid>-...` whose pid is no longer running.
fn owner_gone(name: &str) -> bool {
    let Some(rest) = name.strip_prefix(&format!("{PREFIX}-")) else {
        return false;
    };
    let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
        return false;
    };
    pid != std::process::id() && !std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// One isolated "cluster network": a bridge namespace, a work directory, and the
/// namespaces attached to the bridge.
pub struct Lab {
    pub id: String,
    pub dir: PathBuf,
    bridge: Netns,
    next_host: u8,
}

impl Lab {
    pub fn new() -> Lab {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        cleanup_stale();
        let id = format!(
            "{PREFIX}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        let dir = std::env::temp_dir().join(&id);
        std::fs::create_dir_all(&dir).expect("creating the lab directory");
        // Envoy runs as uid 1337 and the apps as another uid: they must read in here.
        set_mode(&dir, 0o755);
        let bridge = Netns::create(&format!("{id}-net"));
        bridge.ip(&["link", "add", "br0", "type", "bridge"]);
        bridge.ip(&["link", "set", "br0", "up"]);
        Lab {
            id,
            dir,
            bridge,
            next_host: 2,
        }
    }

    /// A new namespace on the bridge with the next free address; returns it and the IP.
    pub fn attach(&mut self, short: &str) -> (Netns, String) {
        let host = self.next_host;
        assert!(host < 250, "too many hosts in one lab");
        self.next_host += 1;
        let ip = format!("{POD_NET}.{host}");
        let ns = Netns::create(&format!("{}-{short}", self.id));
        let veth = format!("v{host}");
        self.bridge.ip(&[
            "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &ns.name,
        ]);
        self.bridge
            .ip(&["link", "set", &veth, "master", "br0", "up"]);
        ns.ip(&["addr", "add", &format!("{ip}/24"), "dev", "eth0"]);
        ns.ip(&["link", "set", "eth0", "up"]);
        // No default route anywhere: only the pod network and the service range exist.
        ns.ip(&["route", "add", SERVICE_CIDR, "dev", "eth0"]);
        (ns, ip)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if std::env::var_os("MESHD_E2E_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
        let _ = &self.bridge;
    }
}

pub fn set_mode(path: &std::path::Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}
