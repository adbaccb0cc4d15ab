//! The clusters and load assignments of one service port under the DestinationRule that
//! applies to it: the service's own cluster with the rule's policy, and one cluster per
//! subset, `outbound|<port>|<subset>|<fqdn>`, whose endpoints are those the subset's labels
//! select and whose policy is the subset's merged over the rule's (istiod's merge), mesh
//! mTLS last (`mtls::upstream`).

use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;

use super::cluster::{outbound_subset_cluster, resolution};
use super::endpoint::load_assignment_of;
use super::mtls;
use super::naming;
use super::scope::TranslateOptions;
use super::traffic_policy::{apply, effective_policy};
use crate::mesh::traffic::{DestinationRule, LbPolicy, Resolution, Subset};
use crate::mesh::{Endpoint, MeshModel, Service, ServicePort};

/// Whether the subset's labels select the endpoint (an empty set selects every one).
pub fn selects(subset: &Subset, endpoint: &Endpoint) -> bool {
    subset
        .labels
        .iter()
        .all(|(k, v)| endpoint.labels.get(k) == Some(v))
}

/// The subsets of `rule`, or none; `None` stands for the service as a whole.
fn targets(rule: Option<&DestinationRule>) -> impl Iterator<Item = Option<&Subset>> {
    std::iter::once(None).chain(rule.into_iter().flat_map(|r| r.subsets.iter().map(Some)))
}

/// The service port's cluster and its subset clusters, policies applied. A DNS cluster
/// carries the endpoints of its subset inline and is left out without any (as istiod).
pub fn clusters(
    model: &MeshModel,
    options: &TranslateOptions,
    identity: bool,
    service: &Service,
    port: &ServicePort,
    rule: Option<&DestinationRule>,
) -> Vec<Cluster> {
    targets(rule)
        .filter_map(|subset| {
            let name = subset.map(|s| s.name.as_str()).unwrap_or_default();
            let mut cluster = resolution::complete(
                model,
                service,
                port,
                |e| subset.is_none_or(|s| selects(s, e)),
                outbound_subset_cluster(service, port, name),
            )?;
            let policy = effective_policy(rule, subset, port.port);
            apply(&mut cluster, &policy, port);
            let target = mtls::upstream::Target {
                model,
                options,
                identity,
                service,
                port,
                subset: name,
            };
            mtls::upstream::apply(&mut cluster, policy.tls.as_ref(), &target);
            Some(cluster)
        })
        .collect()
}

/// Whether the cluster of `subset` has endpoints over EDS: a service resolved STATIC (a
/// ClusterIP, a STATIC ServiceEntry) whose policy is not PASSTHROUGH (that one connects where the client dialled).
fn uses_eds(
    service: &Service,
    rule: Option<&DestinationRule>,
    subset: Option<&Subset>,
    port: u16,
) -> bool {
    let passthrough = matches!(
        effective_policy(rule, subset, port).load_balancer,
        Some(ref lb) if lb.policy == LbPolicy::Passthrough
    );
    service.resolution() == Resolution::Static && !passthrough
}

/// The load assignments of the service port's EDS clusters (its own and its subsets').
pub fn load_assignments(
    model: &MeshModel,
    service: &Service,
    port: &ServicePort,
    rule: Option<&DestinationRule>,
) -> Vec<ClusterLoadAssignment> {
    targets(rule)
        .filter(|subset| uses_eds(service, rule, *subset, port.port))
        .map(|subset| {
            let name = subset.map(|s| s.name.as_str()).unwrap_or_default();
            let cluster_name = naming::outbound_cluster(port.port, name, &service.hostname);
            load_assignment_of(model, service, port, cluster_name, |e| {
                subset.is_none_or(|s| selects(s, e))
            })
        })
        .collect()
}
