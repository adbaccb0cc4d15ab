//! Wire shapes of the Kubernetes kinds meshd reads, as `kubectl get -o yaml` prints them
//! (only the fields meshd uses). Filled in by the source work.

/// A typed Kubernetes object.
#[derive(Debug, Clone, PartialEq)]
pub enum KubeObject {}
