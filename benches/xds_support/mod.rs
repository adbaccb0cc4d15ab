//! Shared by the xDS serving benchmarks: a realistic resource set for a 1,000-service mesh
//! (built as Envoy messages and encoded once with `Resource::encode`), a generator handing
//! the same `Arc`ed resources to every proxy, the real `XdsServer` on 127.0.0.1:0 and SotW
//! ADS clients that subscribe and ACK the way Envoy does.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use envoy_types::pb::envoy::config::cluster::v3::circuit_breakers::Thresholds;
use envoy_types::pb::envoy::config::cluster::v3::cluster::{
    ClusterDiscoveryType, DiscoveryType, EdsClusterConfig, LbPolicy,
};
use envoy_types::pb::envoy::config::cluster::v3::{CircuitBreakers, Cluster};
use envoy_types::pb::envoy::config::core::v3::{
    address, config_source, socket_address, transport_socket, Address, AggregatedConfigSource,
    ApiVersion, ConfigSource, Locality, Node, SocketAddress, TrafficDirection, TransportSocket,
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
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    CommonTlsContext, SdsSecretConfig, UpstreamTlsContext,
};
use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
use envoy_types::pb::envoy::service::discovery::v3::{DiscoveryRequest, DiscoveryResponse};
use envoy_types::pb::google::protobuf::{Any, Duration as PbDuration, UInt32Value};
use meshd::envoy::resource::set_version;
use meshd::xds::server::{XdsOptions, XdsServer};
use meshd::xds::{type_url, ConfigGenerator, ProxyResources, Resource};
use prost::{Message, Name};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;

/// Services in the synthetic mesh; each has one cluster and one endpoint set (3 pods).
pub const SERVICES: usize = 1_000;
/// Distinct service ports: one outbound listener and one route configuration per port.
pub const PORTS: usize = 50;

fn port_of(service: usize) -> u32 {
    8000 + (service % PORTS) as u32
}

fn host_of(service: usize) -> String {
    format!("svc-{service}.ns-{}.svc.cluster.local", service % 10)
}

fn cluster_name(service: usize) -> String {
    format!("outbound|{}||{}", port_of(service), host_of(service))
}

fn any<T: Name>(message: &T) -> Any {
    Any {
        type_url: T::type_url(),
        value: message.encode_to_vec(),
    }
}

fn ads() -> ConfigSource {
    ConfigSource {
        resource_api_version: ApiVersion::V3 as i32,
        config_source_specifier: Some(config_source::ConfigSourceSpecifier::Ads(
            AggregatedConfigSource {},
        )),
        ..Default::default()
    }
}

fn socket(ip: String, port: u32) -> Address {
    Address {
        address: Some(address::Address::SocketAddress(SocketAddress {
            address: ip,
            port_specifier: Some(socket_address::PortSpecifier::PortValue(port)),
            ..Default::default()
        })),
    }
}

/// An EDS cluster with mTLS (SDS certificates) and circuit breakers; `rev` changes content.
fn cluster(service: usize, rev: u32) -> Cluster {
    let name = cluster_name(service);
    let tls = UpstreamTlsContext {
        common_tls_context: Some(CommonTlsContext {
            tls_certificate_sds_secret_configs: vec![SdsSecretConfig {
                name: "default".into(),
                sds_config: Some(ads()),
            }],
            alpn_protocols: vec!["istio-peer-exchange".into(), "istio".into()],
            ..Default::default()
        }),
        sni: format!("outbound_.{}_._.{}", port_of(service), host_of(service)),
        ..Default::default()
    };
    Cluster {
        name: name.clone(),
        alt_stat_name: format!("{name};rev={rev}"),
        cluster_discovery_type: Some(ClusterDiscoveryType::Type(DiscoveryType::Eds as i32)),
        eds_cluster_config: Some(EdsClusterConfig {
            eds_config: Some(ads()),
            service_name: name,
        }),
        connect_timeout: Some(PbDuration {
            seconds: 10,
            nanos: 0,
        }),
        lb_policy: LbPolicy::LeastRequest as i32,
        circuit_breakers: Some(CircuitBreakers {
            thresholds: vec![Thresholds {
                max_connections: Some(UInt32Value {
                    value: 4_294_967_295,
                }),
                max_pending_requests: Some(UInt32Value {
                    value: 4_294_967_295,
                }),
                max_requests: Some(UInt32Value {
                    value: 4_294_967_295,
                }),
                max_retries: Some(UInt32Value {
                    value: 4_294_967_295,
                }),
                ..Default::default()
            }],
            ..Default::default()
        }),
        transport_socket: Some(TransportSocket {
            name: "envoy.transport_sockets.tls".into(),
            config_type: Some(transport_socket::ConfigType::TypedConfig(any(&tls))),
        }),
        ..Default::default()
    }
}

/// Three pods in one zone; `rev` gives the first pod another address (a pod replaced).
fn load_assignment(service: usize, rev: u32) -> ClusterLoadAssignment {
    let lb_endpoints = (0..3u32)
        .map(|pod| {
            let ip = if pod == 0 {
                format!("10.200.{}.{}", (rev / 250) % 250, rev % 250)
            } else {
                format!("10.{}.{}.{pod}", service / 250, service % 250)
            };
            LbEndpoint {
                host_identifier: Some(lb_endpoint::HostIdentifier::Endpoint(Endpoint {
                    address: Some(socket(ip, port_of(service))),
                    ..Default::default()
                })),
                load_balancing_weight: Some(UInt32Value { value: 1 }),
                ..Default::default()
            }
        })
        .collect();
    ClusterLoadAssignment {
        cluster_name: cluster_name(service),
        endpoints: vec![LocalityLbEndpoints {
            locality: Some(Locality {
                region: "us-east1".into(),
                zone: "us-east1-b".into(),
                ..Default::default()
            }),
            lb_endpoints,
            load_balancing_weight: Some(UInt32Value { value: 3 }),
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// An outbound listener on `0.0.0.0:port` whose HTTP connection manager takes routes by RDS.
fn listener(port: u32, rev: u32) -> Listener {
    let hcm = HttpConnectionManager {
        stat_prefix: format!("outbound_0.0.0.0_{port};rev={rev}"),
        route_specifier: Some(http_connection_manager::RouteSpecifier::Rds(Rds {
            config_source: Some(ads()),
            route_config_name: port.to_string(),
        })),
        http_filters: vec![HttpFilter {
            name: "envoy.filters.http.router".into(),
            config_type: Some(http_filter::ConfigType::TypedConfig(
                any(&Router::default()),
            )),
            ..Default::default()
        }],
        ..Default::default()
    };
    Listener {
        name: format!("0.0.0.0_{port}"),
        address: Some(socket("0.0.0.0".into(), port)),
        filter_chains: vec![FilterChain {
            filters: vec![Filter {
                name: "envoy.filters.network.http_connection_manager".into(),
                config_type: Some(filter::ConfigType::TypedConfig(any(&hcm))),
            }],
            ..Default::default()
        }],
        traffic_direction: TrafficDirection::Outbound as i32,
        ..Default::default()
    }
}

/// The route table of one port: a virtual host per service on that port.
fn route_configuration(port_index: usize, rev: u32) -> RouteConfiguration {
    let port = 8000 + port_index as u32;
    let virtual_hosts = (port_index..SERVICES)
        .step_by(PORTS)
        .map(|service| {
            let host = host_of(service);
            let short = format!("svc-{service}");
            VirtualHost {
                name: format!("{host}:{port}"),
                domains: vec![
                    host.clone(),
                    format!("{host}:{port}"),
                    short.clone(),
                    format!("{short}:{port}"),
                ],
                routes: vec![Route {
                    name: format!("default;rev={rev}"),
                    r#match: Some(RouteMatch {
                        path_specifier: Some(route_match::PathSpecifier::Prefix("/".into())),
                        ..Default::default()
                    }),
                    action: Some(route::Action::Route(RouteAction {
                        cluster_specifier: Some(route_action::ClusterSpecifier::Cluster(
                            cluster_name(service),
                        )),
                        timeout: Some(PbDuration {
                            seconds: 0,
                            nanos: 0,
                        }),
                        ..Default::default()
                    })),
                    ..Default::default()
                }],
                ..Default::default()
            }
        })
        .collect();
    RouteConfiguration {
        name: format!("{port}"),
        virtual_hosts,
        ..Default::default()
    }
}

fn encode_all<T: Message>(
    type_url: &'static str,
    items: impl Iterator<Item = (String, T)>,
) -> Vec<Arc<Resource>> {
    items
        .map(|(name, m)| Arc::new(Resource::encode(name, type_url, &m)))
        .collect()
}

/// One generation of the mesh's configuration, encoded once and shared by every proxy.
#[derive(Clone)]
pub struct MeshConfig {
    pub resources: ProxyResources,
}

impl MeshConfig {
    /// Every resource at revision `rev`.
    pub fn full(rev: u32) -> MeshConfig {
        let mut resources = ProxyResources::default();
        resources.set(
            type_url::CLUSTER,
            encode_all(
                type_url::CLUSTER,
                (0..SERVICES).map(|s| (cluster_name(s), cluster(s, rev))),
            ),
        );
        resources.set(
            type_url::ENDPOINT,
            encode_all(
                type_url::ENDPOINT,
                (0..SERVICES).map(|s| (cluster_name(s), load_assignment(s, rev))),
            ),
        );
        resources.set(
            type_url::LISTENER,
            encode_all(
                type_url::LISTENER,
                (0..PORTS).map(|p| {
                    (
                        format!("0.0.0.0_{}", 8000 + p),
                        listener(8000 + p as u32, rev),
                    )
                }),
            ),
        );
        resources.set(
            type_url::ROUTE,
            encode_all(
                type_url::ROUTE,
                (0..PORTS).map(|p| (format!("{}", 8000 + p), route_configuration(p, rev))),
            ),
        );
        MeshConfig { resources }
    }

    /// This configuration with one service's endpoints at revision `rev` (a pod replaced);
    /// every other resource is the same `Arc`.
    pub fn with_endpoint_change(&self, service: usize, rev: u32) -> MeshConfig {
        let mut resources = self.resources.clone();
        let mut endpoints: Vec<Arc<Resource>> = resources
            .of_type(type_url::ENDPOINT)
            .values()
            .cloned()
            .collect();
        let name = cluster_name(service);
        for r in endpoints.iter_mut().filter(|r| r.name == name) {
            *r = Arc::new(Resource::encode(
                name.clone(),
                type_url::ENDPOINT,
                &load_assignment(service, rev),
            ));
        }
        resources.set(type_url::ENDPOINT, endpoints);
        MeshConfig { resources }
    }

    /// The SotW `version_info` a proxy subscribed to everything gets for `type_url`.
    pub fn version(&self, type_url: &str) -> String {
        set_version(
            self.resources
                .of_type(type_url)
                .values()
                .map(|r| r.as_ref()),
        )
    }

    pub fn names(&self, type_url: &str) -> Arc<Vec<String>> {
        Arc::new(self.resources.of_type(type_url).keys().cloned().collect())
    }

    /// Encoded bytes and count of one type's resources.
    pub fn size(&self, type_url: &str) -> (usize, usize) {
        let map = self.resources.of_type(type_url);
        (map.len(), map.values().map(|r| r.body.value.len()).sum())
    }
}

/// Gives every proxy the same resources (clones of the `Arc`ed maps).
pub struct SharedGenerator {
    current: Mutex<ProxyResources>,
}

impl ConfigGenerator for SharedGenerator {
    fn generate(&self, _node: &Node) -> Result<ProxyResources, String> {
        Ok(self.current.lock().unwrap().clone())
    }
}

pub struct Server {
    pub addr: SocketAddr,
    generator: Arc<SharedGenerator>,
    generations: watch::Sender<u64>,
}

impl Server {
    /// The real server with `config` loaded; no limit on new streams, so that many
    /// clients can connect at once.
    pub async fn start(config: &MeshConfig) -> Server {
        let generator = Arc::new(SharedGenerator {
            current: Mutex::new(config.resources.clone()),
        });
        let (tx, rx) = watch::channel(1);
        let options = XdsOptions {
            new_streams_in_progress: 0,
            max_connection_age: None,
            ..XdsOptions::default()
        };
        let server = XdsServer::new(generator.clone(), rx, options);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(server.serve(listener));
        Server {
            addr,
            generator,
            generations: tx,
        }
    }

    /// Installs `config` as a new generation.
    pub fn publish(&self, config: &MeshConfig) {
        *self.generator.current.lock().unwrap() = config.resources.clone();
        self.generations.send_modify(|g| *g += 1);
    }
}

/// What a client tells the benchmark: it ACKed `version` of `type_url`.
pub struct Acked {
    pub client: usize,
    pub type_url: String,
    pub version: String,
}

/// Connects `count` SotW clients (one HTTP/2 connection each) that subscribe like Envoy:
/// clusters (wildcard), then endpoints of those clusters, listeners, then their routes;
/// they ACK every response and report each ACK (numbered 0..count) on the returned
/// channel. Node ids are numbered from `first`, so that batches do not collide.
pub async fn connect_clients(
    server: SocketAddr,
    config: &MeshConfig,
    first: usize,
    count: usize,
) -> mpsc::UnboundedReceiver<Acked> {
    let (acks, rx) = mpsc::unbounded_channel();
    let clusters = config.names(type_url::CLUSTER);
    let routes = config.names(type_url::ROUTE);
    for client in 0..count {
        let channel = Channel::from_shared(format!("http://{server}"))
            .unwrap()
            .connect()
            .await
            .expect("connect");
        let client_state = Client {
            id: client,
            node: first + client,
            clusters: clusters.clone(),
            routes: routes.clone(),
            acks: acks.clone(),
        };
        tokio::spawn(client_state.run(channel));
    }
    rx
}

struct Client {
    id: usize,
    node: usize,
    clusters: Arc<Vec<String>>,
    routes: Arc<Vec<String>>,
    acks: mpsc::UnboundedSender<Acked>,
}

fn request(type_url: &str, names: &[String], last: Option<&DiscoveryResponse>) -> DiscoveryRequest {
    DiscoveryRequest {
        type_url: type_url.into(),
        resource_names: names.to_vec(),
        version_info: last.map(|r| r.version_info.clone()).unwrap_or_default(),
        response_nonce: last.map(|r| r.nonce.clone()).unwrap_or_default(),
        ..Default::default()
    }
}

impl Client {
    async fn run(self, channel: Channel) {
        let mut grpc = AggregatedDiscoveryServiceClient::new(channel)
            .max_decoding_message_size(256 * 1024 * 1024);
        let (tx, rx) = mpsc::channel(16);
        let node = Node {
            id: format!(
                "sidecar~10.1.{}.{}~pod-{}.ns-0~ns-0.svc.cluster.local",
                self.node / 250,
                self.node % 250,
                self.node
            ),
            ..Default::default()
        };
        tx.send(DiscoveryRequest {
            node: Some(node),
            ..request(type_url::CLUSTER, &[], None)
        })
        .await
        .unwrap();
        let Ok(response) = grpc
            .stream_aggregated_resources(ReceiverStream::new(rx))
            .await
        else {
            return;
        };
        let mut responses = response.into_inner();
        let mut last_eds: Option<DiscoveryResponse> = None;
        let mut lds_sent = false;
        let mut rds_sent = false;
        while let Ok(Some(mut r)) = responses.message().await {
            // The resources themselves are not needed after this point; keep only the
            // version and nonce, as a proxy would once it has applied them.
            r.resources = Vec::new();
            let url = r.type_url.clone();
            let mut out = Vec::new();
            match url.as_str() {
                type_url::CLUSTER => {
                    // After a cluster update Envoy asks for the endpoints again.
                    out.push(request(
                        type_url::ENDPOINT,
                        &self.clusters,
                        last_eds.as_ref(),
                    ));
                    out.push(request(type_url::CLUSTER, &[], Some(&r)));
                    if !lds_sent {
                        lds_sent = true;
                        out.push(request(type_url::LISTENER, &[], None));
                    }
                }
                type_url::ENDPOINT => {
                    out.push(request(type_url::ENDPOINT, &self.clusters, Some(&r)));
                    last_eds = Some(r.clone());
                }
                type_url::LISTENER => {
                    out.push(request(type_url::LISTENER, &[], Some(&r)));
                    if !rds_sent {
                        rds_sent = true;
                        out.push(request(type_url::ROUTE, &self.routes, None));
                    }
                }
                _ => out.push(request(&url, &self.routes, Some(&r))),
            }
            for req in out {
                if tx.send(req).await.is_err() {
                    return;
                }
            }
            let _ = self.acks.send(Acked {
                client: self.id,
                type_url: url,
                version: r.version_info,
            });
        }
    }
}

/// Waits until each of `clients` has ACKed every `(type_url, version)` in `wanted`.
/// Versions are content hashes, so each benchmark iteration uses fresh content.
pub async fn wait_for_acks(
    acks: &mut mpsc::UnboundedReceiver<Acked>,
    clients: usize,
    wanted: &[(&str, String)],
) {
    let mut done = vec![vec![false; wanted.len()]; clients];
    let mut complete = 0;
    let waited = tokio::time::timeout(Duration::from_secs(120), async {
        while complete < clients {
            let ack = acks.recv().await.expect("clients alive");
            let Some(i) = wanted
                .iter()
                .position(|(t, v)| *t == ack.type_url && *v == ack.version)
            else {
                continue;
            };
            let seen = &mut done[ack.client];
            if !seen[i] {
                seen[i] = true;
                if seen.iter().all(|s| *s) {
                    complete += 1;
                }
            }
        }
    })
    .await;
    assert!(waited.is_ok(), "clients did not converge in time");
}

/// Resident memory of this process in KiB (VmRSS from /proc/self/status).
pub fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}
