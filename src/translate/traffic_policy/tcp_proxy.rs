//! The part of a DestinationRule that istiod puts on an outbound `tcp_proxy` rather than on
//! the cluster: `connectionPool.tcp.idleTimeout` and `maxConnectionDuration` (of the rule's
//! top-level policy), and source-IP hashing when the rule (or the subset routed to) hashes
//! on `useSourceIp`.

use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::TcpProxy;
use envoy_types::pb::envoy::r#type::v3::{hash_policy, HashPolicy};

use super::connection_pool::proto_duration;
use crate::mesh::traffic::{DestinationRule, HashKey, LbPolicy, LoadBalancer};

/// `Some(true)` when `lb` hashes on the source IP, `Some(false)` when it balances any
/// other way, `None` when unset.
fn hashes_source_ip(lb: Option<&LoadBalancer>) -> Option<bool> {
    lb.map(|lb| matches!(&lb.policy, LbPolicy::ConsistentHash(h) if h.key == HashKey::SourceIp))
}

/// Applies `rule` to a tcp_proxy forwarding to `subset` (empty: the whole service).
pub fn apply(tcp: &mut TcpProxy, rule: &DestinationRule, subset: &str) {
    let top = rule.traffic_policy.as_ref();
    let tcp_pool = top.and_then(|p| p.connection_pool.as_ref());
    if let Some(idle) = tcp_pool.and_then(|p| p.tcp_idle_timeout) {
        tcp.idle_timeout = Some(proto_duration(idle));
    }
    if let Some(d) = tcp_pool.and_then(|p| p.max_connection_duration) {
        tcp.max_downstream_connection_duration = Some(proto_duration(d));
    }
    let mut source_ip =
        hashes_source_ip(top.and_then(|p| p.load_balancer.as_ref())).unwrap_or(false);
    // A subset's own load balancer decides, whatever kind it is.
    if let Some(lb) = rule
        .subsets
        .iter()
        .find(|s| !subset.is_empty() && s.name == subset)
        .and_then(|s| s.traffic_policy.as_ref())
        .and_then(|p| p.load_balancer.as_ref())
    {
        source_ip = hashes_source_ip(Some(lb)).unwrap_or(false);
    }
    if source_ip {
        tcp.hash_policy = vec![HashPolicy {
            policy_specifier: Some(hash_policy::PolicySpecifier::SourceIp(
                hash_policy::SourceIp {},
            )),
        }];
    }
}
