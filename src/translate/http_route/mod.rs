//! VirtualService HTTP routes as Envoy routes, built as istiod builds them for one
//! listener port and one proxy (a sidecar, or a gateway named by `GatewayRef`): one Envoy
//! route per match block (blocks OR-ed, fields AND-ed), the routes of a delegate merged
//! under the parent's matches, and everything after the first catch-all route left out
//! (Envoy would never reach it).
//!
//! One file per concern: `matching` (matches, source checks), `action` (destinations,
//! weights, timeout), `retry`, `fault`, `mirror`, `cors`, `headers`, `redirect` (redirect
//! and direct response), `rewrite`, `delegate`, `operation` (decorator and metadata);
//! `vhost` decides which virtual hosts VirtualServices give an outbound port, and `scoped`
//! holds the entry points taking a proxy's `Scope`.

mod action;
mod cors;
mod delegate;
mod fault;
mod headers;
mod matching;
mod mirror;
mod operation;
mod redirect;
mod retry;
mod rewrite;
mod scoped;
#[cfg(test)]
mod tests;
pub mod vhost;

use std::collections::BTreeMap;

use envoy_types::pb::envoy::config::route::v3::route::Action;
use envoy_types::pb::envoy::config::route::v3::route_action::HashPolicy;
use envoy_types::pb::envoy::config::route::v3::{Route, RouteAction};

use crate::mesh::traffic::{GatewayRef, HttpAction, HttpMatch, HttpRoute, VirtualService};
use crate::mesh::MeshModel;

pub use matching::is_catch_all;
pub use scoped::{outbound_virtual_hosts, virtual_host_routes};

/// What building routes needs to know beyond the VirtualService: the mesh (services for
/// destination ports, delegates), the proxy the routes are for, and where they will be
/// served.
pub struct RouteContext<'a> {
    pub model: &'a MeshModel,
    /// The proxy's namespace, for `sourceNamespace`.
    pub proxy_namespace: &'a str,
    /// The proxy's workload labels, for `sourceLabels`.
    pub proxy_labels: &'a BTreeMap<String, String>,
    /// `Mesh` for sidecars; a gateway's own key for gateway proxies.
    pub gateway: &'a GatewayRef,
    /// The consistent-hash policies of the DestinationRule for (host, subset, port), when
    /// it has any.
    pub hash_policies: &'a dyn Fn(&str, &str, u16) -> Vec<HashPolicy>,
}

impl RouteContext<'_> {
    fn is_gateway(&self) -> bool {
        matches!(self.gateway, GatewayRef::Gateway(_))
    }
}

/// No consistent hashing anywhere (for callers without DestinationRules).
pub fn no_hash_policies(_: &str, _: &str, _: u16) -> Vec<HashPolicy> {
    Vec::new()
}

/// The Envoy routes of `vs` for requests arriving on `port`, in order. Empty when no
/// match applies to this proxy and port.
pub fn build_routes(ctx: &RouteContext, vs: &VirtualService, port: u16) -> Vec<Route> {
    let http = delegate::merged_http_routes(ctx.model, vs);
    let mut out = Vec::with_capacity(http.len());
    for route in http.iter() {
        if route.matches.is_empty() {
            out.extend(translate_route(ctx, vs, route, None, port));
            // Matches everything: later routes are unreachable.
            break;
        }
        let mut catch_all = false;
        for m in &route.matches {
            if let Some(r) = translate_route(ctx, vs, route, Some(m), port) {
                catch_all = is_catch_all(&r);
                out.push(r);
                if catch_all {
                    break;
                }
            }
        }
        if catch_all {
            break;
        }
    }
    out
}

/// One Envoy route for one match block of `route` (or for every request when `m` is
/// `None`); `None` when the block's port or source does not fit this port and proxy.
fn translate_route(
    ctx: &RouteContext,
    vs: &VirtualService,
    route: &HttpRoute,
    m: Option<&HttpMatch>,
    port: u16,
) -> Option<Route> {
    if let Some(m) = m {
        if m.port.is_some_and(|p| p != port) || !matching::source_matches(ctx, m) {
            return None;
        }
    }
    let name = match (route.name.as_deref(), m.and_then(|m| m.name.as_deref())) {
        (Some(r), Some(n)) => format!("{r}.{n}"),
        (None, Some(n)) => format!(".{n}"),
        (r, None) => r.unwrap_or_default().to_string(),
    };
    let route_headers = headers::operations(&route.headers);
    let mut out = Route {
        name,
        r#match: Some(matching::route_match(m)),
        metadata: Some(operation::config_metadata(&vs.key)),
        request_headers_to_add: route_headers.request_add,
        request_headers_to_remove: route_headers.request_remove,
        response_headers_to_add: route_headers.response_add,
        response_headers_to_remove: route_headers.response_remove,
        ..Default::default()
    };
    out.action = Some(match &route.action {
        HttpAction::Redirect(r) => Action::Redirect(redirect::redirect_action(r, port)),
        HttpAction::DirectResponse { status, body } => {
            Action::DirectResponse(redirect::direct_response(*status, body.as_deref()))
        }
        HttpAction::Route(destinations) => {
            let mut action = RouteAction::default();
            action::set_timeout(&mut action, route.timeout);
            let authority =
                rewrite::apply(&mut action, route.rewrite.as_ref()).or(route_headers.authority);
            if let Some(authority) = authority {
                action.host_rewrite_specifier = Some(rewrite::host_literal(authority));
            }
            action.request_mirror_policies = route
                .mirrors
                .iter()
                .filter_map(|mirror| mirror::mirror_policy(ctx, mirror, port))
                .collect();
            let consistent_hash =
                action::set_destinations(ctx, &mut out, &mut action, destinations, port);
            action.retry_policy = retry::retry_policy(route.retries.as_ref(), consistent_hash);
            Action::Route(action)
        }
        // A delegate's routes are merged in before this point; a delegate that is missing
        // (or itself delegates) leaves nothing to serve.
        HttpAction::Delegate(_) => return None,
    });
    out.decorator = Some(operation::decorator(&out, &vs.key.name, port));
    let mut per_filter = BTreeMap::new();
    if let Some(fault) = route.fault.as_ref().and_then(fault::http_fault) {
        per_filter.insert(
            crate::translate::filter::fault::NAME.to_string(),
            crate::translate::filter::any(&fault),
        );
    }
    if let Some(cors) = &route.cors {
        per_filter.insert(
            crate::translate::filter::cors::NAME.to_string(),
            crate::translate::filter::any(&cors::cors_policy(cors)),
        );
    }
    out.typed_per_filter_config = per_filter.into_iter().collect();
    Some(out)
}
