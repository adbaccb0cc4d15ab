//! ServiceEntries and ExternalName services in the registry, as istiod converts them.
//!
//! Each host of a ServiceEntry becomes a service of `MeshModel.services`, keyed by the
//! entry's namespace and the host (a host has dots, a Kubernetes name has none, so the keys
//! never meet), with the entry's ports, addresses, location, resolution and exportTo. Two
//! entries of one namespace naming the same host: the first by namespace/name keeps it.
//!
//! Endpoints, per service port, as istiod's ServiceEntry registry finds them:
//! - the entry's `endpoints`, each on the port its `ports` map names, else the port's
//!   `targetPort`, else the port number;
//! - with a `workloadSelector`, the pods it selects (through the service's selector, in
//!   `endpoints::build`) and the WorkloadEntries of the entry's namespace it selects (ones
//!   with a DNS name only for DNS resolution);
//! - for DNS resolution with neither, the host itself (Envoy resolves it);
//! - for an ExternalName service, the external name on each service port.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use crate::mesh::model::{Endpoint, MeshModel, ObjectKey, PortEndpoints, Service, ServicePort};
use crate::mesh::model::{TargetPort, DEFAULT_SERVICE_ACCOUNT};
use crate::mesh::origin::{EntryService, ServiceOrigin};
use crate::mesh::traffic::{Resolution, ServiceEntry, WorkloadEntry};

/// The label that marks a workload whose sidecar accepts mesh mTLS.
const TLS_MODE_LABEL: &str = "security.istio.io/tlsMode";

/// Adds a service per ServiceEntry host. Runs before endpoints are built, so that the pods
/// an entry's `workloadSelector` picks become its endpoints like a Service's.
pub fn add_services(model: &mut MeshModel) {
    let entries: Vec<Arc<ServiceEntry>> = model.service_entries.values().cloned().collect();
    for se in entries {
        let attributes = Arc::new(EntryService {
            entry: se.key.clone(),
            addresses: se.addresses.clone(),
            location: se.location.clone(),
            resolution: se.resolution.clone(),
            export_to: se.export_to.clone(),
        });
        let ports: Vec<ServicePort> = se
            .ports
            .iter()
            .map(|p| ServicePort {
                name: p.name.clone(),
                port: p.number,
                target_port: TargetPort::Number(p.target_port.unwrap_or(p.number)),
                protocol: p.protocol,
            })
            .collect();
        for host in &se.hosts {
            let key = ObjectKey {
                namespace: se.key.namespace.clone(),
                name: host.clone(),
            };
            model
                .entry_hosts
                .entry(host.clone())
                .or_insert_with(|| key.clone());
            model.services.entry(key.clone()).or_insert_with(|| {
                Arc::new(Service {
                    key,
                    hostname: host.clone(),
                    cluster_ip: None,
                    ports: ports.clone(),
                    selector: se.workload_selector.clone(),
                    labels: BTreeMap::new(),
                    origin: ServiceOrigin::ServiceEntry(attributes.clone()),
                })
            });
        }
    }
}

/// Adds the endpoints of ServiceEntry hosts and ExternalName services to those
/// `endpoints::build` found (the selected pods).
pub fn add_endpoints(model: &mut MeshModel) {
    let mut added: Vec<((ObjectKey, u16), Vec<Endpoint>)> = Vec::new();
    for service in model.services.values() {
        for port in &service.ports {
            let key = (service.key.clone(), port.port);
            let extra = match &service.origin {
                ServiceOrigin::Kubernetes => continue,
                ServiceOrigin::ExternalName(target) => vec![dns_endpoint(target, port.port)],
                ServiceOrigin::ServiceEntry(attrs) => {
                    let Some(se) = model.service_entries.get(&attrs.entry) else {
                        continue;
                    };
                    entry_endpoints(model, service, se, port)
                }
            };
            let mut endpoints = model
                .endpoints
                .get(&key)
                .map(|e| e.endpoints.clone())
                .unwrap_or_default();
            endpoints.extend(extra);
            added.push((key, endpoints));
        }
    }
    for (key, mut endpoints) in added {
        // As `endpoints::build`: by address then port, a duplicate keeping its ready entry.
        endpoints
            .sort_by(|a, b| (&a.address, a.port, !a.ready).cmp(&(&b.address, b.port, !b.ready)));
        endpoints.dedup_by(|b, a| a.address == b.address && a.port == b.port);
        model
            .endpoints
            .insert(key, Arc::new(PortEndpoints { endpoints }));
    }
}

fn entry_endpoints(
    model: &MeshModel,
    service: &Service,
    se: &ServiceEntry,
    port: &ServicePort,
) -> Vec<Endpoint> {
    let target = match port.target_port {
        TargetPort::Number(n) => n,
        TargetPort::Name(_) => port.port,
    };
    let dns = matches!(se.resolution, Resolution::Dns | Resolution::DnsRoundRobin);
    if let Some(selector) = &se.workload_selector {
        return model
            .workload_entries
            .iter()
            .filter(|(key, _)| key.namespace == se.key.namespace)
            .filter(|(_, we)| selector.iter().all(|(k, v)| we.labels.get(k) == Some(v)))
            .filter(|(_, we)| dns || we.address.as_deref().is_some_and(is_ip))
            .filter_map(|(_, we)| workload_endpoint(we, port, target))
            .collect();
    }
    if se.endpoints.is_empty() {
        return if dns {
            vec![dns_endpoint(&service.hostname, target)]
        } else {
            Vec::new()
        };
    }
    se.endpoints
        .iter()
        .filter_map(|we| workload_endpoint(we, port, target))
        .collect()
}

/// A WorkloadEntry (inline or standalone) on one service port. Unix socket addresses are
/// left out: a sidecar's outbound cluster cannot reach another host's socket.
fn workload_endpoint(we: &WorkloadEntry, port: &ServicePort, target: u16) -> Option<Endpoint> {
    let address = we.address.as_deref()?;
    if address.starts_with("unix://") {
        return None;
    }
    let tls_mode = we.labels.get(TLS_MODE_LABEL).map(String::as_str);
    Some(Endpoint {
        address: address.to_string(),
        port: we.ports.get(&port.name).copied().unwrap_or(target),
        ready: true,
        workload: None,
        labels: we.labels.clone(),
        service_account: Some(
            we.service_account
                .clone()
                .unwrap_or_else(|| DEFAULT_SERVICE_ACCOUNT.to_string()),
        ),
        // As istiod: the label decides, else a service account means a sidecar.
        mtls_ready: match tls_mode {
            Some(mode) => mode == "istio",
            None => we.service_account.is_some(),
        },
        // Istio localities are `region/zone/subzone`; the model keeps the zone.
        zone: we
            .locality
            .as_deref()
            .and_then(|l| l.split('/').nth(1))
            .filter(|z| !z.is_empty())
            .map(str::to_string),
    })
}

/// A DNS name for Envoy to resolve, outside the mesh (no mTLS).
fn dns_endpoint(name: &str, port: u16) -> Endpoint {
    Endpoint {
        address: name.to_string(),
        port,
        ready: true,
        workload: None,
        labels: BTreeMap::new(),
        service_account: None,
        mtls_ready: false,
        zone: None,
    }
}

fn is_ip(address: &str) -> bool {
    address.parse::<IpAddr>().is_ok()
}

#[cfg(test)]
#[path = "entry_services_tests.rs"]
mod tests;
