//! The gateway's placeholder for `virtual_host_routes`, kept while the full translation in
//! the sibling modules is being wired in.
//!
//! Placeholder until the VirtualService translation lands: it knows only uri exact and
//! prefix matches (other match fields make a block that matches nothing, so a rule never
//! catches more than it asked for), weighted destinations to
//! `outbound|<port>|<subset>|<fqdn>`, no timeout and Istio's default retries. Match blocks
//! bound to other gateways are left out, as istiod does.

use envoy_types::pb::envoy::config::route::v3::{
    route::Action, route_action::ClusterSpecifier, route_match::PathSpecifier,
    weighted_cluster::ClusterWeight, Route, RouteAction, RouteMatch, WeightedCluster,
};
use envoy_types::pb::google::protobuf::{Duration, UInt32Value};

use crate::mesh::traffic::{
    GatewayRef, HttpAction, HttpMatch, StringMatch, VirtualService, WeightedDestination,
};
use crate::translate::naming;
use crate::translate::route::default_retry_policy;
use crate::translate::scope::Scope;

/// The routes of `vs` for traffic on `port` through `context` (`mesh` or a Gateway).
pub fn virtual_host_routes(
    scope: &Scope,
    vs: &VirtualService,
    port: u16,
    context: &GatewayRef,
) -> Vec<Route> {
    let mut out = Vec::new();
    for (i, rule) in vs.http.iter().enumerate() {
        let HttpAction::Route(destinations) = &rule.action else {
            continue;
        };
        let Some(action) = route_action(scope, destinations, port) else {
            continue;
        };
        let matches: Vec<&HttpMatch> = rule
            .matches
            .iter()
            .filter(|m| m.gateways.is_empty() || m.gateways.contains(context))
            .collect();
        if !rule.matches.is_empty() && matches.is_empty() {
            continue;
        }
        let name = rule
            .name
            .clone()
            .unwrap_or_else(|| format!("{}.{i}", vs.key.name));
        let route_matches: Vec<RouteMatch> = if matches.is_empty() {
            vec![prefix("/")]
        } else {
            matches.iter().filter_map(|m| route_match(m)).collect()
        };
        for m in route_matches {
            out.push(Route {
                name: name.clone(),
                r#match: Some(m),
                action: Some(Action::Route(action.clone())),
                ..Default::default()
            });
        }
    }
    out
}

fn prefix(p: &str) -> RouteMatch {
    RouteMatch {
        path_specifier: Some(PathSpecifier::Prefix(p.to_string())),
        ..Default::default()
    }
}

fn route_match(m: &HttpMatch) -> Option<RouteMatch> {
    let only_uri = HttpMatch {
        uri: m.uri.clone(),
        gateways: m.gateways.clone(),
        name: m.name.clone(),
        ..Default::default()
    };
    if *m != only_uri {
        return None;
    }
    Some(match &m.uri {
        None => prefix("/"),
        Some(StringMatch::Prefix(p)) => prefix(p),
        Some(StringMatch::Exact(p)) => RouteMatch {
            path_specifier: Some(PathSpecifier::Path(p.clone())),
            ..Default::default()
        },
        Some(StringMatch::Regex(_)) => return None,
    })
}

fn cluster(scope: &Scope, d: &WeightedDestination, listener_port: u16) -> String {
    let dest = &d.destination;
    let port = dest.port.unwrap_or_else(|| {
        scope
            .model
            .service_by_hostname(&dest.host)
            .filter(|s| s.ports.len() == 1)
            .map(|s| s.ports[0].port)
            .unwrap_or(listener_port)
    });
    naming::outbound_cluster(port, dest.subset.as_deref().unwrap_or(""), &dest.host)
}

fn route_action(
    scope: &Scope,
    destinations: &[WeightedDestination],
    port: u16,
) -> Option<RouteAction> {
    let specifier = match destinations {
        [] => return None,
        [single] => ClusterSpecifier::Cluster(cluster(scope, single, port)),
        many => ClusterSpecifier::WeightedClusters(WeightedCluster {
            clusters: many
                .iter()
                .filter(|d| d.weight > 0)
                .map(|d| ClusterWeight {
                    name: cluster(scope, d, port),
                    weight: Some(UInt32Value { value: d.weight }),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }),
    };
    Some(RouteAction {
        cluster_specifier: Some(specifier),
        timeout: Some(Duration::default()),
        retry_policy: Some(default_retry_policy()),
        ..Default::default()
    })
}
