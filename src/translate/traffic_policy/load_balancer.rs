//! `loadBalancer` -> the cluster's load balancing policy, and the route-side half of
//! consistent hashing (`hash_policy_for`: what to hash a request on, which Envoy takes from
//! the route, not the cluster).
//!
//! As istiod: unset and `LEAST_REQUEST` give LEAST_REQUEST, `PASSTHROUGH` turns the cluster
//! into an ORIGINAL_DST one (the client's chosen address is used, no endpoints), a
//! consistent hash gives RING_HASH (minimum ring 1024 unless set) or MAGLEV, and a warmup
//! duration becomes a slow-start window. Clusters that pick hosts themselves (ORIGINAL_DST)
//! keep their policy. `localityLbSetting` is not applied yet (see README).

use envoy_types::pb::envoy::config::cluster::v3::{
    cluster::{
        ClusterDiscoveryType, DiscoveryType, LbConfig, LbPolicy as EnvoyLbPolicy,
        LeastRequestLbConfig, MaglevLbConfig, RingHashLbConfig, RoundRobinLbConfig,
        SlowStartConfig,
    },
    Cluster,
};
use envoy_types::pb::envoy::config::route::v3::route_action::{hash_policy, HashPolicy};
use envoy_types::pb::google::protobuf::UInt64Value;

use super::connection_pool::proto_duration;
use crate::mesh::traffic::{
    ConsistentHash, DestinationRule, HashAlgorithm, HashKey, LbPolicy, LoadBalancer,
};
use crate::mesh::ServicePort;

/// Envoy's (and istiod's) ring size when a consistent hash sets none.
pub const DEFAULT_MINIMUM_RING_SIZE: u64 = 1024;

fn slow_start(lb: &LoadBalancer) -> Option<SlowStartConfig> {
    lb.warmup.map(|w| SlowStartConfig {
        slow_start_window: Some(proto_duration(w)),
        ..Default::default()
    })
}

fn is_original_dst(cluster: &Cluster) -> bool {
    cluster.cluster_discovery_type
        == Some(ClusterDiscoveryType::Type(
            DiscoveryType::OriginalDst as i32,
        ))
}

pub fn apply(cluster: &mut Cluster, lb: &LoadBalancer, _port: &ServicePort) {
    if cluster.lb_policy == EnvoyLbPolicy::ClusterProvided as i32 || is_original_dst(cluster) {
        return;
    }
    match &lb.policy {
        LbPolicy::RoundRobin => {
            cluster.lb_policy = EnvoyLbPolicy::RoundRobin as i32;
            cluster.lb_config = slow_start(lb).map(|s| {
                LbConfig::RoundRobinLbConfig(RoundRobinLbConfig {
                    slow_start_config: Some(s),
                })
            });
        }
        LbPolicy::Random => cluster.lb_policy = EnvoyLbPolicy::Random as i32,
        LbPolicy::Passthrough => {
            cluster.lb_policy = EnvoyLbPolicy::ClusterProvided as i32;
            cluster.cluster_discovery_type = Some(ClusterDiscoveryType::Type(
                DiscoveryType::OriginalDst as i32,
            ));
            cluster.eds_cluster_config = None;
            cluster.load_assignment = None;
        }
        LbPolicy::Default | LbPolicy::LeastRequest => {
            cluster.lb_policy = EnvoyLbPolicy::LeastRequest as i32;
            cluster.lb_config = slow_start(lb).map(|s| {
                LbConfig::LeastRequestLbConfig(LeastRequestLbConfig {
                    slow_start_config: Some(s),
                    ..Default::default()
                })
            });
        }
        LbPolicy::ConsistentHash(hash) => match hash.algorithm {
            HashAlgorithm::Maglev { table_size } => {
                cluster.lb_policy = EnvoyLbPolicy::Maglev as i32;
                cluster.lb_config = table_size.map(|t| {
                    LbConfig::MaglevLbConfig(MaglevLbConfig {
                        table_size: Some(UInt64Value { value: t }),
                    })
                });
            }
            HashAlgorithm::RingHash { minimum_ring_size } => {
                cluster.lb_policy = EnvoyLbPolicy::RingHash as i32;
                cluster.lb_config = Some(LbConfig::RingHashLbConfig(RingHashLbConfig {
                    minimum_ring_size: Some(UInt64Value {
                        value: minimum_ring_size.unwrap_or(DEFAULT_MINIMUM_RING_SIZE),
                    }),
                    ..Default::default()
                }));
            }
        },
    }
}

/// What a route hashes requests on for a consistent-hash cluster.
pub fn hash_policy(hash: &ConsistentHash) -> HashPolicy {
    use hash_policy::PolicySpecifier;
    let specifier = match &hash.key {
        HashKey::Header(name) => PolicySpecifier::Header(hash_policy::Header {
            header_name: name.clone(),
            ..Default::default()
        }),
        HashKey::Cookie { name, path, ttl } => PolicySpecifier::Cookie(hash_policy::Cookie {
            name: name.clone(),
            ttl: ttl.map(proto_duration),
            path: path.clone().unwrap_or_default(),
            ..Default::default()
        }),
        HashKey::SourceIp => {
            PolicySpecifier::ConnectionProperties(hash_policy::ConnectionProperties {
                source_ip: true,
            })
        }
        HashKey::QueryParameter(name) => {
            PolicySpecifier::QueryParameter(hash_policy::QueryParameter { name: name.clone() })
        }
    };
    HashPolicy {
        policy_specifier: Some(specifier),
        ..Default::default()
    }
}

fn consistent_hash(lb: Option<&LoadBalancer>) -> Option<&ConsistentHash> {
    match &lb?.policy {
        LbPolicy::ConsistentHash(h) => Some(h),
        _ => None,
    }
}

/// The consistent hash of requests to `subset` (empty: the service as a whole) of `rule`'s
/// host on `port`, chosen as istiod does for a route destination: the subset's port-level
/// setting, else the subset's, else the rule's port-level one, else the rule's own.
pub fn hash_for<'a>(
    rule: &'a DestinationRule,
    subset: &str,
    port: u16,
) -> Option<&'a ConsistentHash> {
    let top = rule.traffic_policy.as_ref();
    let port_level = top.and_then(|p| p.port_level.get(&port));
    let subset_policy = rule
        .subsets
        .iter()
        .find(|s| !subset.is_empty() && s.name == subset)
        .and_then(|s| s.traffic_policy.as_ref());
    let subset_port_level = subset_policy.and_then(|p| p.port_level.get(&port));
    consistent_hash(subset_port_level.and_then(|p| p.load_balancer.as_ref()))
        .or_else(|| consistent_hash(subset_policy.and_then(|p| p.load_balancer.as_ref())))
        .or_else(|| consistent_hash(port_level.and_then(|p| p.load_balancer.as_ref())))
        .or_else(|| consistent_hash(top.and_then(|p| p.load_balancer.as_ref())))
}

/// The hash policies of a route to `subset` of `rule`'s host on `port`: one, or none when
/// no consistent hash applies.
pub fn hash_policies_for(rule: &DestinationRule, subset: &str, port: u16) -> Vec<HashPolicy> {
    hash_for(rule, subset, port)
        .map(hash_policy)
        .into_iter()
        .collect()
}
