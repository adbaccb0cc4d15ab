//! Ingress gateways: what a router proxy (`router~...` node id) gets instead of a
//! sidecar's capture listeners. `select` finds the Gateways its labels pick, `merge` lays
//! their servers out on listeners, `listeners`, `routes` and `secrets` build the Envoy
//! resources (`tls` the downstream TLS, `bind` the VirtualServices bound to a Gateway).
//! Clusters and endpoints are the outbound ones every proxy gets (`resources` puts the
//! parts together for the translator).

pub mod bind;
pub mod listeners;
pub mod merge;
mod resources;
pub mod routes;
pub mod secrets;
pub mod select;
pub mod tls;

pub(crate) use resources::{GatewayParts, PortMap};

#[cfg(test)]
mod tests;
