//! ServiceEntry, WorkloadEntry, Sidecar and Gateway as the model holds them.

use std::collections::BTreeMap;

use super::ExportTo;
use crate::mesh::model::ObjectKey;
use crate::mesh::protocol::Protocol;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    MeshExternal,
    MeshInternal,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    None,
    Static,
    Dns,
    DnsRoundRobin,
}

/// A port of a ServiceEntry or Gateway server, with the protocol Istio gives its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IstioPort {
    pub number: u16,
    pub protocol: Protocol,
    pub name: String,
    pub target_port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ServiceEntry {
    pub key: ObjectKey,
    /// Fully qualified (short names resolved in the entry's namespace) or wildcards.
    pub hosts: Vec<String>,
    /// IPs or CIDRs the hosts answer on (VIPs).
    pub addresses: Vec<String>,
    pub ports: Vec<IstioPort>,
    pub location: Location,
    pub resolution: Resolution,
    pub endpoints: Vec<WorkloadEntry>,
    pub workload_selector: Option<BTreeMap<String, String>>,
    pub export_to: ExportTo,
    pub subject_alt_names: Vec<String>,
}

/// A workload outside Kubernetes, or an endpoint of a ServiceEntry.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WorkloadEntry {
    /// An IP, or a DNS name (DNS resolution), or a unix socket.
    pub address: Option<String>,
    pub ports: BTreeMap<String, u16>,
    pub labels: BTreeMap<String, String>,
    pub network: Option<String>,
    pub locality: Option<String>,
    pub weight: Option<u32>,
    pub service_account: Option<String>,
}
