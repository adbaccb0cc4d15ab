//! Services: hostname, ClusterIP, ports with their protocols.

use std::collections::BTreeMap;
use std::net::IpAddr;

use tracing::debug;

use super::hosts::check_host;
use super::names::{is_tcp, object_key, port};
use super::{invalid, Invalid};
use crate::mesh::model::{
    MeshModel, ObjectKey, Service, ServicePort, TargetPort, DEFAULT_DOMAIN_SUFFIX,
};
use crate::mesh::origin::ServiceOrigin;
use crate::mesh::protocol::Protocol;
use crate::problem::{Origin, Problem};
use crate::source::objects::{self, IntOrString};
use crate::source::{KubeObject, SourceObject};

/// A checked service, or `None` for an ExternalName service without ports (nothing to
/// route to). An ExternalName service is a DNS service for `spec.externalName`, as istiod
/// made it before its alias mode (see README, "Differences from istiod").
pub fn check(svc: &objects::Service) -> Result<Option<Service>, Invalid> {
    let key = object_key(&svc.metadata, true)?;
    if svc.spec.service_type.as_deref() == Some("ExternalName") {
        return external_name(svc, key);
    }
    let cluster_ip = cluster_ip(&svc.spec)?;
    let headless = svc.spec.cluster_ip.as_deref() == Some("None");
    if svc.spec.ports.is_empty() && !headless {
        return Err(invalid("spec.ports", "a service needs at least one port"));
    }
    let ports = ports(&svc.spec.ports)?;
    Ok(Some(Service {
        hostname: format!("{}.{}.svc.{DEFAULT_DOMAIN_SUFFIX}", key.name, key.namespace),
        key,
        cluster_ip,
        ports,
        selector: svc.spec.selector.clone(),
        labels: svc.metadata.labels.clone(),
        origin: ServiceOrigin::Kubernetes,
    }))
}

/// An ExternalName service: no ClusterIP and no selector; its endpoints are the external
/// name on each port (`mesh::build::entry_services`).
fn external_name(svc: &objects::Service, key: ObjectKey) -> Result<Option<Service>, Invalid> {
    let target = svc.spec.external_name.as_deref().unwrap_or_default();
    if target.is_empty() {
        return Err(invalid(
            "spec.externalName",
            "a service of type ExternalName needs an external name",
        ));
    }
    check_host(target).map_err(|e| invalid("spec.externalName", e))?;
    if target.starts_with('*') || target.parse::<IpAddr>().is_ok() {
        return Err(invalid(
            "spec.externalName",
            format!("{target:?} is not a DNS name"),
        ));
    }
    if svc.spec.ports.is_empty() {
        debug!(service = %key, "ExternalName service without ports: nothing to route");
        return Ok(None);
    }
    Ok(Some(Service {
        hostname: format!("{}.{}.svc.{DEFAULT_DOMAIN_SUFFIX}", key.name, key.namespace),
        key,
        cluster_ip: None,
        ports: ports(&svc.spec.ports)?,
        selector: None,
        labels: svc.metadata.labels.clone(),
        origin: ServiceOrigin::ExternalName(target.trim_end_matches('.').to_ascii_lowercase()),
    }))
}

/// `spec.clusterIP` (else the first of `spec.clusterIPs`); `None` when headless or unset.
fn cluster_ip(spec: &objects::ServiceSpec) -> Result<Option<String>, Invalid> {
    let check = |ip: &str, field: String| -> Result<Option<String>, Invalid> {
        match ip {
            "" | "None" => Ok(None),
            ip => ip
                .parse::<IpAddr>()
                .map(|ip| Some(ip.to_string()))
                .map_err(|_| invalid(field, format!("{ip:?} is not an IP address"))),
        }
    };
    let mut first = None;
    for (i, ip) in spec.cluster_ips.iter().enumerate() {
        let ip = check(ip, format!("spec.clusterIPs[{i}]"))?;
        first = first.or(ip);
    }
    match spec.cluster_ip.as_deref() {
        Some(ip) if !ip.is_empty() => check(ip, "spec.clusterIP".to_string()),
        _ => Ok(first),
    }
}

/// Reports every accepted service whose ClusterIP an earlier one (in input order) already
/// has. Kubernetes never assigns one IP twice, so this is a config error; both services are
/// kept, but traffic addressed to the IP can reach only one of them.
pub fn report_shared_cluster_ips(
    sources: &[&SourceObject],
    model: &MeshModel,
    problems: &mut Vec<Problem>,
) {
    let mut owners: BTreeMap<&str, (&ObjectKey, &Origin)> = BTreeMap::new();
    for source in sources {
        let KubeObject::Service(svc) = &*source.object else {
            continue;
        };
        let Ok(key) = object_key(&svc.metadata, true) else {
            continue;
        };
        // The model's version: the last valid one when this one was rejected.
        let Some(service) = model.services.get(&key) else {
            continue;
        };
        let Some(ip) = service.cluster_ip.as_deref() else {
            continue;
        };
        match owners.get(ip) {
            Some((other, origin)) => {
                debug!(service = %key, %ip, other = %other, "clusterIP shared by two services");
                problems.push(Problem {
                    origin: source.origin.clone(),
                    object: Some(source.object.object_ref()),
                    field: Some("spec.clusterIP".to_string()),
                    reason: format!(
                        "clusterIP {ip} is also the clusterIP of service {other} (at {origin}); \
                         traffic to it reaches only one of them"
                    ),
                });
            }
            None => {
                owners.insert(ip, (&service.key, &source.origin));
            }
        }
    }
}

fn ports(wire: &[objects::ServicePort]) -> Result<Vec<ServicePort>, Invalid> {
    let mut out: Vec<ServicePort> = Vec::new();
    let mut numbers: BTreeMap<u16, usize> = BTreeMap::new();
    let mut names: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, p) in wire.iter().enumerate() {
        let field = |f: &str| format!("spec.ports[{i}].{f}");
        let number = port(p.port, &field("port"))?;
        let name = p.name.as_deref().unwrap_or_default();
        if wire.len() > 1 && name.is_empty() {
            return Err(invalid(
                field("name"),
                "every port of a multi-port service needs a name",
            ));
        }
        if let Some(j) = names.insert(name, i) {
            return Err(invalid(
                field("name"),
                format!("duplicate port name {name:?} (also spec.ports[{j}])"),
            ));
        }
        if !is_tcp(p.protocol.as_deref(), &field("protocol"))? {
            debug!(port = number, "skipping a non-TCP service port");
            continue;
        }
        if let Some(j) = numbers.insert(number, i) {
            return Err(invalid(
                field("port"),
                format!("duplicate port {number} (also spec.ports[{j}])"),
            ));
        }
        let target_port = match &p.target_port {
            None => TargetPort::Number(number),
            Some(IntOrString::Int(n)) => TargetPort::Number(port(Some(*n), &field("targetPort"))?),
            Some(IntOrString::String(s)) if s.is_empty() => TargetPort::Number(number),
            Some(IntOrString::String(s)) => TargetPort::Name(s.clone()),
        };
        out.push(ServicePort {
            name: name.to_string(),
            port: number,
            target_port,
            protocol: Protocol::for_kubernetes_port(p.app_protocol.as_deref(), name, number),
        });
    }
    Ok(out)
}
