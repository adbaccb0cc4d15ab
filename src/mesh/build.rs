//! Builds the mesh model from source objects, validating each one.
//!
//! Every object is checked on its own; an invalid one is left out with a `Problem` naming it,
//! the field and the reason, and everything else still builds. When two objects share kind,
//! namespace and name, the first in input order (file path, then document) wins and the
//! later one is reported. Per-kind checks live in the submodules; `endpoints` joins services
//! with EndpointSlices or, for services without any slice, with the pods they select.

mod endpoints;
mod names;
mod service;
mod slice;
mod workload;

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

pub fn build_model(input: &InputSet) -> Built {
    let mut problems = Vec::new();
    let mut model = MeshModel::default();
    let mut slices = Vec::new();
    for source in first_of_each(input, &mut problems) {
        let result = match &source.object {
            KubeObject::Namespace(ns) => names::namespace_name(&ns.metadata).map(|name| {
                model.namespaces.insert(name);
            }),
            KubeObject::Service(svc) => service::check(svc).map(|checked| {
                if let Some(svc) = checked {
                    model.services.insert(svc.key.clone(), Arc::new(svc));
                }
            }),
            KubeObject::EndpointSlice(es) => slice::check(es).map(|checked| {
                slices.extend(checked);
            }),
            KubeObject::Pod(pod) => workload::check(pod).map(|w| {
                model.workloads.insert(w.key.clone(), Arc::new(w));
            }),
        };
        if let Err(Invalid { field, reason }) = result {
            debug!(object = %object_ref(&source.object), %field, %reason, "rejected object");
            problems.push(Problem {
                origin: source.origin.clone(),
                object: Some(object_ref(&source.object)),
                field: (!field.is_empty()).then_some(field),
                reason,
            });
        }
    }
    index_workloads(&mut model);
    model.endpoints = endpoints::build(&model, &slices);
    let used = model
        .services
        .keys()
        .chain(model.workloads.keys())
        .map(|k| k.namespace.clone())
        .chain(slices.iter().map(|s| s.service.namespace.clone()));
    model.namespaces.extend(used);
    Built { model, problems }
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
