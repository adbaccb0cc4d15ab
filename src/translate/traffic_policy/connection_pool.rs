//! `connectionPool` -> the cluster's circuit breakers, connect timeout, TCP keepalive and
//! upstream HTTP options, with istiod's mapping: a limit of 0 counts as unset (the
//! never-tripping default stays), `http.idleTimeout` wins over `tcp.idleTimeout`,
//! `maxConcurrentStreams` only matters on clusters that speak HTTP/2, and
//! `useClientProtocol` makes the cluster speak upstream what the client spoke.

use envoy_types::pb::envoy::config::cluster::v3::{Cluster, UpstreamConnectionOptions};
use envoy_types::pb::envoy::config::core::v3::{
    Http1ProtocolOptions, Http2ProtocolOptions, HttpProtocolOptions as CommonHttpProtocolOptions,
    TcpKeepalive,
};
use envoy_types::pb::envoy::extensions::upstreams::http::v3::{
    http_protocol_options::{
        explicit_http_config::ProtocolConfig, ExplicitHttpConfig, UpstreamProtocolOptions,
        UseDownstreamHttpConfig,
    },
    HttpProtocolOptions,
};
use envoy_types::pb::google::protobuf::UInt32Value;

use super::super::cluster::unlimited_circuit_breakers;
use crate::mesh::traffic::ConnectionPool;

pub(crate) fn proto_duration(
    d: std::time::Duration,
) -> envoy_types::pb::google::protobuf::Duration {
    envoy_types::pb::google::protobuf::Duration {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos() as i32,
    }
}

fn positive(v: Option<u32>) -> Option<UInt32Value> {
    v.filter(|v| *v > 0).map(|value| UInt32Value { value })
}

/// `h2UpgradePolicy: UPGRADE` makes the cluster speak HTTP/2 (unless it already has an
/// upstream protocol, or `useClientProtocol` is set). The mesh default is not to upgrade.
pub fn apply_h2_upgrade(options: &mut Option<HttpProtocolOptions>, pool: &ConnectionPool) {
    if pool.use_client_protocol || pool.h2_upgrade != Some(true) {
        return;
    }
    let options = options.get_or_insert_with(Default::default);
    if options.upstream_protocol_options.is_none() {
        options.upstream_protocol_options = Some(UpstreamProtocolOptions::ExplicitHttpConfig(
            ExplicitHttpConfig {
                protocol_config: Some(ProtocolConfig::Http2ProtocolOptions(
                    Http2ProtocolOptions::default(),
                )),
            },
        ));
    }
}

/// Circuit breakers, connect timeout, keepalive and HTTP options from `pool`.
pub fn apply(
    cluster: &mut Cluster,
    options: &mut Option<HttpProtocolOptions>,
    pool: &ConnectionPool,
) {
    let mut breakers = unlimited_circuit_breakers();
    let t = &mut breakers.thresholds[0];
    if let Some(v) = positive(pool.http2_max_requests) {
        t.max_requests = Some(v);
    }
    if let Some(v) = positive(pool.http1_max_pending_requests) {
        t.max_pending_requests = Some(v);
    }
    if let Some(v) = positive(pool.max_retries) {
        t.max_retries = Some(v);
    }
    if let Some(v) = positive(pool.max_connections) {
        t.max_connections = Some(v);
    }
    cluster.circuit_breakers = Some(breakers);
    if let Some(timeout) = pool.connect_timeout {
        cluster.connect_timeout = Some(proto_duration(timeout));
    }
    if let Some(k) = &pool.tcp_keepalive {
        // An empty keepalive turns SO_KEEPALIVE on with the system's timings.
        cluster.upstream_connection_options = Some(UpstreamConnectionOptions {
            tcp_keepalive: Some(TcpKeepalive {
                keepalive_probes: positive(k.probes),
                keepalive_time: k.time.map(|d| UInt32Value {
                    value: d.as_secs() as u32,
                }),
                keepalive_interval: k.interval.map(|d| UInt32Value {
                    value: d.as_secs() as u32,
                }),
            }),
            ..Default::default()
        });
    }
    let idle = pool.http_idle_timeout.or(pool.tcp_idle_timeout);
    let per_connection = positive(pool.max_requests_per_connection);
    let streams = positive(pool.max_concurrent_streams);
    if idle.is_some()
        || per_connection.is_some()
        || pool.max_connection_duration.is_some()
        || streams.is_some()
    {
        let options = options.get_or_insert_with(Default::default);
        let common = options
            .common_http_protocol_options
            .get_or_insert_with(CommonHttpProtocolOptions::default);
        if let Some(idle) = idle {
            common.idle_timeout = Some(proto_duration(idle));
        }
        if per_connection.is_some() {
            common.max_requests_per_connection = per_connection;
        }
        if let Some(d) = pool.max_connection_duration {
            common.max_connection_duration = Some(proto_duration(d));
        }
        if let Some(UpstreamProtocolOptions::ExplicitHttpConfig(ExplicitHttpConfig {
            protocol_config: Some(ProtocolConfig::Http2ProtocolOptions(h2)),
        })) = options.upstream_protocol_options.as_mut()
        {
            if streams.is_some() {
                h2.max_concurrent_streams = streams;
            }
        }
    }
    if pool.use_client_protocol {
        let options = options.get_or_insert_with(Default::default);
        let http1 = match &options.upstream_protocol_options {
            Some(UpstreamProtocolOptions::ExplicitHttpConfig(ExplicitHttpConfig {
                protocol_config: Some(ProtocolConfig::HttpProtocolOptions(h1)),
            })) => h1.clone(),
            _ => Http1ProtocolOptions::default(),
        };
        options.upstream_protocol_options = Some(
            UpstreamProtocolOptions::UseDownstreamProtocolConfig(UseDownstreamHttpConfig {
                http_protocol_options: Some(http1),
                http2_protocol_options: Some(Http2ProtocolOptions::default()),
                ..Default::default()
            }),
        );
    }
}
