//! Builds the mesh model from source objects, validating each one.
//!
//! Every object is checked on its own; an invalid one is left out with a `Problem` naming it,
//! the field and the reason, and everything else still builds. When two objects share kind,
//! namespace and name, the first in input order (file path, then document) wins and the
//! later one is reported. Two services sharing a ClusterIP are both kept, the later one
//! reported. Per-kind checks live in the submodules; `endpoints` joins services
//! with EndpointSlices or, for services without any slice, with the pods they select.

mod authz;
mod destination_rule;
mod endpoints;
mod entry_services;
mod hosts;
mod istio_fields;
#[cfg(test)]
mod istio_test_support;
mod jwt;
pub use jwt::check_jwks;
pub(crate) mod names;
pub mod path_template;
mod peer_authentication;
mod secret;
mod service;
mod service_entry;
mod sidecar_gateway;
mod slice;
mod traffic_refs;
mod virtual_service;
mod workload;
#[cfg(test)]
pub(crate) mod yaml_fixture;

use std::collections::BTreeMap;
use std::sync::Arc;

use tracing::debug;

use crate::problem::{ObjectRef, Problem};
use crate::source::{InputSet, KubeObject, SourceObject};

use super::model::{MeshModel, ObjectKey};

/// A built model and the objects rejected while building it.
#[derive(Debug, Default)]
pub struct Built {
    pub model: MeshModel,
    pub problems: Vec<Problem>,
}

/// Why an object was rejected: the offending field (`spec.ports[0].port`) and the reason.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Invalid {
    pub field: String,
    pub reason: String,
}

pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Invalid {
    Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

/// Builds a model from one input, on its own.
pub fn build_model(input: &InputSet) -> Built {
    build_with(input, &BTreeMap::new()).0
}

/// Builds models one input after another, remembering each object's last valid version.
/// When an object that was valid comes back invalid (say a port edited to 70000), its last
/// valid version is used and the problem is still reported, so a bad edit never drops
/// config that was valid. An object that is gone from the input is gone from the model.
#[derive(Debug, Default)]
pub struct ModelBuilder {
    last_good: BTreeMap<ObjectRef, Arc<KubeObject>>,
}

impl Built {
    /// The input's parse problems followed by this build's validation problems.
    pub fn all_problems<'a>(&'a self, input: &'a InputSet) -> impl Iterator<Item = &'a Problem> {
        input.problems.iter().chain(&self.problems)
    }
}

impl ModelBuilder {
    pub fn build(&mut self, input: &InputSet) -> Built {
        let (built, accepted) = build_with(input, &self.last_good);
        self.last_good = accepted;
        built
    }
}

/// What the objects accepted so far add up to.
#[derive(Default)]
struct Parts {
    model: MeshModel,
    slices: Vec<slice::Slice>,
}

impl Parts {
    fn add(&mut self, object: &KubeObject) -> Result<(), Invalid> {
        match object {
            KubeObject::Namespace(ns) => {
                self.model
                    .namespaces
                    .insert(names::namespace_name(&ns.metadata)?);
            }
            KubeObject::Service(svc) => {
                if let Some(svc) = service::check(svc)? {
                    self.model.services.insert(svc.key.clone(), Arc::new(svc));
                }
            }
            KubeObject::EndpointSlice(es) => self.slices.extend(slice::check(es)?),
            KubeObject::Pod(pod) => {
                let w = workload::check(pod)?;
                self.model.workloads.insert(w.key.clone(), Arc::new(w));
            }
            KubeObject::Secret(s) => {
                if let Some(credential) = secret::check(s)? {
                    self.model
                        .secrets
                        .insert(credential.key.clone(), Arc::new(credential));
                }
            }
            KubeObject::VirtualService(vs) => {
                let vs = virtual_service::check(vs)?;
                self.model
                    .virtual_services
                    .insert(vs.key.clone(), Arc::new(vs));
            }
            KubeObject::DestinationRule(dr) => {
                let dr = destination_rule::check(dr)?;
                self.model
                    .destination_rules
                    .insert(dr.key.clone(), Arc::new(dr));
            }
            KubeObject::ServiceEntry(se) => {
                let se = service_entry::check(se)?;
                self.model
                    .service_entries
                    .insert(se.key.clone(), Arc::new(se));
            }
            KubeObject::WorkloadEntry(we) => {
                let key = names::object_key(&we.metadata, false)?;
                let mut entry = service_entry::workload_entry(&we.spec, "spec")?;
                // As istiod: the object's labels count too, the spec's winning.
                for (k, v) in &we.metadata.labels {
                    entry.labels.entry(k.clone()).or_insert_with(|| v.clone());
                }
                if entry.address.is_none() {
                    return Err(invalid("spec.address", "address is required"));
                }
                self.model.workload_entries.insert(key, Arc::new(entry));
            }
            KubeObject::Sidecar(sc) => {
                let sc = sidecar_gateway::check_sidecar(sc)?;
                self.model.sidecars.insert(sc.key.clone(), Arc::new(sc));
            }
            KubeObject::Gateway(gw) => {
                let gw = sidecar_gateway::check_gateway(gw)?;
                self.model.gateways.insert(gw.key.clone(), Arc::new(gw));
            }
            KubeObject::AuthorizationPolicy(ap) => {
                let ap = authz::check(ap)?;
                let policies = &mut self.model.authorization_policies;
                policies.insert(ap.key.clone(), Arc::new(ap));
            }
            KubeObject::RequestAuthentication(ra) => {
                let ra = jwt::check(ra)?;
                let authns = &mut self.model.request_authentications;
                authns.insert(ra.key.clone(), Arc::new(ra));
            }
            KubeObject::PeerAuthentication(pa) => {
                let pa = peer_authentication::check(pa)?;
                self.model
                    .peer_authentications
                    .insert(pa.key.clone(), Arc::new(pa));
            }
        }
        Ok(())
    }
}

fn build_with(
    input: &InputSet,
    last_good: &BTreeMap<ObjectRef, Arc<KubeObject>>,
) -> (Built, BTreeMap<ObjectRef, Arc<KubeObject>>) {
    let mut problems = Vec::new();
    let mut parts = Parts::default();
    let mut accepted = BTreeMap::new();
    let sources = first_of_each(input, &mut problems);
    for &source in &sources {
        let r = source.object.object_ref();
        let Err(Invalid { field, mut reason }) = parts.add(&source.object) else {
            if !r.name.is_empty() {
                accepted.insert(r, source.object.clone());
            }
            continue;
        };
        if let Some(previous) = last_good.get(&r).filter(|p| **p != source.object) {
            if parts.add(previous).is_ok() {
                reason.push_str("; keeping its last valid version");
                accepted.insert(r, previous.clone());
            }
        }
        debug!(object = %object_ref(&source.object), %field, %reason, "rejected object");
        problems.push(Problem {
            origin: source.origin.clone(),
            object: Some(object_ref(&source.object)),
            field: (!field.is_empty()).then_some(field),
            reason,
        });
    }
    let Parts { mut model, slices } = parts;
    service::report_shared_cluster_ips(&sources, &model, &mut problems);
    entry_services::add_services(&mut model);
    traffic_refs::report(&sources, &model, &mut problems);
    index_workloads(&mut model);
    model.endpoints = endpoints::build(&model, &slices);
    entry_services::add_endpoints(&mut model);
    let used = model
        .services
        .keys()
        .chain(model.workloads.keys())
        .map(|k| k.namespace.clone())
        .chain(slices.iter().map(|s| s.service.namespace.clone()));
    model.namespaces.extend(used);
    (Built { model, problems }, accepted)
}

/// `Kind namespace/name`, with a placeholder when the name is missing.
fn object_ref(object: &KubeObject) -> ObjectRef {
    let mut r = object.object_ref();
    if r.name.is_empty() {
        r.name = "<unnamed>".to_string();
    }
    r
}

/// The objects in input order, leaving out (and reporting) later duplicates.
fn first_of_each<'a>(input: &'a InputSet, problems: &mut Vec<Problem>) -> Vec<&'a SourceObject> {
    let mut first: BTreeMap<ObjectRef, &SourceObject> = BTreeMap::new();
    let mut out = Vec::new();
    for source in &input.objects {
        let r = source.object.object_ref();
        // Unnamed objects are rejected by their own checks, not as duplicates.
        if r.name.is_empty() {
            out.push(source);
            continue;
        }
        match first.get(&r) {
            Some(earlier) => problems.push(Problem {
                origin: source.origin.clone(),
                object: Some(r),
                field: Some("metadata.name".to_string()),
                reason: format!("duplicate object, first defined at {}", earlier.origin),
            }),
            None => {
                first.insert(r, source);
                out.push(source);
            }
        }
    }
    out
}

/// Fills `workloads_by_ip`; when pods share an IP (host network), the first by key wins.
fn index_workloads(model: &mut MeshModel) {
    let mut by_ip: BTreeMap<String, ObjectKey> = BTreeMap::new();
    for (key, workload) in &model.workloads {
        if let Some(ip) = &workload.ip {
            by_ip.entry(ip.clone()).or_insert_with(|| key.clone());
        }
    }
    model.workloads_by_ip = by_ip;
}

#[cfg(test)]
mod tests;
