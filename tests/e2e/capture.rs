//! Traffic capture as Istio's init container installs it (REDIRECT mode): outbound TCP to
//! 15001, inbound TCP to 15006, with Envoy's own traffic (uid/gid 1337) and the sidecar's
//! service ports exempt. Loaded with iptables-restore so the table is replaced atomically.

use std::io::Write;
use std::process::{Command, Stdio};

use super::netns::Netns;

pub const PROXY_UID: u32 = 1337;

/// Inbound ports that are never redirected: Envoy admin, the capture ports themselves,
/// health and Prometheus, and meshd's own ports.
const INBOUND_EXCLUDED: &[u16] = &[15000, 15001, 15006, 15010, 15014, 15020, 15021, 15090];

pub fn rules() -> String {
    let mut r = String::from(
        "*nat\n\
         :PREROUTING ACCEPT [0:0]\n\
         :INPUT ACCEPT [0:0]\n\
         :OUTPUT ACCEPT [0:0]\n\
         :POSTROUTING ACCEPT [0:0]\n\
         :ISTIO_INBOUND - [0:0]\n\
         :ISTIO_IN_REDIRECT - [0:0]\n\
         :ISTIO_OUTPUT - [0:0]\n\
         :ISTIO_REDIRECT - [0:0]\n\
         -A PREROUTING -p tcp -j ISTIO_INBOUND\n\
         -A OUTPUT -p tcp -j ISTIO_OUTPUT\n",
    );
    for port in INBOUND_EXCLUDED {
        r.push_str(&format!(
            "-A ISTIO_INBOUND -p tcp --dport {port} -j RETURN\n"
        ));
    }
    let uid = PROXY_UID;
    r.push_str(&format!(
        "-A ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT\n\
         -A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006\n\
         -A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001\n\
         -A ISTIO_OUTPUT -o lo -s 127.0.0.6/32 -j RETURN\n\
         -A ISTIO_OUTPUT -o lo ! -d 127.0.0.1/32 -m owner --uid-owner {uid} -j ISTIO_IN_REDIRECT\n\
         -A ISTIO_OUTPUT -o lo -m owner ! --uid-owner {uid} -j RETURN\n\
         -A ISTIO_OUTPUT -m owner --uid-owner {uid} -j RETURN\n\
         -A ISTIO_OUTPUT -o lo ! -d 127.0.0.1/32 -m owner --gid-owner {uid} -j ISTIO_IN_REDIRECT\n\
         -A ISTIO_OUTPUT -o lo -m owner ! --gid-owner {uid} -j RETURN\n\
         -A ISTIO_OUTPUT -m owner --gid-owner {uid} -j RETURN\n\
         -A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN\n\
         -A ISTIO_OUTPUT -j ISTIO_REDIRECT\n\
         COMMIT\n"
    ));
    r
}

/// Installs the capture rules in `ns`.
pub fn install(ns: &Netns) {
    let mut child = Command::new("ip")
        .args(["netns", "exec", &ns.name, "iptables-restore"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting iptables-restore");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(rules().as_bytes())
        .expect("writing rules to iptables-restore");
    let out = child
        .wait_with_output()
        .expect("waiting for iptables-restore");
    assert!(
        out.status.success(),
        "iptables-restore in {} failed: {}",
        ns.name,
        String::from_utf8_lossy(&out.stderr)
    );
}
