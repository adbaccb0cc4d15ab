//! What the DestinationRule istiod would choose for a proxy does to that proxy's
//! resources: the clusters and load assignments of each service port it sees (subsets
//! included, policies applied) and the hash policies of routes to a host.

use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
use envoy_types::pb::envoy::config::listener::v3::Filter;
use envoy_types::pb::envoy::config::route::v3::{route::Action, route_action::HashPolicy, Route};

use super::Scope;
use crate::mesh::traffic::DestinationRule;
use crate::mesh::{Service, ServicePort};
use crate::translate::filter::tcp_proxy::{tcp_proxy_config, tcp_proxy_filter_from};
use crate::translate::subset;
use crate::translate::traffic_policy;
use crate::translate::traffic_policy::load_balancer::hash_policies_for;

impl<'a> Scope<'a> {
    /// The rule that applies to this proxy's traffic to `service`.
    pub fn rule_for_service(&self, service: &Service) -> Option<&'a DestinationRule> {
        self.destination_rule(&service.hostname, Some(&service.key.namespace))
            .map(|r| &**r)
    }

    /// The clusters of one service port: the service's own and one per subset of the rule
    /// that applies, with their traffic policies.
    pub fn service_clusters(&self, service: &Service, port: &ServicePort) -> Vec<Cluster> {
        subset::clusters(
            self.model,
            self.options,
            self.identity,
            service,
            port,
            self.rule_for_service(service),
        )
    }

    /// The load assignments of one service port's EDS clusters (its own and its subsets').
    pub fn service_load_assignments(
        &self,
        service: &Service,
        port: &ServicePort,
    ) -> Vec<ClusterLoadAssignment> {
        let rule = self.rule_for_service(service);
        let mut assignments = subset::load_assignments(self.model, service, port, rule);
        if let (Some(zone), Some(rule)) = (self.zone, rule) {
            super::locality::prioritize(&mut assignments, rule, port.port, zone);
        }
        assignments
    }

    /// A tcp_proxy to `cluster` (of `subset` of `service`, empty for the whole service) with
    /// what the rule that applies puts on it (idle timeout, connection duration, source-IP
    /// hashing).
    pub fn tcp_proxy_filter(&self, service: &Service, cluster: &str, subset: &str) -> Filter {
        let mut config = tcp_proxy_config(cluster);
        if let Some(rule) = self.rule_for_service(service) {
            traffic_policy::tcp_proxy::apply(&mut config, rule, subset);
        }
        tcp_proxy_filter_from(&config)
    }

    /// The hash policies of a route to `subset` (empty: the whole service) of `host` on
    /// `port`: the consistent hash of the rule that applies, as istiod picks it (subset
    /// port-level, subset, port-level, top level); none without one. For the routes
    /// VirtualServices build as well as the default ones.
    pub fn hash_policies(&self, host: &str, subset: &str, port: u16) -> Vec<HashPolicy> {
        let service_namespace = self
            .model
            .service_by_hostname(host)
            .map(|s| s.key.namespace.as_str());
        self.destination_rule(host, service_namespace)
            .map(|rule| hash_policies_for(rule, subset, port))
            .unwrap_or_default()
    }
}

/// Puts `policies` on a route that forwards to a cluster (other routes have no hashing).
pub fn set_hash_policies(route: &mut Route, policies: Vec<HashPolicy>) {
    if let Some(Action::Route(action)) = route.action.as_mut() {
        action.hash_policy = policies;
    }
}
