//! A DestinationRule's traffic policy applied to one outbound cluster, as istiod does it:
//! which policy applies to a port and subset (`effective_policy`), then the parts in
//! istiod's order (`apply`): HTTP/2 upgrade, connection pool, outlier detection, load
//! balancer, client TLS. Each part lives in a file of its own; all are pure functions of
//! the model's policy types.

pub mod connection_pool;
pub mod load_balancer;
pub mod outlier;
pub mod tcp_proxy;
pub mod tls;

#[cfg(test)]
mod tests;

use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::core::v3::Http1ProtocolOptions;
use envoy_types::pb::envoy::extensions::upstreams::http::v3::{
    http_protocol_options::{
        explicit_http_config::ProtocolConfig, ExplicitHttpConfig, UpstreamProtocolOptions,
    },
    HttpProtocolOptions,
};
use prost::Message;

use super::cluster::HTTP_PROTOCOL_OPTIONS_KEY;
use super::filter::any;
use crate::mesh::traffic::{DestinationRule, PortPolicy, Subset, TrafficPolicy};
use crate::mesh::ServicePort;

/// The policy of `policy` for `port`: its port-level settings when it has some for that
/// port (they replace the whole policy: fields they leave out take defaults, not the
/// top-level values), else the top level. The flag says whether port-level settings applied.
fn for_port(policy: &TrafficPolicy, port: u16) -> (PortPolicy, bool) {
    match policy.port_level.get(&port) {
        Some(p) => (p.clone(), true),
        None => (
            PortPolicy {
                load_balancer: policy.load_balancer.clone(),
                connection_pool: policy.connection_pool.clone(),
                outlier_detection: policy.outlier_detection.clone(),
                tls: policy.tls.clone(),
            },
            false,
        ),
    }
}

/// The policy a cluster of `rule` for `port` (and `subset`, if any) gets, merged as istiod
/// merges it: the rule's policy for the port, then the subset's policy for the port over it,
/// part by part. When the subset has port-level settings for the port, all four parts come
/// from them (unset ones reset to defaults).
pub fn effective_policy(
    rule: Option<&DestinationRule>,
    subset: Option<&Subset>,
    port: u16,
) -> PortPolicy {
    let base = rule
        .and_then(|r| r.traffic_policy.as_ref())
        .map(|p| for_port(p, port).0);
    let Some(subset_policy) = subset.and_then(|s| s.traffic_policy.as_ref()) else {
        return base.unwrap_or_default();
    };
    let (sub, port_level) = for_port(subset_policy, port);
    let Some(mut merged) = base else {
        return sub;
    };
    if sub.connection_pool.is_some() || port_level {
        merged.connection_pool = sub.connection_pool;
    }
    if sub.outlier_detection.is_some() || port_level {
        merged.outlier_detection = sub.outlier_detection;
    }
    if sub.load_balancer.is_some() || port_level {
        merged.load_balancer = sub.load_balancer;
    }
    if sub.tls.is_some() || port_level {
        merged.tls = sub.tls;
    }
    merged
}

/// The cluster's upstream HTTP options, decoded so the parts can change them.
fn http_options(cluster: &Cluster) -> Option<HttpProtocolOptions> {
    cluster
        .typed_extension_protocol_options
        .get(HTTP_PROTOCOL_OPTIONS_KEY)
        .map(|a| HttpProtocolOptions::decode(&a.value[..]).expect("meshd encoded these options"))
}

/// Applies `policy` to an outbound cluster built for `port` (named, discovery type and
/// protocol options already set). A default policy leaves the cluster as it is, which is
/// what istiod's defaults give.
pub fn apply(cluster: &mut Cluster, policy: &PortPolicy, port: &ServicePort) {
    let mut options = http_options(cluster);
    if let Some(pool) = &policy.connection_pool {
        connection_pool::apply_h2_upgrade(&mut options, pool);
        connection_pool::apply(cluster, &mut options, pool);
    }
    if let Some(outlier) = &policy.outlier_detection {
        outlier::apply(cluster, outlier);
    }
    if let Some(lb) = &policy.load_balancer {
        load_balancer::apply(cluster, lb, port);
    }
    if let Some(client_tls) = &policy.tls {
        tls::apply(cluster, &mut options, client_tls);
    }
    match options {
        Some(mut o) => {
            // Envoy requires an upstream protocol; istiod makes it HTTP/1.1 when nothing
            // above chose one.
            if o.upstream_protocol_options.is_none() {
                o.upstream_protocol_options = Some(UpstreamProtocolOptions::ExplicitHttpConfig(
                    ExplicitHttpConfig {
                        protocol_config: Some(ProtocolConfig::HttpProtocolOptions(
                            Http1ProtocolOptions::default(),
                        )),
                    },
                ));
            }
            cluster
                .typed_extension_protocol_options
                .insert(HTTP_PROTOCOL_OPTIONS_KEY.to_string(), any(&o));
        }
        None => {
            cluster
                .typed_extension_protocol_options
                .remove(HTTP_PROTOCOL_OPTIONS_KEY);
        }
    }
}
