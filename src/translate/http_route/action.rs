//! The forwarding part of a route action: the timeout and the destinations, one cluster or
//! weighted clusters named `outbound|<port>|<subset>|<fqdn>`, with per-destination header
//! changes and consistent-hash policies.

use envoy_types::pb::envoy::config::route::v3::{
    route_action::{ClusterSpecifier, HostRewriteSpecifier},
    weighted_cluster::{cluster_weight, ClusterWeight},
    Route, RouteAction, WeightedCluster,
};
use envoy_types::pb::google::protobuf::{Duration as ProtoDuration, UInt32Value};

use super::{headers, RouteContext};
use crate::mesh::traffic::{Destination, WeightedDestination};
use crate::translate::naming;

pub(super) fn proto_duration(d: std::time::Duration) -> ProtoDuration {
    ProtoDuration {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos() as i32,
    }
}

/// The route's timeout (none, `0s`, unless set) and the same cap on `grpc-timeout`, as
/// istiod sets them (it keeps the deprecated `max_grpc_timeout` for sidecars).
#[allow(deprecated)]
pub(super) fn set_timeout(action: &mut RouteAction, timeout: Option<std::time::Duration>) {
    let t = proto_duration(timeout.unwrap_or_default());
    action.timeout = Some(t);
    action.max_grpc_timeout = Some(t);
}

/// The port of a destination: its own, else the port the request came in on. A gateway
/// also takes the only port of a single-port service (istiod's sidecars see services
/// narrowed to the listener port, where that rule gives the listener port anyway).
pub(super) fn destination_port(ctx: &RouteContext, dest: &Destination, listener_port: u16) -> u16 {
    if let Some(p) = dest.port {
        return p;
    }
    if ctx.is_gateway() {
        if let Some(service) = ctx.model.service_by_hostname(&dest.host) {
            if let [only] = service.ports.as_slice() {
                return only.port;
            }
        }
    }
    listener_port
}

pub(super) fn cluster_name(ctx: &RouteContext, dest: &Destination, listener_port: u16) -> String {
    naming::outbound_cluster(
        destination_port(ctx, dest, listener_port),
        dest.subset.as_deref().unwrap_or(""),
        &dest.host,
    )
}

/// Sets the clusters of `action` (and header changes of a lone destination on `route`).
/// Returns whether the route goes to one destination with consistent hashing, which
/// changes its default retry policy.
pub(super) fn set_destinations(
    ctx: &RouteContext,
    route: &mut Route,
    action: &mut RouteAction,
    destinations: &[WeightedDestination],
    port: u16,
) -> bool {
    let hash_of = |d: &Destination| {
        (ctx.hash_policies)(
            &d.host,
            d.subset.as_deref().unwrap_or(""),
            destination_port(ctx, d, port),
        )
    };
    if let [only] = destinations {
        action.cluster_specifier = Some(ClusterSpecifier::Cluster(cluster_name(
            ctx,
            &only.destination,
            port,
        )));
        let ops = headers::operations(&only.headers);
        route.request_headers_to_add.extend(ops.request_add);
        route.request_headers_to_remove.extend(ops.request_remove);
        route.response_headers_to_add.extend(ops.response_add);
        route.response_headers_to_remove.extend(ops.response_remove);
        // The route's own rewrite wins, so that one destination and several behave alike.
        if let (Some(authority), None) = (ops.authority, &action.host_rewrite_specifier) {
            action.host_rewrite_specifier =
                Some(HostRewriteSpecifier::HostRewriteLiteral(authority));
        }
        let hash = hash_of(&only.destination);
        let consistent = !hash.is_empty();
        action.hash_policy.extend(hash);
        return consistent;
    }
    let mut clusters = Vec::with_capacity(destinations.len());
    // Zero-weight destinations get no traffic; Envoy is not told about them.
    for d in destinations.iter().filter(|d| d.weight > 0) {
        let ops = headers::operations(&d.headers);
        clusters.push(ClusterWeight {
            name: cluster_name(ctx, &d.destination, port),
            weight: Some(UInt32Value { value: d.weight }),
            request_headers_to_add: ops.request_add,
            request_headers_to_remove: ops.request_remove,
            response_headers_to_add: ops.response_add,
            response_headers_to_remove: ops.response_remove,
            host_rewrite_specifier: ops
                .authority
                .map(cluster_weight::HostRewriteSpecifier::HostRewriteLiteral),
            ..Default::default()
        });
        action.hash_policy.extend(hash_of(&d.destination));
    }
    action.cluster_specifier = Some(ClusterSpecifier::WeightedClusters(WeightedCluster {
        clusters,
        ..Default::default()
    }));
    false
}
