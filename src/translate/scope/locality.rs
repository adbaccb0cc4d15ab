//! Locality failover, as far as meshd knows localities: endpoints carry the zone of their
//! EndpointSlice, and a proxy is in the zone of its own workload's endpoints. Regions and
//! subzones are not known, so every locality is in one region and istiod's failover order
//! (same region/zone/subzone first) comes down to: endpoints in the proxy's zone get
//! priority 0, the others priority 1. As in istiod this applies only where the rule has
//! `outlierDetection` (without it Envoy would never fail over) and `localityLbSetting` is
//! not switched off; `distribute`, `failover` and `failoverPriority` need regions or labels
//! of the proxy meshd does not have, and are not applied.

use std::collections::BTreeMap;

use envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;

use crate::mesh::traffic::DestinationRule;
use crate::mesh::{MeshModel, ObjectKey};
use crate::translate::traffic_policy::effective_policy;

/// Whether `rule` (at any level) asks for outlier detection with locality load balancing
/// left on: then endpoints depend on the proxy's zone.
pub fn rule_uses_locality(rule: &DestinationRule) -> bool {
    let policies = rule.traffic_policy.iter().chain(
        rule.subsets
            .iter()
            .filter_map(|s| s.traffic_policy.as_ref()),
    );
    policies.into_iter().any(|p| {
        let levels = std::iter::once((&p.outlier_detection, &p.load_balancer)).chain(
            p.port_level
                .values()
                .map(|l| (&l.outlier_detection, &l.load_balancer)),
        );
        levels.into_iter().any(|(outlier, lb)| {
            outlier.is_some()
                && lb
                    .as_ref()
                    .and_then(|lb| lb.locality.as_ref())
                    .and_then(|l| l.enabled)
                    != Some(false)
        })
    })
}

/// The zone of each workload that has an endpoint with a zone.
pub fn workload_zones(model: &MeshModel) -> BTreeMap<ObjectKey, String> {
    let mut zones = BTreeMap::new();
    for endpoint in model.endpoints.values().flat_map(|e| &e.endpoints) {
        if let (Some(workload), Some(zone)) = (&endpoint.workload, &endpoint.zone) {
            zones
                .entry(workload.clone())
                .or_insert_with(|| zone.clone());
        }
    }
    zones
}

/// Gives the localities of each assignment (a cluster of `rule`'s host, for `port`)
/// priority 0 in `zone` and 1 elsewhere, where the effective policy of its subset fails
/// over by locality.
pub fn prioritize(
    assignments: &mut [ClusterLoadAssignment],
    rule: &DestinationRule,
    port: u16,
    zone: &str,
) {
    for assignment in assignments {
        // `outbound|<port>|<subset>|<host>`
        let subset_name = assignment
            .cluster_name
            .split('|')
            .nth(2)
            .unwrap_or_default();
        let subset = rule.subsets.iter().find(|s| s.name == subset_name);
        let policy = effective_policy(Some(rule), subset, port);
        let locality_off = policy
            .load_balancer
            .as_ref()
            .and_then(|lb| lb.locality.as_ref())
            .and_then(|l| l.enabled)
            == Some(false);
        let in_zone = |g: &envoy_types::pb::envoy::config::endpoint::v3::LocalityLbEndpoints| {
            g.locality.as_ref().is_some_and(|l| l.zone == zone)
        };
        // Priorities have no gaps, as istiod numbers them: with no endpoint in the proxy's
        // zone, every locality stays at 0.
        if policy.outlier_detection.is_none()
            || locality_off
            || !assignment.endpoints.iter().any(in_zone)
        {
            continue;
        }
        for group in &mut assignment.endpoints {
            group.priority = u32::from(!in_zone(group));
        }
    }
}
