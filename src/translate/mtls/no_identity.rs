//! What mesh mTLS becomes for a proxy that holds no workload certificate: one whose xDS
//! stream proved no identity (the plaintext port 15010). Such a proxy gets no SDS reference
//! at all (a listener or cluster waiting for a secret that never comes would never warm),
//! and wherever policy asks for mTLS it fails closed instead of quietly going plaintext:
//!
//! - PeerAuthentication PERMISSIVE or DISABLE: plaintext chains (what PERMISSIVE accepts
//!   from plaintext clients anyway).
//! - PeerAuthentication STRICT: the port's chain refuses every connection (a network RBAC
//!   filter that allows nothing), as would a sidecar whose mTLS handshake no plaintext
//!   client can complete. Serving plaintext there would break the policy's promise that the
//!   workload is only reached over mTLS.
//! - DestinationRule ISTIO_MUTUAL: the cluster allows no connection (circuit breakers at
//!   zero), so requests fail (503, `upstream_cx_overflow`) rather than leave in plaintext to
//!   a server whose identity the rule wants verified.
//! - Automatic mTLS: plaintext to every endpoint.
//!
//! `Translator::identity_problems` says which of these apply to a proxy, for the warning
//! the generator logs.

use std::collections::BTreeSet;

use envoy_types::pb::envoy::config::cluster::v3::{
    circuit_breakers::Thresholds, CircuitBreakers, Cluster,
};
use envoy_types::pb::envoy::config::listener::v3::{filter, Filter, FilterChain};
use envoy_types::pb::envoy::config::rbac::v3::{rbac::Action, Rbac};
use envoy_types::pb::envoy::extensions::filters::network::rbac::v3::Rbac as NetworkRbac;
use envoy_types::pb::google::protobuf::UInt32Value;

use super::inbound::{variants as mtls_variants, Variant};
use crate::mesh::peer_authentication::{self, InboundMtls, MtlsMode};
use crate::mesh::traffic::{ClientTls, DestinationRule, TlsMode};
use crate::mesh::{ProxyId, ProxyType};
use crate::translate::authz::NETWORK_RBAC;
use crate::translate::filter::any;
use crate::translate::{cached_bounded, Translator, MAX_SCOPES};

/// Stat prefix of the filter that refuses connections to STRICT ports.
pub const REFUSED_STAT_PREFIX: &str = "strict_mtls_without_certificate.";

/// The modes a proxy without certificate enforces: STRICT stays (and refuses), everything
/// else is plaintext. Proxies whose policies differ only in PERMISSIVE vs DISABLE share parts.
pub fn inbound_modes(modes: InboundMtls) -> InboundMtls {
    let plain = |m: MtlsMode| match m {
        MtlsMode::Strict => MtlsMode::Strict,
        _ => MtlsMode::Disable,
    };
    InboundMtls {
        default: plain(modes.default),
        ports: modes
            .ports
            .into_iter()
            .map(|(p, m)| (p, plain(m)))
            .collect(),
    }
}

/// The chains of a target port under `mode` for a proxy without certificate: one chain
/// marked `mtls` (to be refused, see `refuse`) for STRICT, else the plaintext ones.
pub fn variants(mode: MtlsMode, protocol: crate::mesh::Protocol) -> Vec<Variant> {
    if mode == MtlsMode::Strict {
        return vec![Variant {
            transport_protocol: "",
            application_protocols: Vec::new(),
            mtls: true,
            http: false,
        }];
    }
    mtls_variants(MtlsMode::Disable, protocol)
}

/// Makes `chain` refuse every connection: no TLS (no secret to serve), and an RBAC filter
/// that allows nothing first.
pub fn refuse(chain: &mut FilterChain) {
    chain.transport_socket = None;
    let config = NetworkRbac {
        stat_prefix: REFUSED_STAT_PREFIX.to_string(),
        // ALLOW with no policy: nothing is allowed.
        rules: Some(Rbac {
            action: Action::Allow as i32,
            ..Default::default()
        }),
        ..Default::default()
    };
    chain.filters.insert(
        0,
        Filter {
            name: NETWORK_RBAC.to_string(),
            config_type: Some(filter::ConfigType::TypedConfig(any(&config))),
        },
    );
}

/// Makes an ISTIO_MUTUAL cluster allow no connection, request or retry, with no TLS.
pub fn fail_closed(cluster: &mut Cluster) {
    cluster.transport_socket = None;
    cluster.transport_socket_matches.clear();
    let zero = Some(UInt32Value { value: 0 });
    cluster.circuit_breakers = Some(CircuitBreakers {
        thresholds: vec![Thresholds {
            max_connections: zero,
            max_pending_requests: zero,
            max_requests: zero,
            max_retries: zero,
            ..Default::default()
        }],
        ..Default::default()
    });
}

fn istio_mutual(tls: &Option<ClientTls>) -> bool {
    tls.as_ref().is_some_and(|t| t.mode == TlsMode::IstioMutual)
}

/// Whether some policy of the rule (its own, a port's, a subset's) asks for ISTIO_MUTUAL.
fn asks_istio_mutual(rule: &DestinationRule) -> bool {
    let policies = rule.traffic_policy.iter().chain(
        rule.subsets
            .iter()
            .filter_map(|s| s.traffic_policy.as_ref()),
    );
    policies
        .into_iter()
        .any(|p| istio_mutual(&p.tls) || p.port_level.values().any(|pp| istio_mutual(&pp.tls)))
}

impl Translator {
    /// What mTLS policy cannot do for `proxy` because it holds no certificate, one message
    /// each; empty when it holds one or nothing asks for mTLS.
    pub fn identity_problems(&self, proxy: &ProxyId) -> Vec<String> {
        if proxy.identity.is_some() {
            return Vec::new();
        }
        let (key, labels) = self.scope_key(proxy);
        let mut out = Vec::new();
        if proxy.proxy_type == ProxyType::Sidecar {
            let modes = peer_authentication::inbound_mtls(
                &self.model,
                &self.options.root_namespace,
                &proxy.namespace,
                &labels,
            );
            let strict: Vec<String> = self
                .inbound_ports(proxy)
                .keys()
                .filter(|p| modes.mode(**p) == MtlsMode::Strict)
                .map(|p| p.to_string())
                .collect();
            if !strict.is_empty() || modes.default == MtlsMode::Strict {
                let ports = if strict.is_empty() {
                    "unlisted ports".to_string()
                } else {
                    format!("ports {}", strict.join(", "))
                };
                out.push(format!(
                    "PeerAuthentication STRICT applies to {ports}, but the proxy has no workload \
                     certificate (its xDS stream is not authenticated): those ports refuse every \
                     connection; bootstrap it on the secure xDS port (15012) with a token"
                ));
            }
        }
        // The same for every proxy of the scope, and a walk over every visible service:
        // once per scope and generation.
        let rules = cached_bounded(&self.istio_mutual_rules, &key, MAX_SCOPES, || {
            let scope = self.scope(&key, &labels);
            let rules: BTreeSet<String> = scope
                .services()
                .filter_map(|s| scope.rule_for_service(s))
                .filter(|r| asks_istio_mutual(r))
                .map(|r| format!("{}/{}", r.key.namespace, r.key.name))
                .collect();
            rules.into_iter().collect()
        });
        for rule in rules.iter() {
            out.push(format!(
                "DestinationRule {rule}: trafficPolicy.tls.mode ISTIO_MUTUAL needs a workload \
                 certificate the proxy does not have (its xDS stream is not authenticated): its \
                 clusters refuse every connection"
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_strict_survives_without_a_certificate() {
        let modes = InboundMtls {
            default: MtlsMode::Permissive,
            ports: [(80, MtlsMode::Strict), (81, MtlsMode::Permissive)].into(),
        };
        let plain = inbound_modes(modes);
        assert_eq!(plain.default, MtlsMode::Disable);
        assert_eq!(plain.mode(80), MtlsMode::Strict);
        assert_eq!(plain.mode(81), MtlsMode::Disable);
    }

    #[test]
    fn a_refused_chain_has_no_tls_and_denies_first() {
        let mut chain = FilterChain {
            filters: vec![crate::translate::filter::tcp_proxy::tcp_proxy_filter("x")],
            transport_socket: Some(super::super::inbound::downstream_socket()),
            ..Default::default()
        };
        refuse(&mut chain);
        assert!(chain.transport_socket.is_none());
        assert_eq!(chain.filters[0].name, NETWORK_RBAC);
        assert_eq!(chain.filters.len(), 2);
    }
}
