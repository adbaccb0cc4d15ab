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
    let by_label = LabelIndex::new(model);
    let mut out = BTreeMap::new();
    for (key, service) in &model.services {
        let selected = match by_service.get(key) {
            Some(_) => Vec::new(),
            None => by_label.selected(service),
        };
        for port in &service.ports {
            let mut endpoints = match by_service.get(key) {
                Some(slices) => from_slices(model, slices, port),
                None => from_pods(&selected, port),
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

/// Ready workloads with an IP by (namespace, label key, label value), so that a selector
/// is matched against the few pods carrying one of its labels rather than a whole namespace.
struct LabelIndex<'a> {
    by_label: BTreeMap<(&'a str, &'a str, &'a str), Vec<&'a Arc<Workload>>>,
}

impl<'a> LabelIndex<'a> {
    fn new(model: &'a MeshModel) -> Self {
        let mut by_label: BTreeMap<_, Vec<_>> = BTreeMap::new();
        for w in model.workloads.values() {
            if !w.ready || w.ip.is_none() {
                continue;
            }
            for (k, v) in &w.labels {
                by_label
                    .entry((w.key.namespace.as_str(), k.as_str(), v.as_str()))
                    .or_default()
                    .push(w);
            }
        }
        LabelIndex { by_label }
    }

    /// The ready workloads a service's selector picks in its namespace, by key. An absent
    /// or empty selector picks none, as in Kubernetes.
    fn selected(&self, service: &Service) -> Vec<&'a Arc<Workload>> {
        let Some(selector) = service.selector.as_ref().filter(|s| !s.is_empty()) else {
            return Vec::new();
        };
        let ns = service.key.namespace.as_str();
        let candidates = selector
            .iter()
            .map(|(k, v)| {
                self.by_label
                    .get(&(ns, k.as_str(), v.as_str()))
                    .map_or(&[][..], Vec::as_slice)
            })
            .min_by_key(|c| c.len())
            .unwrap_or_default();
        candidates
            .iter()
            .copied()
            .filter(|w| service.selects(w))
            .collect()
    }
}

fn from_slices(model: &MeshModel, slices: &[&Slice], port: &ServicePort) -> Vec<Endpoint> {
    let mut out = Vec::new();
    for slice in slices {
        // Slice ports carry the service port's name (empty for an unnamed port).
        for (_, number) in slice.ports.iter().filter(|(name, _)| *name == port.name) {
            for ep in &slice.endpoints {
                let workload = model.workload_by_key_or_ip(ep.pod.as_ref(), &ep.address);
                let mut endpoint = endpoint(&ep.address, *number, ep.ready, workload);
                endpoint.zone = ep.zone.clone();
                out.push(endpoint);
            }
        }
    }
    out
}

fn from_pods(selected: &[&Arc<Workload>], port: &ServicePort) -> Vec<Endpoint> {
    selected
        .iter()
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
