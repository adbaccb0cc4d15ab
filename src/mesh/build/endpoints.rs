//! Endpoints per (service, service port). A service with at least one EndpointSlice takes
//! its endpoints from its slices only; a service without any derives them from the ready
//! pods its selector picks, as Kubernetes' endpoint controller does.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::slice::Slice;
use crate::mesh::model::{
    Endpoint, MeshModel, ObjectKey, PortEndpoints, Service, ServicePort, TargetPort, Workload,
};

pub fn build(
    model: &MeshModel,
    slices: &[Slice],
) -> BTreeMap<(ObjectKey, u16), Arc<PortEndpoints>> {
    let mut by_service: BTreeMap<&ObjectKey, Vec<&Slice>> = BTreeMap::new();
    for slice in slices {
        by_service.entry(&slice.service).or_default().push(slice);
    }
    let mut out = BTreeMap::new();
    for (key, service) in &model.services {
        for port in &service.ports {
            let mut endpoints = match by_service.get(key) {
                Some(slices) => from_slices(model, slices, port),
                None => from_pods(model, service, port),
            };
            // Sorted by address then port; a duplicate address keeps its ready entry.
            endpoints.sort_by(|a, b| {
                (&a.address, a.port, !a.ready).cmp(&(&b.address, b.port, !b.ready))
            });
            endpoints.dedup_by(|b, a| a.address == b.address && a.port == b.port);
            out.insert(
                (key.clone(), port.port),
                Arc::new(PortEndpoints { endpoints }),
            );
        }
    }
    out
}

fn from_slices(model: &MeshModel, slices: &[&Slice], port: &ServicePort) -> Vec<Endpoint> {
    let mut out = Vec::new();
    for slice in slices {
        // Slice ports carry the service port's name (empty for an unnamed port).
        for (_, number) in slice.ports.iter().filter(|(name, _)| *name == port.name) {
            for ep in &slice.endpoints {
                let workload = ep
                    .pod
                    .as_ref()
                    .and_then(|k| model.workloads.get(k))
                    .or_else(|| {
                        let key = model.workloads_by_ip.get(&ep.address)?;
                        model.workloads.get(key)
                    });
                let mut endpoint = endpoint(&ep.address, *number, ep.ready, workload);
                endpoint.zone = ep.zone.clone();
                out.push(endpoint);
            }
        }
    }
    out
}

fn from_pods(model: &MeshModel, service: &Service, port: &ServicePort) -> Vec<Endpoint> {
    let selects_any = service.selector.as_ref().is_some_and(|s| !s.is_empty());
    if !selects_any {
        return Vec::new();
    }
    let namespace = &service.key.namespace;
    let first = ObjectKey {
        namespace: namespace.clone(),
        name: String::new(),
    };
    model
        .workloads
        .range(first..)
        .take_while(|(k, _)| &k.namespace == namespace)
        .map(|(_, w)| w)
        .filter(|w| w.ready && selects(service, w))
        .filter_map(|w| {
            let ip = w.ip.as_deref()?;
            let target = match &port.target_port {
                TargetPort::Number(n) => *n,
                // A pod without a container port of that name is left out.
                TargetPort::Name(name) => *w.named_ports.get(name)?,
            };
            Some(endpoint(ip, target, true, Some(w)))
        })
        .collect()
}

fn selects(service: &Service, workload: &Workload) -> bool {
    service
        .selector
        .as_ref()
        .is_some_and(|sel| sel.iter().all(|(k, v)| workload.labels.get(k) == Some(v)))
}

fn endpoint(address: &str, port: u16, ready: bool, workload: Option<&Arc<Workload>>) -> Endpoint {
    Endpoint {
        address: address.to_string(),
        port,
        ready,
        workload: workload.map(|w| w.key.clone()),
        labels: workload.map(|w| w.labels.clone()).unwrap_or_default(),
        service_account: workload.map(|w| w.service_account.clone()),
        mtls_ready: workload.is_some_and(|w| w.mtls_ready),
        zone: None,
    }
}
