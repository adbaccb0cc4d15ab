//! Istio's traffic configuration as the model holds it: checked, with hosts resolved to
//! fully qualified names and durations, weights and ports in their final types. Built from
//! the networking.istio.io kinds by `mesh::build`; translation reads only these types.

pub mod destination_rule;
pub mod merge;
pub mod select;
pub mod service_entry;
pub mod sidecar_gateway;
pub mod virtual_service;

pub use destination_rule::*;
pub use service_entry::*;
pub use sidecar_gateway::*;
pub use virtual_service::*;

use std::time::Duration;

/// Matching of one string value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StringMatch {
    Exact(String),
    Prefix(String),
    /// RE2 syntax, checked to compile.
    Regex(String),
}

/// Which namespaces may see an object (`exportTo`); empty in Istio means everyone.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ExportTo {
    /// `*`, or no `exportTo` at all.
    #[default]
    All,
    /// Namespaces by name; `.` already replaced by the object's own namespace. Empty
    /// (from `~`) means no namespace.
    Namespaces(Vec<String>),
}

impl ExportTo {
    pub fn visible_to(&self, namespace: &str) -> bool {
        match self {
            ExportTo::All => true,
            ExportTo::Namespaces(list) => list.iter().any(|n| n == namespace),
        }
    }
}

/// A duration as users write it (`10s`, `1.5s`, `100ms`, `1h30m`).
pub type IstioDuration = Duration;
