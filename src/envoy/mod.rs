//! Envoy resources as meshd handles them between stages: `translate` builds and encodes
//! them once, `xds` serves the shared bytes, and the CLI and admin views render them as
//! Envoy's proto3 JSON. Neither `translate` nor `xds` depends on the other; both depend on
//! this module.

pub mod canonical;
pub mod descriptors;
pub mod json;
pub mod resource;

pub use resource::{type_url, EncodedAny, ProxyResources, Resource, ResourceMap};
