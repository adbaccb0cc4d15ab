//! Istio's AuthorizationPolicy and RequestAuthentication on a sidecar's inbound listener,
//! through stock Envoy filters only: `jwt_authn` then one `rbac` filter per action (AUDIT,
//! DENY, ALLOW, in istiod's order) at the head of every inbound HTTP connection manager, and
//! one network `rbac` filter per action before `tcp_proxy` on TCP chains (the passthrough
//! chain included, as istiod does). So DENY is evaluated before ALLOW, a workload with no
//! ALLOW policy allows, and an ALLOW policy without rules denies everything.
//!
//! Applied after `virtualInbound` is built, to whichever chains it has, so the listener
//! builders stay unaware of security; `gateway` does the same for a router's listeners.

pub mod gateway;
pub mod jwt;
pub mod matchers;
pub mod rbac;

#[cfg(test)]
mod tests;

use envoy_types::pb::envoy::config::listener::v3::{filter, Filter, FilterChain, Listener};
use envoy_types::pb::envoy::extensions::filters::http::rbac::v3::Rbac as HttpRbac;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    http_filter, HttpConnectionManager, HttpFilter,
};
use envoy_types::pb::envoy::extensions::filters::network::rbac::v3::Rbac as NetworkRbac;
use prost::Message;

use crate::mesh::security::{AuthorizationPolicy, AuthzAction, WorkloadSecurity};
use crate::mesh::MeshModel;
use crate::translate::filter::{any, hcm, tcp_proxy};

pub const HTTP_RBAC: &str = "envoy.filters.http.rbac";
pub const NETWORK_RBAC: &str = "envoy.filters.network.rbac";
/// istiod's stat prefix of network RBAC filters.
pub const TCP_STAT_PREFIX: &str = "tcp.";

/// istiod's order of the RBAC filters.
const ORDER: [AuthzAction; 3] = [AuthzAction::Audit, AuthzAction::Deny, AuthzAction::Allow];

/// The HTTP filters to put first in an inbound connection manager.
pub fn http_filters(model: &MeshModel, security: &WorkloadSecurity) -> Vec<HttpFilter> {
    let authns: Vec<_> = security.authentication.iter().map(|a| &**a).collect();
    let mut out: Vec<HttpFilter> = jwt::jwt_authn(model, &authns)
        .map(|c| jwt::jwt_authn_filter(&c))
        .into_iter()
        .collect();
    let policies: Vec<&AuthorizationPolicy> = security.authorization.iter().map(|p| &**p).collect();
    for action in ORDER {
        let Some(r) = rbac::action_rules(&policies, action, false) else {
            continue;
        };
        let config = HttpRbac {
            shadow_rules_stat_prefix: if r.shadow_rules.is_some() {
                rbac::shadow_stat_prefix(action).to_string()
            } else {
                String::new()
            },
            rules: r.rules,
            shadow_rules: r.shadow_rules,
            ..Default::default()
        };
        out.push(HttpFilter {
            name: HTTP_RBAC.to_string(),
            config_type: Some(http_filter::ConfigType::TypedConfig(any(&config))),
            ..Default::default()
        });
    }
    out
}

/// The network filters to put before `tcp_proxy`.
pub fn network_filters(security: &WorkloadSecurity) -> Vec<Filter> {
    let policies: Vec<&AuthorizationPolicy> = security.authorization.iter().map(|p| &**p).collect();
    let mut out = Vec::new();
    for action in ORDER {
        let Some(r) = rbac::action_rules(&policies, action, true) else {
            continue;
        };
        let config = NetworkRbac {
            stat_prefix: TCP_STAT_PREFIX.to_string(),
            shadow_rules_stat_prefix: if r.shadow_rules.is_some() {
                rbac::shadow_stat_prefix(action).to_string()
            } else {
                String::new()
            },
            rules: r.rules,
            shadow_rules: r.shadow_rules,
            ..Default::default()
        };
        out.push(Filter {
            name: NETWORK_RBAC.to_string(),
            config_type: Some(filter::ConfigType::TypedConfig(any(&config))),
        });
    }
    out
}

fn secure_chain(chain: &mut FilterChain, http: &[HttpFilter], tcp: &[Filter]) {
    for i in 0..chain.filters.len() {
        let f = &mut chain.filters[i];
        if f.name == hcm::NAME && !http.is_empty() {
            let Some(filter::ConfigType::TypedConfig(config)) = &f.config_type else {
                continue;
            };
            let Ok(mut manager) = HttpConnectionManager::decode(config.value.as_slice()) else {
                continue;
            };
            manager.http_filters.splice(0..0, http.iter().cloned());
            f.config_type = Some(filter::ConfigType::TypedConfig(any(&manager)));
            return;
        }
        if f.name == tcp_proxy::NAME && !tcp.is_empty() {
            chain.filters.splice(i..i, tcp.iter().cloned());
            return;
        }
    }
}

/// Adds the workload's security filters to every chain of its `virtualInbound` listener
/// but the blackhole one (whose connections go nowhere anyway).
pub fn secure_inbound(
    listener: &mut Listener,
    model: &MeshModel,
    security: &WorkloadSecurity,
    skip_chain: &str,
) {
    if security.is_empty() {
        return;
    }
    let http = http_filters(model, security);
    let tcp = network_filters(security);
    for chain in listener
        .filter_chains
        .iter_mut()
        .chain(listener.default_filter_chain.as_mut())
    {
        if chain.name != skip_chain {
            secure_chain(chain, &http, &tcp);
        }
    }
}
