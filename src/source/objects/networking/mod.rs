//! Wire shapes of Istio's networking.istio.io kinds (v1, v1beta1 and v1alpha3 share one
//! schema): VirtualService, DestinationRule, ServiceEntry, WorkloadEntry, Sidecar, Gateway.
//! Field names are Istio's (camelCase). As for the core kinds, values stay loose (numbers as
//! `i64`/`f64`, durations as the strings users write, oneofs as several optional fields) so
//! that `mesh::build` can reject a bad object alone, naming the field and the reason.

mod destination_rule;
mod gateway;
mod service_entry;
mod sidecar;
mod virtual_service;

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{null_as_default, ObjectMeta};

pub use destination_rule::*;
pub use gateway::*;
pub use service_entry::*;
pub use sidecar::*;
pub use virtual_service::*;

/// An Istio resource: metadata and a typed spec.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct IstioObject<S> {
    pub metadata: ObjectMeta,
    pub spec: S,
}

/// A port by number (`port: {number: 9080}`).
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PortSelector {
    pub number: Option<i64>,
}

/// Exact, prefix or regex (RE2) match of a string; exactly one should be set.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct StringMatch {
    pub exact: Option<String>,
    pub prefix: Option<String>,
    pub regex: Option<String>,
}

/// A percentage in [0, 100], fractions allowed.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Percent {
    pub value: Option<f64>,
}

/// Selects workloads by labels, in the resource's namespace.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct WorkloadSelector {
    #[serde(deserialize_with = "null_as_default")]
    pub labels: BTreeMap<String, String>,
}

/// A port with a protocol, as Gateway servers, ServiceEntries and Sidecars declare them.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Port {
    pub number: Option<i64>,
    /// `HTTP`, `HTTPS`, `GRPC`, `HTTP2`, `MONGO`, `TCP`, `TLS` (case-insensitive in Istio).
    pub protocol: Option<String>,
    pub name: Option<String>,
    pub target_port: Option<i64>,
}

#[cfg(test)]
mod tests;
