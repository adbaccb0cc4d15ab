//! The xDS server: ADS over gRPC, State of the World and Delta. Keeps per-stream state
//! (subscriptions, nonces, versions, ACK/NACK), orders and merges pushes, and fans a new
//! configuration generation out to connected proxies. It knows nothing of Istio or the mesh.

mod body;
pub mod debounce;
mod delta;
pub mod generator;
pub mod json;
mod pending;
mod push;
pub mod resource;
pub mod server;
mod service;
mod sotw;
pub mod status;
mod stream;
mod wire;

pub use generator::{ConfigGenerator, GenerationWatch};
pub use resource::{type_url, EncodedAny, ProxyResources, Resource, ResourceMap};
pub use server::{XdsOptions, XdsServer};
pub use status::XdsStatus;
