//! The xDS server: ADS over gRPC, State of the World and Delta. Keeps per-stream state
//! (subscriptions, nonces, versions, ACK/NACK), orders and merges pushes, and fans a new
//! configuration generation out to connected proxies. It knows nothing of Istio or the mesh.

pub mod debounce;
pub mod generator;
pub mod json;
pub mod resource;
pub mod server;

pub use generator::{ConfigGenerator, GenerationWatch};
pub use resource::{type_url, ProxyResources, Resource, ResourceMap};
