//! Sources of input: they watch something and hand over one consistent set of typed
//! objects at a time. `file` reads a directory of Kubernetes-format YAML/JSON; `kube` lists
//! and watches a Kubernetes API server; `combined` adds a directory's objects to a cluster's.
//! Nothing downstream knows which source is in use.

pub mod combined;
pub mod file;
pub mod jwks;
pub mod kinds;
pub mod kube;
pub mod mesh_config;
pub mod objects;
pub mod parse;
mod walk;

pub use objects::KubeObject;

use std::sync::Arc;

use crate::problem::{Origin, Problem};

/// One object read from the input, with where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceObject {
    pub origin: Origin,
    /// Shared: every input set and the model builder's memory of last valid objects hold
    /// the same parsed object rather than copies.
    pub object: Arc<KubeObject>,
}

/// A complete, consistent view of the input at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InputSet {
    pub objects: Vec<SourceObject>,
    /// Parse problems (files or documents that could not be read at all).
    pub problems: Vec<Problem>,
}
