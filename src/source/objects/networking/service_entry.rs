//! ServiceEntry (services added to the registry, often outside the mesh) and WorkloadEntry
//! (a non-Kubernetes workload, also the shape of a ServiceEntry's inline endpoints).

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{null_as_default, Port, WorkloadSelector};

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ServiceEntrySpec {
    #[serde(deserialize_with = "null_as_default")]
    pub hosts: Vec<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub addresses: Vec<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub ports: Vec<Port>,
    /// `MESH_EXTERNAL` (default) or `MESH_INTERNAL`.
    pub location: Option<String>,
    /// `NONE` (default), `STATIC`, `DNS` or `DNS_ROUND_ROBIN`.
    pub resolution: Option<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub endpoints: Vec<WorkloadEntrySpec>,
    pub workload_selector: Option<WorkloadSelector>,
    #[serde(deserialize_with = "null_as_default")]
    pub export_to: Vec<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub subject_alt_names: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct WorkloadEntrySpec {
    pub address: Option<String>,
    /// Port name -> port number on this workload.
    #[serde(deserialize_with = "null_as_default")]
    pub ports: BTreeMap<String, i64>,
    #[serde(deserialize_with = "null_as_default")]
    pub labels: BTreeMap<String, String>,
    pub network: Option<String>,
    pub locality: Option<String>,
    pub weight: Option<i64>,
    pub service_account: Option<String>,
}
