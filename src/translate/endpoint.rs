//! Endpoints: one ClusterLoadAssignment per outbound EDS cluster, named like the cluster.
//! Only ready endpoints are sent; they are grouped by zone (locality) and sorted, so equal
//! input gives equal bytes.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use envoy_types::pb::envoy::config::core::v3::{Locality, Metadata};
use envoy_types::pb::envoy::config::endpoint::v3::{
    lb_endpoint::HostIdentifier, ClusterLoadAssignment, Endpoint as EnvoyEndpoint, LbEndpoint,
    LocalityLbEndpoints,
};
use envoy_types::pb::google::protobuf::{value::Kind, Struct, Value};

use super::naming;
use super::scope::Scope;
use super::socket_address;
use crate::mesh::{Endpoint, MeshModel, Service, ServicePort};

/// Filter metadata key Envoy's transport socket matching reads.
pub const TRANSPORT_SOCKET_MATCH_KEY: &str = "envoy.transport_socket_match";

/// `envoy.transport_socket_match: {tlsMode: istio}`: the endpoint has a sidecar that
/// accepts mesh mTLS, so clusters can choose mTLS per endpoint (Istio's auto mTLS).
fn istio_tls_mode_metadata() -> Metadata {
    let tls_mode = Struct {
        fields: HashMap::from([(
            "tlsMode".to_string(),
            Value {
                kind: Some(Kind::StringValue("istio".to_string())),
            },
        )]),
    };
    Metadata {
        filter_metadata: HashMap::from([(TRANSPORT_SOCKET_MATCH_KEY.to_string(), tls_mode)]),
        ..Default::default()
    }
}

fn lb_endpoint(endpoint: &Endpoint) -> LbEndpoint {
    LbEndpoint {
        host_identifier: Some(HostIdentifier::Endpoint(EnvoyEndpoint {
            address: Some(socket_address(&endpoint.address, endpoint.port)),
            ..Default::default()
        })),
        metadata: endpoint.mtls_ready.then(istio_tls_mode_metadata),
        ..Default::default()
    }
}

/// The assignment of one service port's EDS cluster.
pub fn load_assignment(
    model: &MeshModel,
    service: &Service,
    port: &ServicePort,
) -> ClusterLoadAssignment {
    let cluster_name = naming::outbound_cluster(port.port, "", &service.hostname);
    load_assignment_of(model, service, port, cluster_name, |_| true)
}

/// The assignment named `cluster_name` holding the ready endpoints of a service port that
/// `keep` keeps (a subset's, for subset clusters).
pub fn load_assignment_of(
    model: &MeshModel,
    service: &Service,
    port: &ServicePort,
    cluster_name: String,
    keep: impl Fn(&Endpoint) -> bool,
) -> ClusterLoadAssignment {
    // zone -> endpoints, both sorted; duplicates (same address and port) collapse.
    let mut by_zone: BTreeMap<String, BTreeSet<&Endpoint>> = BTreeMap::new();
    if let Some(endpoints) = model.endpoints_of(&service.key, port.port) {
        for endpoint in endpoints.endpoints.iter().filter(|e| e.ready && keep(e)) {
            by_zone
                .entry(endpoint.zone.clone().unwrap_or_default())
                .or_default()
                .insert(endpoint);
        }
    }
    let endpoints = by_zone
        .into_iter()
        .map(|(zone, endpoints)| {
            // Sorted by address then port (Endpoint's field order), so duplicates are adjacent.
            let mut endpoints: Vec<&Endpoint> = endpoints.into_iter().collect();
            endpoints.dedup_by(|a, b| a.address == b.address && a.port == b.port);
            LocalityLbEndpoints {
                locality: (!zone.is_empty()).then(|| Locality {
                    zone,
                    ..Default::default()
                }),
                lb_endpoints: endpoints.into_iter().map(lb_endpoint).collect(),
                ..Default::default()
            }
        })
        .collect();
    ClusterLoadAssignment {
        cluster_name,
        endpoints,
        ..Default::default()
    }
}

/// Assignments for the EDS clusters a scope sees (services resolved STATIC: with a
/// ClusterIP, or STATIC ServiceEntries), by name.
pub fn load_assignments(scope: &Scope) -> Vec<ClusterLoadAssignment> {
    let mut out: Vec<ClusterLoadAssignment> = scope
        .services()
        .filter(|s| s.resolution() == crate::mesh::traffic::Resolution::Static)
        .flat_map(|s| {
            s.ports
                .iter()
                .flat_map(move |p| scope.service_load_assignments(s, p))
        })
        .collect();
    out.sort_by(|a, b| a.cluster_name.cmp(&b.cluster_name));
    out.dedup_by(|a, b| a.cluster_name == b.cluster_name);
    out
}
