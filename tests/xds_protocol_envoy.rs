//! The ADS server against a real Envoy 1.40 (SotW and Delta): Envoy connects, ACKs every
//! type, and after a cluster-only change its cluster finishes warming at once (the
//! endpoint re-request is answered). Fails, with how to install it, when Envoy is missing
//! (see tests/common/envoy.rs).

mod common;
mod support;

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use envoy_types::pb::envoy::config::cluster::v3::cluster::{
    ClusterDiscoveryType, DiscoveryType, EdsClusterConfig,
};
use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::core::v3::{
    address, config_source, socket_address, Address, AggregatedConfigSource, ApiVersion,
    ConfigSource, SocketAddress,
};
use envoy_types::pb::envoy::config::endpoint::v3::{
    lb_endpoint, ClusterLoadAssignment, Endpoint, LbEndpoint, LocalityLbEndpoints,
};
use envoy_types::pb::envoy::config::listener::v3::{filter, Filter, FilterChain, Listener};
use envoy_types::pb::envoy::config::route::v3::{
    route, route_action, route_match, Route, RouteAction, RouteConfiguration, RouteMatch,
    VirtualHost,
};
use envoy_types::pb::envoy::extensions::filters::http::router::v3::Router;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    http_connection_manager, http_filter, HttpConnectionManager, HttpFilter, Rds,
};
use envoy_types::pb::google::protobuf::{Any, Duration as PbDuration};
use meshd::xds::server::XdsOptions;
use meshd::xds::type_url::{CLUSTER, ENDPOINT, LISTENER, ROUTE};
use meshd::xds::Resource;
use prost::Message;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const CLUSTER_NAME: &str = "outbound|80||svc.default.svc.cluster.local";

fn envoy_binary() -> PathBuf {
    common::envoy::envoy_binary()
}

fn ads() -> Option<ConfigSource> {
    Some(ConfigSource {
        config_source_specifier: Some(config_source::ConfigSourceSpecifier::Ads(
            AggregatedConfigSource {},
        )),
        resource_api_version: ApiVersion::V3 as i32,
        ..Default::default()
    })
}

fn any(type_url: &str, message: &impl Message) -> Any {
    Any {
        type_url: type_url.into(),
        value: message.encode_to_vec(),
    }
}

fn cluster(timeout_secs: i64) -> Arc<Resource> {
    let c = Cluster {
        name: CLUSTER_NAME.into(),
        cluster_discovery_type: Some(ClusterDiscoveryType::Type(DiscoveryType::Eds as i32)),
        eds_cluster_config: Some(EdsClusterConfig {
            eds_config: ads(),
            service_name: String::new(),
        }),
        connect_timeout: Some(PbDuration {
            seconds: timeout_secs,
            nanos: 0,
        }),
        ..Default::default()
    };
    Arc::new(Resource::encode(CLUSTER_NAME, CLUSTER, &c))
}

fn endpoints() -> Arc<Resource> {
    let address = Address {
        address: Some(address::Address::SocketAddress(SocketAddress {
            address: "127.0.0.1".into(),
            port_specifier: Some(socket_address::PortSpecifier::PortValue(9)),
            ..Default::default()
        })),
    };
    let cla = ClusterLoadAssignment {
        cluster_name: CLUSTER_NAME.into(),
        endpoints: vec![LocalityLbEndpoints {
            lb_endpoints: vec![LbEndpoint {
                host_identifier: Some(lb_endpoint::HostIdentifier::Endpoint(Endpoint {
                    address: Some(address),
                    ..Default::default()
                })),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    Arc::new(Resource::encode(CLUSTER_NAME, ENDPOINT, &cla))
}

fn listener() -> Arc<Resource> {
    let hcm = HttpConnectionManager {
        stat_prefix: "outbound_0.0.0.0_80".into(),
        route_specifier: Some(http_connection_manager::RouteSpecifier::Rds(Rds {
            config_source: ads(),
            route_config_name: "80".into(),
        })),
        http_filters: vec![HttpFilter {
            name: "envoy.filters.http.router".into(),
            config_type: Some(http_filter::ConfigType::TypedConfig(any(
                "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router",
                &Router::default(),
            ))),
            ..Default::default()
        }],
        ..Default::default()
    };
    let l = Listener {
        name: "0.0.0.0_80".into(),
        address: Some(Address {
            address: Some(address::Address::SocketAddress(SocketAddress {
                address: "127.0.0.1".into(),
                port_specifier: Some(socket_address::PortSpecifier::PortValue(0)),
                ..Default::default()
            })),
        }),
        filter_chains: vec![FilterChain {
            filters: vec![Filter {
                name: "envoy.filters.network.http_connection_manager".into(),
                config_type: Some(filter::ConfigType::TypedConfig(any(
                    "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                    &hcm,
                ))),
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    Arc::new(Resource::encode("0.0.0.0_80", LISTENER, &l))
}

fn routes() -> Arc<Resource> {
    let rc = RouteConfiguration {
        name: "80".into(),
        virtual_hosts: vec![VirtualHost {
            name: "allow_any".into(),
            domains: vec!["*".into()],
            routes: vec![Route {
                r#match: Some(RouteMatch {
                    path_specifier: Some(route_match::PathSpecifier::Prefix("/".into())),
                    ..Default::default()
                }),
                action: Some(route::Action::Route(RouteAction {
                    cluster_specifier: Some(route_action::ClusterSpecifier::Cluster(
                        CLUSTER_NAME.into(),
                    )),
                    ..Default::default()
                })),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    Arc::new(Resource::encode("80", ROUTE, &rc))
}

fn bootstrap(xds_port: u16, delta: bool) -> serde_json::Value {
    serde_json::json!({
        "node": {"id": NODE, "cluster": "svc.default"},
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
        "dynamic_resources": {
            "ads_config": {
                "api_type": if delta { "DELTA_GRPC" } else { "GRPC" },
                "transport_api_version": "V3",
                "set_node_on_first_message_only": true,
                "grpc_services": [{"envoy_grpc": {"cluster_name": "xds-grpc"}}]
            },
            "cds_config": {"ads": {}, "resource_api_version": "V3"},
            "lds_config": {"ads": {}, "resource_api_version": "V3"}
        },
        "static_resources": {"clusters": [{
            "name": "xds-grpc",
            "type": "STATIC",
            "connect_timeout": "1s",
            "typed_extension_protocol_options": {
                "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                    "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                    "explicit_http_config": {"http2_protocol_options": {}}
                }
            },
            "load_assignment": {"cluster_name": "xds-grpc", "endpoints": [{"lb_endpoints": [{
                "endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": xds_port}}}
            }]}]}
        }]}
    })
}

/// GET on Envoy's admin port: the response body. An admin that does not answer, or not with
/// 200, fails the test.
async fn admin_get(port: u16, path: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("admin reachable");
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let (head, body) = response
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("admin {path}: no HTTP response: {response:?}"));
    assert!(
        head.starts_with("HTTP/1.1 200 "),
        "admin {path} answered {head}"
    );
    body.to_string()
}

fn stat(stats: &str, name: &str) -> Option<u64> {
    stats.lines().find_map(|l| {
        let (k, v) = l.split_once(": ")?;
        (k == name).then(|| v.trim().parse().ok())?
    })
}

/// Waits until every type is acknowledged at the version last sent.
async fn wait_all_acked(h: &Harness) {
    let synced = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let syncz = h.status.syncz_json();
            let proxy = &syncz[NODE];
            let ok = ["clusters", "endpoints", "listeners", "routes"]
                .iter()
                .all(|t| {
                    let t = &proxy[*t];
                    !t["version_sent"].as_str().unwrap_or("").is_empty()
                        && t["nonce_acked"] == t["nonce_sent"]
                        && t["nacked"] == false
                });
            if ok {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(
        synced.is_ok(),
        "envoy did not ack everything: {}",
        h.status.syncz_json()
    );
}

struct RunningEnvoy {
    child: tokio::process::Child,
    admin_port: u16,
    _dir: tempfile::TempDir,
}

fn load_mesh(h: &Harness) {
    h.set(CLUSTER, vec![cluster(1)]);
    h.set(ENDPOINT, vec![endpoints()]);
    h.set(LISTENER, vec![listener()]);
    h.set(ROUTE, vec![routes()]);
    h.bump();
}

/// Starts Envoy against the harness.
async fn start_envoy(h: &Harness, delta: bool) -> RunningEnvoy {
    let envoy = envoy_binary();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bootstrap.json");
    let admin_path = dir.path().join("admin");
    std::fs::write(&config, bootstrap(h.addr.port(), delta).to_string()).unwrap();
    let child = tokio::process::Command::new(envoy)
        .arg("-c")
        .arg(&config)
        .arg("--admin-address-path")
        .arg(&admin_path)
        .args([
            "--use-dynamic-base-id",
            "--concurrency",
            "1",
            "-l",
            "warning",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("envoy starts");
    wait_all_acked(h).await;
    let admin = std::fs::read_to_string(&admin_path).unwrap();
    let admin_port = admin.trim().rsplit(':').next().unwrap().parse().unwrap();
    RunningEnvoy {
        child,
        admin_port,
        _dir: dir,
    }
}

async fn envoy_syncs_and_warms(delta: bool) {
    let h = Harness::start().await;
    load_mesh(&h);
    let mut envoy = start_envoy(&h, delta).await;
    let port = envoy.admin_port;
    assert_eq!(h.status.syncz_json()[NODE]["delta"], delta);
    let stats = admin_get(port, "/stats").await;
    assert_eq!(
        stat(&stats, "cluster_manager.warming_clusters"),
        Some(0),
        "{stats}"
    );
    assert_eq!(
        stat(&stats, "listener_manager.total_listeners_active"),
        Some(1)
    );

    // A cluster-only change: the new cluster must finish warming well before Envoy's 15 s
    // initial fetch timeout would give up waiting for its endpoints.
    h.set(CLUSTER, vec![cluster(2)]);
    h.bump();
    let warmed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let stats = admin_get(port, "/stats").await;
            if stat(&stats, "cluster_manager.cds.update_success") >= Some(2)
                && stat(&stats, "cluster_manager.warming_clusters") == Some(0)
                && stat(&stats, "cluster_manager.cluster_modified") == Some(1)
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    let stats = admin_get(port, "/stats").await;
    assert!(warmed.is_ok(), "cluster still warming: {stats}");
    wait_all_acked(&h).await;
    assert_eq!(stat(&stats, "cluster_manager.cds.update_rejected"), Some(0));
    envoy.child.kill().await.ok();
}

/// The server ends streams at their maximum age; Envoy reconnects and is in sync again
/// without any change to its clusters.
async fn envoy_reconnects_after_max_age(delta: bool) {
    let options = XdsOptions {
        max_connection_age: Some(Duration::from_millis(800)),
        max_connection_age_jitter: 0.2,
        ..XdsOptions::default()
    };
    let h = Harness::start_with(options, 1).await;
    load_mesh(&h);
    let mut envoy = start_envoy(&h, delta).await;
    let first_stream = h.status.syncz_json()[NODE]["stream"].as_u64().unwrap();
    let reconnected = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let stream = h.status.syncz_json()[NODE]["stream"].as_u64();
            if stream.is_some_and(|s| s > first_stream) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(reconnected.is_ok(), "envoy did not reconnect");
    wait_all_acked(&h).await;
    let stats = admin_get(envoy.admin_port, "/stats").await;
    assert_eq!(
        stat(&stats, "control_plane.connected_state"),
        Some(1),
        "{stats}"
    );
    assert_eq!(
        stat(&stats, "cluster_manager.cluster_modified"),
        Some(0),
        "{stats}"
    );
    assert_eq!(stat(&stats, "cluster_manager.cds.update_rejected"), Some(0));
    assert_eq!(
        stat(&stats, "listener_manager.lds.update_rejected"),
        Some(0)
    );
    envoy.child.kill().await.ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_envoy_sotw_acks_everything_and_warms_changed_cluster() {
    envoy_syncs_and_warms(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_envoy_delta_acks_everything_and_warms_changed_cluster() {
    envoy_syncs_and_warms(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_envoy_sotw_reconnects_after_max_age() {
    envoy_reconnects_after_max_age(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_envoy_delta_reconnects_after_max_age() {
    envoy_reconnects_after_max_age(true).await;
}
