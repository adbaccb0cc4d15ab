//! meshd: a control plane for meshes of stock Envoy sidecars, driven by Istio's
//! configuration. Data flows one way: source -> mesh model -> translate -> xds server, with
//! the certificate authority (ca) beside it.

pub mod admin;
pub mod app;
pub mod ca;
pub mod cli;
pub mod config;
pub mod duration;
pub mod envoy;
pub mod identity;
pub mod mesh;
pub mod pipeline;
pub mod problem;
pub mod source;
#[cfg(test)]
mod testing;
pub mod translate;
pub mod xds;
pub mod yaml;
