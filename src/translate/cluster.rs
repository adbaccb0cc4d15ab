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

use std::collections::HashMap;

use envoy_types::pb::envoy::config::cluster::v3::{
    cluster::{ClusterDiscoveryType, DiscoveryType, EdsClusterConfig, LbPolicy},
    Cluster,
};
use envoy_types::pb::envoy::config::core::v3::{BindConfig, Http2ProtocolOptions};
use envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
use envoy_types::pb::envoy::extensions::upstreams::http::v3::{
    http_protocol_options::{
        explicit_http_config::ProtocolConfig, ExplicitHttpConfig, UpstreamProtocolOptions,
    },
    HttpProtocolOptions,
};
use envoy_types::pb::google::protobuf::{Any, Duration};

use super::filter::{any, hcm::ads_config_source};
use super::naming;
use super::socket_address_inner;
use crate::mesh::{MeshModel, Protocol, Service, ServicePort};

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

fn base(name: String, kind: DiscoveryType, lb: LbPolicy) -> Cluster {
    Cluster {
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

/// `outbound|<port>||<fqdn>`: EDS over ADS, or ORIGINAL_DST for a headless service.
pub fn outbound_cluster(service: &Service, port: &ServicePort) -> Cluster {
    let name = naming::outbound_cluster(port.port, "", &service.hostname);
    let mut cluster = if service.cluster_ip.is_some() {
        let mut c = base(name.clone(), DiscoveryType::Eds, LbPolicy::LeastRequest);
        c.eds_cluster_config = Some(EdsClusterConfig {
            eds_config: Some(ads_config_source()),
            service_name: name,
        });
        c
    } else {
        base(name, DiscoveryType::OriginalDst, LbPolicy::ClusterProvided)
    };
    if port.protocol.is_http2() {
        cluster.typed_extension_protocol_options = http2_protocol_options();
    }
    cluster
}

/// All outbound clusters of the mesh, sorted by name. They are the same for every sidecar
/// (no Sidecar resource yet), so they are built once per model.
pub fn outbound_clusters(model: &MeshModel) -> Vec<Cluster> {
    let mut clusters: Vec<Cluster> = model
        .services
        .values()
        .flat_map(|s| s.ports.iter().map(move |p| outbound_cluster(s, p)))
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
    let mut cluster = base(
        naming::inbound_cluster(target_port),
        DiscoveryType::OriginalDst,
        LbPolicy::ClusterProvided,
    );
    cluster.upstream_bind_config = bind_to_inbound_address();
    if protocol.is_http2() {
        cluster.typed_extension_protocol_options = http2_protocol_options();
    }
    cluster
}

/// Outbound traffic to destinations meshd does not know: forwarded as dialled.
pub fn passthrough_cluster() -> Cluster {
    base(
        naming::PASSTHROUGH_CLUSTER.to_string(),
        DiscoveryType::OriginalDst,
        LbPolicy::ClusterProvided,
    )
}

/// Inbound traffic to ports no service declares: delivered to the app as dialled.
pub fn inbound_passthrough_cluster() -> Cluster {
    let mut cluster = base(
        naming::INBOUND_PASSTHROUGH_CLUSTER.to_string(),
        DiscoveryType::OriginalDst,
        LbPolicy::ClusterProvided,
    );
    cluster.upstream_bind_config = bind_to_inbound_address();
    cluster
}

/// A cluster with no endpoints: connections routed here fail.
pub fn blackhole_cluster() -> Cluster {
    let mut cluster = base(
        naming::BLACKHOLE_CLUSTER.to_string(),
        DiscoveryType::Static,
        LbPolicy::RoundRobin,
    );
    cluster.load_assignment = Some(ClusterLoadAssignment {
        cluster_name: naming::BLACKHOLE_CLUSTER.to_string(),
        ..Default::default()
    });
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
