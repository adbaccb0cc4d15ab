//! ServiceEntry and WorkloadEntry checks, as Istio's validation does them, and conversion
//! into the model's `traffic` types.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::hosts::{check_host, resolve};
use super::invalid;
use super::istio_fields::{check_cidr, export_to, port, Checked};
use super::names::object_key;
use crate::mesh::protocol::Protocol;
use crate::mesh::traffic::{IstioPort, Location, Resolution, ServiceEntry, WorkloadEntry};
use crate::source::objects::networking as wire;

pub fn check(se: &wire::IstioObject<wire::ServiceEntrySpec>) -> Checked<ServiceEntry> {
    let key = object_key(&se.metadata, false)?;
    let ns = key.namespace.as_str();
    let spec = &se.spec;
    if spec.hosts.is_empty() {
        return Err(invalid("spec.hosts", "at least one host is required"));
    }
    let resolution = match spec.resolution.as_deref() {
        None | Some("NONE") => Resolution::None,
        Some("STATIC") => Resolution::Static,
        Some("DNS") => Resolution::Dns,
        Some("DNS_ROUND_ROBIN") => Resolution::DnsRoundRobin,
        Some(other) => {
            return Err(invalid(
                "spec.resolution",
                format!("{other:?} is not one of NONE, STATIC, DNS, DNS_ROUND_ROBIN"),
            ))
        }
    };
    let location = match spec.location.as_deref() {
        None | Some("MESH_EXTERNAL") => Location::MeshExternal,
        Some("MESH_INTERNAL") => Location::MeshInternal,
        Some(other) => {
            return Err(invalid(
                "spec.location",
                format!("{other:?} is not MESH_EXTERNAL or MESH_INTERNAL"),
            ))
        }
    };
    let mut hosts = Vec::with_capacity(spec.hosts.len());
    for (i, host) in spec.hosts.iter().enumerate() {
        let field = format!("spec.hosts[{i}]");
        check_host(host).map_err(|e| invalid(&field, e))?;
        if host == "*" {
            return Err(invalid(field, "the wildcard host \"*\" is not allowed"));
        }
        let dns_without_endpoints =
            matches!(resolution, Resolution::Dns | Resolution::DnsRoundRobin)
                && spec.endpoints.is_empty();
        if host.starts_with('*') && dns_without_endpoints {
            return Err(invalid(
                field,
                "a wildcard host cannot be resolved by DNS: give endpoints or use resolution NONE",
            ));
        }
        hosts.push(resolve(host, ns));
    }
    for (i, a) in spec.addresses.iter().enumerate() {
        check_cidr(a).map_err(|e| invalid(format!("spec.addresses[{i}]"), e))?;
    }
    if spec.ports.is_empty() {
        return Err(invalid("spec.ports", "at least one port is required"));
    }
    let ports = istio_ports(&spec.ports, "spec.ports")?;
    if spec.workload_selector.is_some() && !spec.endpoints.is_empty() {
        return Err(invalid(
            "spec.workloadSelector",
            "workloadSelector and endpoints may not both be set",
        ));
    }
    if resolution == Resolution::Static
        && spec.endpoints.is_empty()
        && spec.workload_selector.is_none()
    {
        return Err(invalid(
            "spec.endpoints",
            "resolution STATIC needs endpoints or a workloadSelector",
        ));
    }
    if resolution == Resolution::DnsRoundRobin && spec.endpoints.len() > 1 {
        return Err(invalid(
            "spec.endpoints",
            "resolution DNS_ROUND_ROBIN cannot have more than one endpoint",
        ));
    }
    let mut endpoints = Vec::with_capacity(spec.endpoints.len());
    for (i, e) in spec.endpoints.iter().enumerate() {
        let field = format!("spec.endpoints[{i}]");
        let entry = workload_entry(e, &field)?;
        let address = entry.address.as_deref().unwrap_or_default();
        if resolution == Resolution::Static
            && !address.starts_with("unix://")
            && address.parse::<IpAddr>().is_err()
        {
            return Err(invalid(
                format!("{field}.address"),
                format!("{address:?} is not an IP, as resolution STATIC needs"),
            ));
        }
        for name in entry.ports.keys() {
            if !ports.iter().any(|p| &p.name == name) {
                return Err(invalid(
                    format!("{field}.ports.{name}"),
                    format!("the entry has no port named {name:?}"),
                ));
            }
        }
        endpoints.push(entry);
    }
    Ok(ServiceEntry {
        hosts,
        addresses: spec.addresses.clone(),
        ports,
        location,
        resolution,
        endpoints,
        workload_selector: spec.workload_selector.as_ref().map(|w| w.labels.clone()),
        export_to: export_to(&spec.export_to, ns, "spec.exportTo")?,
        subject_alt_names: spec.subject_alt_names.clone(),
        key,
    })
}

/// Ports with unique numbers and names; the protocol from `protocol`, else the name.
pub fn istio_ports(list: &[wire::Port], field: &str) -> Checked<Vec<IstioPort>> {
    let mut out: Vec<IstioPort> = Vec::with_capacity(list.len());
    for (i, p) in list.iter().enumerate() {
        let f = format!("{field}[{i}]");
        let number = port(p.number, &format!("{f}.number"))?
            .ok_or_else(|| invalid(format!("{f}.number"), "port number is required"))?;
        let name = p.name.clone().unwrap_or_default();
        if let Some(protocol) = &p.protocol {
            if Protocol::parse(protocol).is_none() {
                return Err(invalid(
                    format!("{f}.protocol"),
                    format!("{protocol:?} is not a protocol Istio knows (HTTP, HTTPS, GRPC, HTTP2, TCP, TLS, MONGO, REDIS, MYSQL)"),
                ));
            }
        }
        if out.iter().any(|o| o.number == number) {
            return Err(invalid(
                format!("{f}.number"),
                format!("port {number} is listed twice"),
            ));
        }
        if !name.is_empty() && out.iter().any(|o| o.name == name) {
            return Err(invalid(
                format!("{f}.name"),
                format!("port name {name:?} is used twice"),
            ));
        }
        out.push(IstioPort {
            number,
            protocol: Protocol::for_port(p.protocol.as_deref(), &name),
            name,
            target_port: port(p.target_port, &format!("{f}.targetPort"))?,
        });
    }
    Ok(out)
}

/// A WorkloadEntry spec, alone or inside a ServiceEntry.
pub fn workload_entry(e: &wire::WorkloadEntrySpec, field: &str) -> Checked<WorkloadEntry> {
    let address = e.address.clone().filter(|a| !a.is_empty());
    if let Some(a) = &address {
        if !a.starts_with("unix://") && a.parse::<IpAddr>().is_err() {
            check_host(a).map_err(|err| invalid(format!("{field}.address"), err))?;
        }
    }
    let mut ports = BTreeMap::new();
    for (name, number) in &e.ports {
        let p = port(Some(*number), &format!("{field}.ports.{name}"))?
            .ok_or_else(|| invalid(format!("{field}.ports.{name}"), "port 0 is not a port"))?;
        ports.insert(name.clone(), p);
    }
    let weight = match e.weight {
        None => None,
        Some(w @ 0..=4_294_967_295) => Some(w as u32),
        Some(w) => {
            return Err(invalid(
                format!("{field}.weight"),
                format!("weight {w} is out of range"),
            ))
        }
    };
    Ok(WorkloadEntry {
        address,
        ports,
        labels: e.labels.clone(),
        network: e.network.clone(),
        locality: e.locality.clone(),
        weight,
        service_account: e.service_account.clone(),
    })
}

#[cfg(test)]
#[path = "service_entry_tests.rs"]
mod tests;
