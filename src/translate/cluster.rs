//! Clusters: one EDS cluster per outbound service port, the inbound clusters of the
//! proxy's workload, and Istio's fixed clusters (passthrough, inbound passthrough,
//! blackhole).
//!
//! Inbound clusters are ORIGINAL_DST, as in Istio: the `original_dst` listener filter on
//! `virtualInbound` has restored the pod address the client dialled, and Envoy connects
//! there from 127.0.0.6. With Istio-style iptables capture (Envoy as uid 1337 exempt,
//! plus the `-s 127.0.0.6 -o lo -j RETURN` rule) that connection is not redirected again.
//! ORIGINAL_DST also makes the cluster independent of the workload's IP, so proxies with
//! the same inbound ports share the encoded clusters.
//!
//! Every cluster that carries traffic gets Istio's never-tripping circuit breakers, and
//! `PassthroughCluster` speaks upstream the HTTP version the client spoke. Every cluster
//! gets istiod's `alt_stat_name` (`<name>;`), which with Istio's stats tag rules keeps the
//! whole cluster name as the `cluster_name` label.

pub mod resolution;
pub mod sniffed;

use std::collections::HashMap;

use envoy_types::pb::envoy::config::cluster::v3::{
    circuit_breakers::Thresholds,
    cluster::{ClusterDiscoveryType, CommonLbConfig, DiscoveryType, EdsClusterConfig, LbPolicy},
    CircuitBreakers, Cluster,
};
use envoy_types::pb::envoy::config::core::v3::{
    BindConfig, Http2ProtocolOptions, HttpProtocolOptions as CommonHttpProtocolOptions,
    RoutingPriority,
};
use envoy_types::pb::envoy::extensions::upstreams::http::v3::{
    http_protocol_options::{
        explicit_http_config::ProtocolConfig, ExplicitHttpConfig, UpstreamProtocolOptions,
    },
    HttpProtocolOptions,
};
use envoy_types::pb::google::protobuf::{Any, Duration, UInt32Value};

use super::ads_config_source;
use super::filter::any;
use super::naming;
use super::scope::Scope;
use super::socket_address_inner;
use crate::mesh::{Protocol, Service, ServicePort};

/// Connect timeout of mesh clusters (Istio's default).
pub const CONNECT_TIMEOUT_SECS: i64 = 10;

/// Key of `typed_extension_protocol_options` for upstream HTTP settings.
pub const HTTP_PROTOCOL_OPTIONS_KEY: &str =
    "envoy.extensions.upstreams.http.v3.HttpProtocolOptions";

/// Protocol options that make a cluster speak HTTP/2 (prior knowledge) upstream.
pub fn http2_protocol_options() -> HashMap<String, Any> {
    let options = HttpProtocolOptions {
        upstream_protocol_options: Some(UpstreamProtocolOptions::ExplicitHttpConfig(
            ExplicitHttpConfig {
                protocol_config: Some(ProtocolConfig::Http2ProtocolOptions(
                    Http2ProtocolOptions::default(),
                )),
            },
        )),
        ..Default::default()
    };
    HashMap::from([(HTTP_PROTOCOL_OPTIONS_KEY.to_string(), any(&options))])
}

/// Idle timeout of upstream connections from `PassthroughCluster` (Istio's value).
pub const PASSTHROUGH_IDLE_TIMEOUT_SECS: i64 = 300;

/// Protocol options of `PassthroughCluster`: speak upstream whatever the client spoke, so
/// h2c and gRPC to hosts outside the mesh stay HTTP/2 instead of falling back to HTTP/1.1.
pub fn passthrough_protocol_options() -> HashMap<String, Any> {
    let options = HttpProtocolOptions {
        common_http_protocol_options: Some(CommonHttpProtocolOptions {
            idle_timeout: Some(Duration {
                seconds: PASSTHROUGH_IDLE_TIMEOUT_SECS,
                nanos: 0,
            }),
            ..Default::default()
        }),
        upstream_protocol_options: Some(sniffed::use_downstream_protocol()),
        ..Default::default()
    };
    HashMap::from([(HTTP_PROTOCOL_OPTIONS_KEY.to_string(), any(&options))])
}

/// Circuit breakers that never trip, as Istio sets them on every cluster without a
/// DestinationRule limit. Envoy's own defaults (1024 connections, pending and active
/// requests, 3 concurrent retries) would answer 503 under load where Istio does not.
pub fn unlimited_circuit_breakers() -> CircuitBreakers {
    let max = || Some(UInt32Value { value: u32::MAX });
    CircuitBreakers {
        thresholds: vec![Thresholds {
            priority: RoutingPriority::Default as i32,
            max_connections: max(),
            max_pending_requests: max(),
            max_requests: max(),
            max_retries: max(),
            track_remaining: true,
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// How long an ORIGINAL_DST inbound cluster keeps an unused host: as long as Envoy's
/// durations go (istiod's value, about 292 years), since there is only ever the one
/// application address to connect to.
pub const INBOUND_CLEANUP_INTERVAL_SECS: i64 = (i64::MAX - 999_999_999) / 1_000_000_000;

fn base(name: String, kind: DiscoveryType, lb: LbPolicy) -> Cluster {
    Cluster {
        circuit_breakers: Some(unlimited_circuit_breakers()),
        alt_stat_name: naming::delimited_stat_name(&name),
        name,
        cluster_discovery_type: Some(ClusterDiscoveryType::Type(kind as i32)),
        lb_policy: lb as i32,
        connect_timeout: Some(Duration {
            seconds: CONNECT_TIMEOUT_SECS,
            nanos: 0,
        }),
        ..Default::default()
    }
}

/// A cluster of a service or of the workload's ports, with the fields istiod's cluster
/// builder gives those (an empty `common_lb_config` among them) and not the fixed ones.
fn service_base(name: String, kind: DiscoveryType, lb: LbPolicy) -> Cluster {
    Cluster {
        common_lb_config: Some(CommonLbConfig::default()),
        ..base(name, kind, lb)
    }
}

/// `outbound|<port>||<fqdn>`: EDS over ADS, ORIGINAL_DST for a headless service, or DNS
/// (`resolution`; DNS clusters get their endpoints in `subset::clusters`).
pub fn outbound_cluster(service: &Service, port: &ServicePort) -> Cluster {
    outbound_subset_cluster(service, port, "")
}

/// `outbound|<port>|<subset>|<fqdn>`, before any traffic policy: as `outbound_cluster`,
/// EDS asking for the cluster's own name.
pub fn outbound_subset_cluster(service: &Service, port: &ServicePort, subset: &str) -> Cluster {
    let name = naming::outbound_cluster(port.port, subset, &service.hostname);
    let (kind, lb) = resolution::discovery(service);
    let mut cluster = service_base(name.clone(), kind, lb);
    if kind == DiscoveryType::Eds {
        cluster.eds_cluster_config = Some(EdsClusterConfig {
            eds_config: Some(ads_config_source()),
            service_name: name,
        });
    }
    if port.protocol.is_http2() {
        cluster.typed_extension_protocol_options = http2_protocol_options();
    } else if port.protocol.is_sniffed() {
        cluster.typed_extension_protocol_options = sniffed::use_downstream_protocol_options();
    }
    cluster
}

/// The outbound clusters of the services a scope sees, sorted by name.
pub fn outbound_clusters(scope: &Scope) -> Vec<Cluster> {
    let mut clusters: Vec<Cluster> = scope
        .services()
        .flat_map(|s| {
            s.ports
                .iter()
                .flat_map(move |p| scope.service_clusters(s, p))
        })
        .collect();
    clusters.sort_by(|a, b| a.name.cmp(&b.name));
    clusters.dedup_by(|a, b| a.name == b.name);
    clusters
}

fn bind_to_inbound_address() -> Option<BindConfig> {
    Some(BindConfig {
        source_address: Some(socket_address_inner(naming::INBOUND_BIND_ADDRESS, 0)),
        ..Default::default()
    })
}

/// `inbound|<targetPort>||` (see the module docs for why ORIGINAL_DST).
pub fn inbound_cluster(target_port: u16, protocol: Protocol) -> Cluster {
    let mut cluster = service_base(
        naming::inbound_cluster(target_port),
        DiscoveryType::OriginalDst,
        LbPolicy::ClusterProvided,
    );
    cluster.upstream_bind_config = bind_to_inbound_address();
    cluster.cleanup_interval = Some(Duration {
        seconds: INBOUND_CLEANUP_INTERVAL_SECS,
        nanos: 0,
    });
    if protocol.is_http2() {
        cluster.typed_extension_protocol_options = http2_protocol_options();
    } else if protocol.is_sniffed() {
        cluster.typed_extension_protocol_options = sniffed::use_downstream_protocol_options();
    }
    cluster
}

/// Outbound traffic to destinations meshd does not know: forwarded as dialled.
pub fn passthrough_cluster() -> Cluster {
    Cluster {
        typed_extension_protocol_options: passthrough_protocol_options(),
        ..base(
            naming::PASSTHROUGH_CLUSTER.to_string(),
            DiscoveryType::OriginalDst,
            LbPolicy::ClusterProvided,
        )
    }
}

/// Inbound traffic to ports no service declares: delivered to the app as dialled.
///
/// istiod builds this one by renaming a copy of `PassthroughCluster`, so its stats keep
/// the `PassthroughCluster;` stat name: both directions count as
/// `cluster_name="PassthroughCluster"`. meshd keeps that, for dashboards built on it.
pub fn inbound_passthrough_cluster() -> Cluster {
    let mut cluster = base(
        naming::INBOUND_PASSTHROUGH_CLUSTER.to_string(),
        DiscoveryType::OriginalDst,
        LbPolicy::ClusterProvided,
    );
    cluster.alt_stat_name = naming::delimited_stat_name(naming::PASSTHROUGH_CLUSTER);
    cluster.upstream_bind_config = bind_to_inbound_address();
    cluster
}

/// A cluster with no endpoints (and, as istiod's, no load assignment at all): connections
/// routed here fail.
pub fn blackhole_cluster() -> Cluster {
    let mut cluster = base(
        naming::BLACKHOLE_CLUSTER.to_string(),
        DiscoveryType::Static,
        LbPolicy::RoundRobin,
    );
    // Nothing is ever sent, so there is nothing to limit (Istio sets none either).
    cluster.circuit_breakers = None;
    cluster
}

/// The clusters every sidecar has whatever the mesh holds.
pub fn fixed_clusters() -> Vec<Cluster> {
    vec![
        blackhole_cluster(),
        inbound_passthrough_cluster(),
        passthrough_cluster(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::{ObjectKey, TargetPort};
    use prost::Message;

    fn service(cluster_ip: Option<&str>) -> (Service, ServicePort) {
        let port = ServicePort {
            name: "grpc".into(),
            port: 7070,
            target_port: TargetPort::Number(7070),
            protocol: Protocol::Grpc,
        };
        let service = Service {
            key: ObjectKey {
                namespace: "shop".into(),
                name: "api".into(),
            },
            hostname: "api.shop.svc.cluster.local".into(),
            cluster_ip: cluster_ip.map(str::to_string),
            ports: vec![port.clone()],
            selector: None,
            labels: Default::default(),
            origin: crate::mesh::ServiceOrigin::Kubernetes,
        };
        (service, port)
    }

    #[test]
    fn every_cluster_but_blackhole_has_unlimited_circuit_breakers() {
        let (vip, port) = service(Some("10.96.1.21"));
        let (headless, _) = service(None);
        let clusters = [
            outbound_cluster(&vip, &port),
            outbound_cluster(&headless, &port),
            inbound_cluster(9080, Protocol::Http),
            inbound_cluster(7070, Protocol::Grpc),
            passthrough_cluster(),
            inbound_passthrough_cluster(),
        ];
        for c in clusters {
            let breakers = c.circuit_breakers.as_ref().expect(&c.name);
            assert_eq!(breakers.thresholds.len(), 1, "{}", c.name);
            let t = &breakers.thresholds[0];
            assert_eq!(t.priority, RoutingPriority::Default as i32);
            for limit in [
                t.max_connections,
                t.max_pending_requests,
                t.max_requests,
                t.max_retries,
            ] {
                assert_eq!(limit, Some(UInt32Value { value: u32::MAX }), "{}", c.name);
            }
            assert!(t.track_remaining, "{}", c.name);
        }
        assert!(blackhole_cluster().circuit_breakers.is_none());
    }

    #[test]
    fn stat_names_are_delimited_as_istiod_does() {
        let (vip, port) = service(Some("10.96.1.21"));
        let (headless, _) = service(None);
        for (cluster, stat_name) in [
            (
                outbound_cluster(&vip, &port),
                "outbound|7070||api.shop.svc.cluster.local;",
            ),
            (
                outbound_cluster(&headless, &port),
                "outbound|7070||api.shop.svc.cluster.local;",
            ),
            (inbound_cluster(9080, Protocol::Http), "inbound|9080||;"),
            (passthrough_cluster(), "PassthroughCluster;"),
            // istiod's inbound passthrough keeps the stat name of the cluster it copies.
            (inbound_passthrough_cluster(), "PassthroughCluster;"),
            (blackhole_cluster(), "BlackHoleCluster;"),
        ] {
            assert_eq!(cluster.alt_stat_name, stat_name, "{}", cluster.name);
        }
    }

    #[test]
    fn service_clusters_get_istiods_cluster_builder_defaults() {
        let (vip, port) = service(Some("10.96.1.21"));
        let (headless, _) = service(None);
        let outbound = outbound_cluster(&vip, &port);
        let eds = outbound.eds_cluster_config.as_ref().unwrap();
        assert_eq!(
            eds.eds_config.as_ref().unwrap().initial_fetch_timeout,
            Some(Duration::default()),
            "EDS waits for meshd without a deadline"
        );
        let inbound = inbound_cluster(9080, Protocol::Http);
        for c in [&outbound, &outbound_cluster(&headless, &port), &inbound] {
            assert_eq!(
                c.common_lb_config,
                Some(CommonLbConfig::default()),
                "{}",
                c.name
            );
        }
        assert_eq!(
            inbound.cleanup_interval,
            Some(Duration {
                seconds: 9_223_372_035,
                nanos: 0
            })
        );
        assert!(outbound.cleanup_interval.is_none());
        // The fixed clusters are built apart from services in istiod, without those.
        for c in fixed_clusters() {
            assert!(c.common_lb_config.is_none(), "{}", c.name);
        }
        let blackhole = blackhole_cluster();
        assert!(blackhole.load_assignment.is_none());
        assert_eq!(
            blackhole.cluster_discovery_type,
            Some(ClusterDiscoveryType::Type(DiscoveryType::Static as i32))
        );
    }

    #[test]
    fn passthrough_follows_the_downstream_protocol() {
        let c = passthrough_cluster();
        let any = &c.typed_extension_protocol_options[HTTP_PROTOCOL_OPTIONS_KEY];
        let options = HttpProtocolOptions::decode(&any.value[..]).unwrap();
        let Some(UpstreamProtocolOptions::UseDownstreamProtocolConfig(config)) =
            options.upstream_protocol_options
        else {
            panic!("expected use_downstream_protocol_config");
        };
        assert!(config.http_protocol_options.is_some());
        assert!(config.http2_protocol_options.is_some());
        let idle = options.common_http_protocol_options.unwrap().idle_timeout;
        assert_eq!(idle.unwrap().seconds, PASSTHROUGH_IDLE_TIMEOUT_SECS);
        // The inbound side delivers to the app as dialled, without HTTP options.
        assert!(inbound_passthrough_cluster()
            .typed_extension_protocol_options
            .is_empty());
    }
}
