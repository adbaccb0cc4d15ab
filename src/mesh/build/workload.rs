//! Workloads from pods: identity, address, readiness and named ports.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::names::{is_tcp, object_key, port};
use super::{invalid, Invalid};
use crate::mesh::model::{Workload, DEFAULT_SERVICE_ACCOUNT};
use crate::source::objects::Pod;

/// Istio's sidecar-injection label saying the pod's proxy accepts mesh mTLS.
pub const TLS_MODE_LABEL: &str = "security.istio.io/tlsMode";

pub fn check(pod: &Pod) -> Result<Workload, Invalid> {
    let key = object_key(&pod.metadata, false)?;
    let parse_ip = |ip: &str, field: &str| {
        ip.parse::<IpAddr>()
            .map(|ip| ip.to_string())
            .map_err(|_| invalid(field, format!("{ip:?} is not an IP address")))
    };
    let mut ip = None;
    if let Some(pod_ip) = pod.status.pod_ip.as_deref().filter(|s| !s.is_empty()) {
        ip = Some(parse_ip(pod_ip, "status.podIP")?);
    }
    for (i, entry) in pod.status.pod_ips.iter().enumerate() {
        if let Some(other) = entry.ip.as_deref() {
            let other = parse_ip(other, &format!("status.podIPs[{i}].ip"))?;
            ip.get_or_insert(other);
        }
    }
    let mut named_ports = BTreeMap::new();
    for (c, container) in pod.spec.containers.iter().enumerate() {
        for (i, p) in container.ports.iter().enumerate() {
            let field = |f: &str| format!("spec.containers[{c}].ports[{i}].{f}");
            let number = port(p.container_port, &field("containerPort"))?;
            let tcp = is_tcp(p.protocol.as_deref(), &field("protocol"))?;
            if let (true, Some(name)) = (tcp, p.name.as_deref().filter(|n| !n.is_empty())) {
                // Names are unique within a pod; should they repeat, the first one counts.
                named_ports.entry(name.to_string()).or_insert(number);
            }
        }
    }
    let terminal = matches!(pod.status.phase.as_deref(), Some("Succeeded" | "Failed"));
    Ok(Workload {
        key,
        ip,
        labels: pod.metadata.labels.clone(),
        service_account: pod
            .spec
            .service_account_name
            .clone()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| DEFAULT_SERVICE_ACCOUNT.to_string()),
        ready: pod.is_ready() && !terminal,
        named_ports,
        mtls_ready: pod.metadata.labels.get(TLS_MODE_LABEL).map(String::as_str) == Some("istio"),
    })
}
