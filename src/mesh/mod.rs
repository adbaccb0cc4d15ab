//! The mesh model and its builder. Every source object is validated here; an invalid
//! object is rejected alone with an error naming it, the field and the reason, and the rest
//! of the mesh still builds.

pub mod build;
pub mod model;
pub mod origin;
pub mod peer_authentication;
pub mod protocol;
pub mod proxy;
pub mod secret;
pub mod security;
pub mod traffic;

pub use model::*;
pub use origin::{EntryService, ServiceOrigin};
pub use protocol::Protocol;
pub use proxy::{ProxyId, ProxyType};

#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum MeshError {
    #[error("invalid node id {node_id:?}: {reason}")]
    NodeId { node_id: String, reason: String },
}
