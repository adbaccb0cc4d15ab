//! The Envoy bootstrap for a sidecar that takes its configuration from meshd, shaped like
//! Istio's sidecar bootstrap: node id and Istio node metadata, ADS (SotW or Delta) to the
//! static `xds-grpc` cluster over HTTP/2, admin on localhost, a readiness listener on 15021
//! and a Prometheus stats listener on 15090, both served from the admin interface.
//!
//! As in Istio, CDS and LDS wait for meshd without a deadline (`initial_fetch_timeout: 0s`,
//! see `ads_config_source`): Envoy's default 15 s would let it finish initialising, and
//! report ready, with no mesh configuration when meshd is unreachable at start.
//!
//! Stats follow Istio's naming (`stats`): its tag rules, and `<name>;` stat names for the
//! static clusters as Istio's bootstrap has them.

use std::collections::{BTreeMap, HashMap};

use envoy_types::pb::envoy::config::bootstrap::v3::{
    bootstrap::{DynamicResources, StaticResources},
    runtime_layer, Admin, Bootstrap, LayeredRuntime, RuntimeLayer,
};
use envoy_types::pb::envoy::config::cluster::v3::{
    cluster::{ClusterDiscoveryType, DiscoveryType},
    Cluster, UpstreamConnectionOptions,
};
use envoy_types::pb::envoy::config::core::v3::{
    api_config_source::ApiType, grpc_service::EnvoyGrpc, grpc_service::TargetSpecifier,
    ApiConfigSource, ApiVersion, GrpcService, Node, TcpKeepalive,
};
use envoy_types::pb::envoy::config::endpoint::v3::{
    lb_endpoint::HostIdentifier, ClusterLoadAssignment, Endpoint, LbEndpoint, LocalityLbEndpoints,
};
use envoy_types::pb::envoy::config::listener::v3::{FilterChain, Listener};
use envoy_types::pb::envoy::config::overload::v3::{
    resource_monitor, OverloadManager, ResourceMonitor,
};
use envoy_types::pb::envoy::config::route::v3::{
    route::Action, route_action::ClusterSpecifier, route_match::PathSpecifier, Route, RouteAction,
    RouteConfiguration, RouteMatch, VirtualHost,
};
use envoy_types::pb::envoy::extensions::resource_monitors::downstream_connections::v3::DownstreamConnectionsConfig;
use envoy_types::pb::google::protobuf::{value::Kind, Duration, Struct, UInt32Value, Value};

use super::cluster::http2_protocol_options;
use super::filter::any;
use super::filter::hcm::local_hcm_filter;
use super::naming;
use super::{ads_config_source, socket_address};
use crate::envoy::json::{message_to_json, JsonError};
use crate::mesh::{ProxyId, DEFAULT_SERVICE_ACCOUNT};

/// Envoy's limit on downstream connections across all listeners. Istio sets this large
/// value so the limit exists (Envoy warns without one) but never bites.
pub const GLOBAL_DOWNSTREAM_MAX_CONNECTIONS: i64 = 2_147_483_647;
/// The overload manager's resource monitor for that limit (Envoy's replacement for the
/// deprecated `overload.global_downstream_max_connections` runtime key Istio still sets).
const DOWNSTREAM_CONNECTIONS_MONITOR: &str =
    "envoy.resource_monitors.global_downstream_max_connections";
/// Labels that name the application, most specific first (Istio's canonical-name order).
const APP_LABELS: [&str; 2] = ["app.kubernetes.io/name", "app"];
/// What meshd reports as `ISTIO_VERSION`.
pub const PROXY_VERSION: &str = concat!("meshd-", env!("CARGO_PKG_VERSION"));

const PROMETHEUS_CLUSTER: &str = "prometheus_stats";
const READINESS_CLUSTER: &str = "readiness";
/// Stat prefixes of the static listeners' connection managers: Istio's (`agent` is
/// pilot-agent's readiness listener, which this one stands in for).
pub const PROMETHEUS_STAT_PREFIX: &str = "stats";
pub const READINESS_STAT_PREFIX: &str = "agent";

pub mod secure;
mod stats;
pub use secure::SecureXds;
pub use stats::{stats_config, ISTIO_STATS_TAGS};

#[derive(Debug, Clone)]
pub struct BootstrapOptions {
    pub node_id: String,
    pub xds_address: String,
    pub delta: bool,
    pub admin_port: u16,
    pub labels: BTreeMap<String, String>,
    pub service_account: Option<String>,
    pub workload_name: Option<String>,
    pub cluster_id: String,
    /// Connect to meshd's secure port (TLS, bearer token) instead of plaintext.
    pub secure: Option<SecureXds>,
}

#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error("invalid --xds-address {0:?}: expected HOST:PORT")]
    XdsAddress(String),
    #[error(transparent)]
    NodeId(#[from] crate::mesh::MeshError),
    #[error("rendering the bootstrap: {0}")]
    Json(#[from] JsonError),
}

/// `HOST:PORT` or `[IPv6]:PORT` split, with whether the host is an IP literal.
fn parse_xds_address(raw: &str) -> Result<(String, u16, bool), BootstrapError> {
    let bad = || BootstrapError::XdsAddress(raw.to_string());
    let (host, port) = if let Some(rest) = raw.strip_prefix('[') {
        let (host, port) = rest.split_once("]:").ok_or_else(bad)?;
        (host, port)
    } else {
        let (host, port) = raw.rsplit_once(':').ok_or_else(bad)?;
        // An IPv6 literal needs brackets, or the port would be ambiguous.
        if host.contains(':') {
            return Err(bad());
        }
        (host, port)
    };
    let port: u16 = port.parse().map_err(|_| bad())?;
    if port == 0 || host.is_empty() {
        return Err(bad());
    }
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return Ok((ip.to_string(), port, true));
    }
    let valid_name = host.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    });
    if !valid_name {
        return Err(bad());
    }
    Ok((host.to_string(), port, false))
}

fn string(s: impl Into<String>) -> Value {
    Value {
        kind: Some(Kind::StringValue(s.into())),
    }
}

fn node(options: &BootstrapOptions, proxy: &ProxyId) -> Node {
    let labels = Struct {
        fields: options
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), string(v)))
            .collect(),
    };
    let workload = options
        .workload_name
        .clone()
        .unwrap_or_else(|| proxy.pod_name.clone());
    let mut fields: HashMap<String, Value> = HashMap::from([
        ("NAMESPACE".to_string(), string(&proxy.namespace)),
        (
            "LABELS".to_string(),
            Value {
                kind: Some(Kind::StructValue(labels)),
            },
        ),
        ("INSTANCE_IPS".to_string(), string(&proxy.ip)),
        ("WORKLOAD_NAME".to_string(), string(&workload)),
        ("CLUSTER_ID".to_string(), string(&options.cluster_id)),
        ("INTERCEPTION_MODE".to_string(), string("REDIRECT")),
        ("ISTIO_VERSION".to_string(), string(PROXY_VERSION)),
    ]);
    let service_account = options
        .service_account
        .as_deref()
        .unwrap_or(DEFAULT_SERVICE_ACCOUNT);
    fields.insert("SERVICE_ACCOUNT".to_string(), string(service_account));
    // Istio's service-cluster convention: `<app>.<namespace>`, the workload standing in for
    // the app when no label names it.
    let app = APP_LABELS
        .iter()
        .find_map(|l| options.labels.get(*l).filter(|v| !v.is_empty()))
        .unwrap_or(&workload);
    Node {
        id: options.node_id.clone(),
        cluster: format!("{app}.{}", proxy.namespace),
        metadata: Some(Struct { fields }),
        ..Default::default()
    }
}

fn static_cluster(name: &str, host: &str, port: u16, dns: bool, timeout: Duration) -> Cluster {
    let kind = if dns {
        DiscoveryType::StrictDns
    } else {
        DiscoveryType::Static
    };
    Cluster {
        name: name.to_string(),
        alt_stat_name: naming::delimited_stat_name(name),
        cluster_discovery_type: Some(ClusterDiscoveryType::Type(kind as i32)),
        connect_timeout: Some(timeout),
        load_assignment: Some(ClusterLoadAssignment {
            cluster_name: name.to_string(),
            endpoints: vec![LocalityLbEndpoints {
                lb_endpoints: vec![LbEndpoint {
                    host_identifier: Some(HostIdentifier::Endpoint(Endpoint {
                        address: Some(socket_address(host, port)),
                        ..Default::default()
                    })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn xds_cluster(host: &str, port: u16, is_ip: bool) -> Cluster {
    Cluster {
        typed_extension_protocol_options: http2_protocol_options(),
        // Keep the long-lived ADS connection alive through NATs and idle timeouts.
        upstream_connection_options: Some(UpstreamConnectionOptions {
            tcp_keepalive: Some(TcpKeepalive {
                keepalive_time: Some(UInt32Value { value: 300 }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..static_cluster(
            naming::XDS_CLUSTER,
            host,
            port,
            !is_ip,
            Duration {
                seconds: 1,
                nanos: 0,
            },
        )
    }
}

fn admin_route(name: &str, path: &str, cluster: &str, rewrite: &str) -> Route {
    Route {
        name: name.to_string(),
        r#match: Some(RouteMatch {
            path_specifier: Some(PathSpecifier::Prefix(path.to_string())),
            ..Default::default()
        }),
        action: Some(Action::Route(RouteAction {
            cluster_specifier: Some(ClusterSpecifier::Cluster(cluster.to_string())),
            // Empty: the admin path is the same as the served one.
            prefix_rewrite: rewrite.to_string(),
            ..Default::default()
        })),
        ..Default::default()
    }
}

/// A listener on `0.0.0.0:port` serving one admin path under another name.
fn admin_listener(name: &str, stat_prefix: &str, port: u16, route: Route) -> Listener {
    let routes = RouteConfiguration {
        name: name.to_string(),
        virtual_hosts: vec![VirtualHost {
            name: name.to_string(),
            domains: vec!["*".to_string()],
            routes: vec![route],
            ..Default::default()
        }],
        ..Default::default()
    };
    Listener {
        name: name.to_string(),
        address: Some(socket_address(naming::WILDCARD_ADDRESS, port)),
        filter_chains: vec![FilterChain {
            filters: vec![local_hcm_filter(stat_prefix, routes)],
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// The global downstream connection limit, as an overload manager resource monitor.
fn overload_manager() -> OverloadManager {
    let config = DownstreamConnectionsConfig {
        max_active_downstream_connections: GLOBAL_DOWNSTREAM_MAX_CONNECTIONS,
    };
    OverloadManager {
        resource_monitors: vec![ResourceMonitor {
            name: DOWNSTREAM_CONNECTIONS_MONITOR.to_string(),
            config_type: Some(resource_monitor::ConfigType::TypedConfig(any(&config))),
        }],
        ..Default::default()
    }
}

/// The bootstrap as a proto message.
pub fn bootstrap(options: &BootstrapOptions) -> Result<Bootstrap, BootstrapError> {
    let proxy = ProxyId::parse(&options.node_id)?;
    let (host, port, is_ip) = parse_xds_address(&options.xds_address)?;
    let api_type = if options.delta {
        ApiType::DeltaGrpc
    } else {
        ApiType::Grpc
    };
    let ads = ApiConfigSource {
        api_type: api_type as i32,
        transport_api_version: ApiVersion::V3 as i32,
        set_node_on_first_message_only: true,
        grpc_services: vec![match &options.secure {
            Some(
                s @ SecureXds {
                    watch_token_file: Some(file),
                    ..
                },
            ) => GrpcService {
                target_specifier: Some(TargetSpecifier::GoogleGrpc(secure::google_grpc(
                    s,
                    &options.xds_address,
                    file,
                ))),
                ..Default::default()
            },
            secure => GrpcService {
                target_specifier: Some(TargetSpecifier::EnvoyGrpc(EnvoyGrpc {
                    cluster_name: naming::XDS_CLUSTER.to_string(),
                    ..Default::default()
                })),
                initial_metadata: secure
                    .as_ref()
                    .map(secure::initial_metadata)
                    .unwrap_or_default(),
                ..Default::default()
            },
        }],
        ..Default::default()
    };
    let local = "127.0.0.1";
    let quarter_second = Duration {
        seconds: 0,
        nanos: 250_000_000,
    };
    Ok(Bootstrap {
        node: Some(node(options, &proxy)),
        dynamic_resources: Some(DynamicResources {
            ads_config: Some(ads),
            cds_config: Some(ads_config_source()),
            lds_config: Some(ads_config_source()),
            ..Default::default()
        }),
        static_resources: Some(StaticResources {
            clusters: vec![
                Cluster {
                    transport_socket: options.secure.as_ref().map(secure::transport_socket),
                    ..xds_cluster(&host, port, is_ip)
                },
                static_cluster(
                    PROMETHEUS_CLUSTER,
                    local,
                    options.admin_port,
                    false,
                    quarter_second,
                ),
                static_cluster(
                    READINESS_CLUSTER,
                    local,
                    options.admin_port,
                    false,
                    quarter_second,
                ),
            ],
            listeners: vec![
                // Named so that no dynamic listener (`0.0.0.0_<port>`) can take the name.
                admin_listener(
                    &naming::readiness_listener(),
                    READINESS_STAT_PREFIX,
                    naming::READINESS_PORT,
                    admin_route("readiness", "/healthz/ready", READINESS_CLUSTER, "/ready"),
                ),
                admin_listener(
                    &naming::prometheus_listener(),
                    PROMETHEUS_STAT_PREFIX,
                    naming::PROMETHEUS_PORT,
                    admin_route("prometheus", "/stats/prometheus", PROMETHEUS_CLUSTER, ""),
                ),
            ],
            ..Default::default()
        }),
        admin: Some(Admin {
            address: Some(socket_address(local, options.admin_port)),
            ..Default::default()
        }),
        overload_manager: Some(overload_manager()),
        stats_config: Some(stats_config()),
        layered_runtime: Some(layered_runtime()),
        ..Default::default()
    })
}

/// Runtime as Istio's bootstrap sets it: a static layer with the flags istiod relies on,
/// and an admin layer so operators can change values at `/runtime_modify`.
fn layered_runtime() -> LayeredRuntime {
    let flags = [
        // Envoy rejects regexes whose RE2 program is larger than 100 by default; Istio
        // raises the limit so that VirtualService regexes users write are accepted.
        ("re2.max_program_size.error_level", string("32768")),
        // Istio keeps accepting request paths with a `#fragment` (Envoy rejects them).
        (
            "envoy.reloadable_features.http_reject_path_with_fragment",
            Value {
                kind: Some(Kind::BoolValue(false)),
            },
        ),
    ];
    LayeredRuntime {
        layers: vec![
            RuntimeLayer {
                name: "global config".to_string(),
                layer_specifier: Some(runtime_layer::LayerSpecifier::StaticLayer(Struct {
                    fields: flags.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
                })),
            },
            RuntimeLayer {
                name: "admin".to_string(),
                layer_specifier: Some(runtime_layer::LayerSpecifier::AdminLayer(
                    runtime_layer::AdminLayer {},
                )),
            },
        ],
    }
}

/// The bootstrap in Envoy's JSON form (printed as YAML by `meshd bootstrap`).
pub fn render_bootstrap(options: &BootstrapOptions) -> Result<serde_json::Value, BootstrapError> {
    Ok(message_to_json(
        "envoy.config.bootstrap.v3.Bootstrap",
        &bootstrap(options)?,
    )?)
}

#[cfg(test)]
mod tests;
