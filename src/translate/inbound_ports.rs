//! Which ports a proxy's workload serves: the target ports of every service that selects
//! it, resolved (named target ports through the workload's container ports), each with
//! the protocol its services declare. This is the key under which inbound resources are
//! shared between proxies.
//!
//! A proxy whose pod is not (yet) in the model is matched by the labels in its node
//! metadata instead, as Istio does; named target ports cannot be resolved then.

use std::collections::BTreeMap;

use super::naming;
use crate::mesh::{MeshModel, ObjectKey, Protocol, ProxyId, TargetPort, Workload};

/// Target port -> protocol, sorted by port.
pub type InboundPorts = BTreeMap<u16, Protocol>;

/// The inbound ports of `workload`. When services disagree on a port's protocol, the port
/// is HTTP only if every one of them says HTTP, detected when each says HTTP or nothing,
/// else plain TCP (which carries anything, and never waits for the client to speak).
pub fn inbound_ports(model: &MeshModel, workload: &Workload) -> InboundPorts {
    let mut ports = InboundPorts::new();
    for service in model.services_selecting(workload) {
        for port in &service.ports {
            let target = match &port.target_port {
                TargetPort::Number(n) => *n,
                TargetPort::Name(name) => match workload.named_ports.get(name) {
                    Some(n) => *n,
                    None => continue,
                },
            };
            // The sidecar's own ports: 15006 has its blackhole chain (a second chain on it
            // would make Envoy reject the listener) and the others are Envoy's or the
            // agent's, not the application's.
            if target == 0 || naming::is_proxy_port(target) {
                continue;
            }
            ports
                .entry(target)
                .and_modify(|existing| *existing = merged(*existing, port.protocol))
                .or_insert(port.protocol);
        }
    }
    ports
}

/// One protocol for a target port two services declare (see `inbound_ports`).
fn merged(a: Protocol, b: Protocol) -> Protocol {
    let http_or_sniffed = |p: Protocol| p.is_http() || p.is_sniffed();
    if a == b || (a.is_http() && b.is_http()) {
        a
    } else if http_or_sniffed(a) && http_or_sniffed(b) {
        Protocol::Unsupported
    } else {
        Protocol::Tcp
    }
}

/// A stand-in workload from the proxy's node metadata (`LABELS`), when it has labels.
pub fn workload_from_metadata(proxy: &ProxyId) -> Option<Workload> {
    let labels: std::collections::BTreeMap<String, String> = proxy
        .metadata
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix("LABELS.")?.to_string(), v.clone())))
        .collect();
    if labels.is_empty() {
        return None;
    }
    Some(Workload {
        key: ObjectKey {
            namespace: proxy.namespace.clone(),
            name: proxy.pod_name.clone(),
        },
        ip: Some(proxy.ip.clone()),
        labels,
        service_account: proxy
            .metadata
            .get("SERVICE_ACCOUNT")
            .cloned()
            .unwrap_or_else(|| crate::mesh::DEFAULT_SERVICE_ACCOUNT.to_string()),
        ready: true,
        named_ports: Default::default(),
        mtls_ready: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disagreeing_services_merge_to_what_carries_both() {
        use Protocol::*;
        for (a, b, want) in [
            (Http, Grpc, Http),
            (Http, Unsupported, Unsupported),
            (Unsupported, Grpc, Unsupported),
            (Unsupported, Unsupported, Unsupported),
            (Unsupported, Tcp, Tcp),
            (Http, Tcp, Tcp),
            (Mysql, Tcp, Tcp),
        ] {
            assert_eq!(merged(a, b), want, "{a:?} + {b:?}");
            assert_eq!(merged(b, a).is_http(), want.is_http(), "{b:?} + {a:?}");
        }
    }
}
