//! The xDS server: ADS over gRPC, State of the World and Delta. Keeps per-stream state
//! (subscriptions, nonces, versions, ACK/NACK), orders and merges pushes, and fans a new
//! configuration generation out to connected proxies. It knows nothing of Istio or the mesh.

mod admission;
mod body;
pub mod caller;
mod convergence;
mod delta;
mod fanout;
pub mod generator;
mod held;
mod listen;
mod metrics;
mod nack;
mod names;
mod options;
mod pending;
#[cfg(test)]
mod proptests;
mod push_permits;
mod refusals;
mod requests;
mod selection;
pub mod server;
mod service;
mod shared;
mod sotw;
mod sotw_request;
pub mod status;
mod stream;
mod tls;
mod wire;

pub use crate::envoy::{type_url, EncodedAny, ProxyResources, Resource, ResourceMap};
pub use caller::{Caller, CallerAuth};
pub use generator::{ConfigGenerator, GenerationWatch, ProxyContext};
pub use listen::listen;
pub use server::{XdsOptions, XdsServer};
pub use status::XdsStatus;
