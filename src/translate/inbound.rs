//! Which ports a proxy's workload serves: the target ports of every service that selects
//! it, resolved (named target ports through the workload's container ports), each with
//! the protocol its services declare. This is the key under which inbound resources are
//! shared between proxies.

use std::collections::BTreeMap;

use super::naming;
use crate::mesh::{MeshModel, Protocol, TargetPort, Workload};

/// Target port -> protocol, sorted by port.
pub type InboundPorts = BTreeMap<u16, Protocol>;

/// The inbound ports of `workload`. When services disagree on a port's protocol, the port
/// is HTTP only if every one of them says HTTP (else plain TCP, which carries anything).
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
            // The capture ports have their own blackhole chains; a second chain matching
            // the same port would make Envoy reject the listener.
            if target == 0
                || target == naming::INBOUND_CAPTURE_PORT
                || target == naming::OUTBOUND_CAPTURE_PORT
            {
                continue;
            }
            ports
                .entry(target)
                .and_modify(|existing| {
                    if !(existing.is_http() && port.protocol.is_http()) {
                        *existing = Protocol::Tcp;
                    }
                })
                .or_insert(port.protocol);
        }
    }
    ports
}
