//! `mirror` / `mirrors`: copies of requests sent, fire and forget, to other clusters, each
//! for a percentage of requests.

use envoy_types::pb::envoy::config::core::v3::RuntimeFractionalPercent;
use envoy_types::pb::envoy::config::route::v3::route_action::RequestMirrorPolicy;
use envoy_types::pb::google::protobuf::BoolValue;

use super::action::cluster_name;
use super::fault::fraction;
use super::RouteContext;
use crate::mesh::traffic::Mirror;

/// The mirror policy of one mirror; `None` for 0% (istiod mirrors nothing then).
pub(super) fn mirror_policy(
    ctx: &RouteContext,
    mirror: &Mirror,
    port: u16,
) -> Option<RequestMirrorPolicy> {
    if mirror.percent <= 0.0 {
        return None;
    }
    Some(RequestMirrorPolicy {
        cluster: cluster_name(ctx, &mirror.destination, port),
        runtime_fraction: Some(RuntimeFractionalPercent {
            default_value: Some(fraction(mirror.percent)),
            ..Default::default()
        }),
        // Shadows do not start traces of their own.
        trace_sampled: Some(BoolValue { value: false }),
        ..Default::default()
    })
}
