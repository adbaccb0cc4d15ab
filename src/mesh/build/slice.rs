//! EndpointSlices, checked and reduced to what endpoint building needs.

use std::net::IpAddr;

use tracing::debug;

use super::names::{is_dns_label, is_tcp, object_key, port};
use super::{invalid, Invalid};
use crate::mesh::model::ObjectKey;
use crate::source::objects::{EndpointSlice, SERVICE_NAME_LABEL};

/// A valid slice: the service it belongs to, its TCP ports and its endpoints.
#[derive(Debug, Clone, PartialEq)]
pub struct Slice {
    pub service: ObjectKey,
    /// `(name, port)`; the name is empty for an unnamed port.
    pub ports: Vec<(String, u16)>,
    pub endpoints: Vec<SliceEndpoint>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SliceEndpoint {
    pub address: String,
    pub ready: bool,
    /// The pod named by `targetRef`, if it names one.
    pub pod: Option<ObjectKey>,
    pub zone: Option<String>,
}

/// A checked slice, or `None` for slices meshd does not use (FQDN addresses).
pub fn check(es: &EndpointSlice) -> Result<Option<Slice>, Invalid> {
    let key = object_key(&es.metadata, false)?;
    let label_field = format!("metadata.labels[{SERVICE_NAME_LABEL}]");
    let service = match es.metadata.labels.get(SERVICE_NAME_LABEL) {
        None => {
            return Err(invalid(
                label_field,
                "missing; an EndpointSlice names its Service with this label",
            ))
        }
        Some(name) if !is_dns_label(name) => {
            return Err(invalid(
                label_field,
                format!("{name:?} is not a service name"),
            ))
        }
        Some(name) => ObjectKey {
            namespace: key.namespace.clone(),
            name: name.clone(),
        },
    };
    let want_v6 = match es.address_type.as_deref() {
        Some("IPv4") => false,
        Some("IPv6") => true,
        Some("FQDN") => {
            debug!(slice = %key, "skipping an FQDN EndpointSlice");
            return Ok(None);
        }
        Some(other) => {
            return Err(invalid(
                "addressType",
                format!("unknown address type {other:?} (expected IPv4, IPv6 or FQDN)"),
            ))
        }
        None => return Err(invalid("addressType", "missing addressType")),
    };
    let mut ports = Vec::new();
    for (i, p) in es.ports.iter().enumerate() {
        // A port without a number means "all ports", which a proxy cannot use.
        if p.port.is_none() {
            continue;
        }
        let number = port(p.port, &format!("ports[{i}].port"))?;
        if is_tcp(p.protocol.as_deref(), &format!("ports[{i}].protocol"))? {
            ports.push((p.name.clone().unwrap_or_default(), number));
        }
    }
    let mut endpoints = Vec::new();
    for (i, ep) in es.endpoints.iter().enumerate() {
        for (j, address) in ep.addresses.iter().enumerate() {
            let ip = address
                .parse::<IpAddr>()
                .ok()
                .filter(|ip| ip.is_ipv6() == want_v6)
                .ok_or_else(|| {
                    invalid(
                        format!("endpoints[{i}].addresses[{j}]"),
                        format!(
                            "{address:?} is not an {} address",
                            if want_v6 { "IPv6" } else { "IPv4" }
                        ),
                    )
                })?;
            let pod = ep.target_ref.as_ref().and_then(|r| {
                let is_pod = r.kind.as_deref().is_none_or(|k| k == "Pod");
                let name = r.name.as_deref().filter(|n| !n.is_empty())?;
                is_pod.then(|| ObjectKey {
                    namespace: r.namespace.clone().unwrap_or_else(|| key.namespace.clone()),
                    name: name.to_string(),
                })
            });
            endpoints.push(SliceEndpoint {
                address: ip.to_string(),
                // Kubernetes: an absent condition is to be read as true.
                ready: ep.conditions.ready.unwrap_or(true),
                pod,
                zone: ep.zone.clone(),
            });
        }
    }
    Ok(Some(Slice {
        service,
        ports,
        endpoints,
    }))
}
