//! Shared harness for the xDS protocol tests: a real tonic server on 127.0.0.1:0 fed by a
//! fake generator whose content the test changes, and real tonic clients for SotW and Delta.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::core::v3::{data_source, DataSource, Node};
use envoy_types::pb::envoy::config::endpoint::v3::{ClusterLoadAssignment, LocalityLbEndpoints};
use envoy_types::pb::envoy::config::listener::v3::Listener;
use envoy_types::pb::envoy::config::route::v3::{RouteConfiguration, VirtualHost};
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    secret, GenericSecret, Secret,
};
use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse,
};
use envoy_types::pb::google::rpc::Status as RpcStatus;
use meshd::xds::server::{XdsOptions, XdsServer};
use meshd::xds::{type_url, ConfigGenerator, ProxyResources, Resource, XdsStatus};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;
use tonic::Streaming;

pub const NODE: &str = "sidecar~10.0.0.1~productpage-v1-abc.default~default.svc.cluster.local";
/// How long a test waits for something that should happen.
pub const WAIT: Duration = Duration::from_secs(5);
/// How long a test waits to be confident that something does not happen.
pub const QUIET: Duration = Duration::from_millis(300);

/// A generator whose output the test sets; it records the node ids it was asked for and
/// how many calls ran at once.
#[derive(Default)]
pub struct FakeGenerator {
    resources: Mutex<ProxyResources>,
    error: Mutex<Option<String>>,
    pub nodes: Mutex<Vec<String>>,
    pub in_flight: InFlight,
}

impl ConfigGenerator for FakeGenerator {
    fn generate(&self, node: &Node) -> Result<ProxyResources, String> {
        let _call = self.in_flight.enter();
        self.nodes.lock().unwrap().push(node.id.clone());
        if let Some(e) = self.error.lock().unwrap().clone() {
            return Err(e);
        }
        Ok(self.resources.lock().unwrap().clone())
    }
}

/// `generate` calls running at the same moment, and the most seen at once (high-water
/// mark). Armed with a target, each call waits (up to `WAIT`) until that many calls have
/// been in flight together, then stays a moment longer: calls that the server lets overlap
/// do overlap, so the high-water mark shows the server's real bound, not the scheduler's.
#[derive(Default)]
pub struct InFlight {
    state: Mutex<InFlightState>,
    changed: Condvar,
}

#[derive(Default)]
struct InFlightState {
    now: usize,
    peak: usize,
    target: Option<usize>,
}

/// One call in flight; leaving it ends the call.
pub struct InFlightCall<'a>(&'a InFlight);

/// How long an armed call stays in flight once the target was reached, so that a server
/// without a bound would let many more calls pile up meanwhile.
const OVERLAP: Duration = Duration::from_millis(10);

impl InFlight {
    /// Starts measuring: the high-water mark restarts from zero and calls hold until
    /// `target` of them have run at once.
    pub fn arm(&self, target: usize) {
        let mut s = self.state.lock().unwrap();
        s.peak = s.now;
        s.target = Some(target);
    }

    /// The most calls in flight at once since `arm`.
    pub fn peak(&self) -> usize {
        self.state.lock().unwrap().peak
    }

    fn enter(&self) -> InFlightCall<'_> {
        let mut s = self.state.lock().unwrap();
        s.now += 1;
        s.peak = s.peak.max(s.now);
        self.changed.notify_all();
        if let Some(target) = s.target {
            let (s, _) = self
                .changed
                .wait_timeout_while(s, WAIT, |s| s.peak < target)
                .unwrap();
            drop(s);
            std::thread::sleep(OVERLAP);
        }
        InFlightCall(self)
    }
}

impl Drop for InFlightCall<'_> {
    fn drop(&mut self) {
        self.0.state.lock().unwrap().now -= 1;
    }
}

pub struct Harness {
    pub addr: SocketAddr,
    pub generator: Arc<FakeGenerator>,
    pub status: XdsStatus,
    generations: watch::Sender<u64>,
}

impl Harness {
    /// A server with configuration already loaded (generation 1).
    pub async fn start() -> Harness {
        Harness::start_with(XdsOptions::default(), 1).await
    }

    pub async fn start_with(options: XdsOptions, generation: u64) -> Harness {
        let generator = Arc::new(FakeGenerator::default());
        let (tx, rx) = watch::channel(generation);
        let server = XdsServer::new(generator.clone(), rx, options);
        let status = server.status();
        // meshd's own listener (a large backlog): a test connecting hundreds of streams at
        // once on a loaded machine overflowed tokio's default of 128 and saw resets.
        let listener = meshd::xds::listen("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(server.serve(listener));
        Harness {
            addr,
            generator,
            status,
            generations: tx,
        }
    }

    /// Replaces the resources of one type (takes effect at the next `bump`).
    pub fn set(&self, type_url: &'static str, resources: Vec<Arc<Resource>>) {
        self.generator
            .resources
            .lock()
            .unwrap()
            .set(type_url, resources);
    }

    pub fn fail_with(&self, message: &str) {
        *self.generator.error.lock().unwrap() = Some(message.to_string());
    }

    /// Publishes a new configuration generation.
    pub fn bump(&self) {
        self.generations.send_modify(|g| *g += 1);
    }

    /// Waits until the server has recorded, for `NODE`, `field` of type `short` (syncz)
    /// equal to `value`: requests and pushes race otherwise.
    pub async fn wait_syncz(&self, short: &str, field: &str, value: &str) {
        let reached = tokio::time::timeout(WAIT, async {
            while self.status.syncz_json()[NODE][short][field] != value {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await;
        assert!(
            reached.is_ok(),
            "syncz {short}.{field} never became {value}"
        );
    }

    pub async fn client(&self) -> AggregatedDiscoveryServiceClient<Channel> {
        let channel = Channel::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect()
            .await
            .unwrap();
        AggregatedDiscoveryServiceClient::new(channel)
            .max_decoding_message_size(64 * 1024 * 1024)
            .max_encoding_message_size(64 * 1024 * 1024)
    }

    pub async fn try_sotw(&self) -> Result<Sotw, tonic::Status> {
        let (tx, rx) = mpsc::channel(16);
        let mut client = self.client().await;
        let responses = client
            .stream_aggregated_resources(ReceiverStream::new(rx))
            .await?
            .into_inner();
        Ok(Sotw { tx, responses })
    }

    pub async fn sotw(&self) -> Sotw {
        self.try_sotw().await.expect("stream accepted")
    }

    pub async fn try_delta(&self) -> Result<Delta, tonic::Status> {
        let (tx, rx) = mpsc::channel(16);
        let mut client = self.client().await;
        let responses = client
            .delta_aggregated_resources(ReceiverStream::new(rx))
            .await?
            .into_inner();
        Ok(Delta { tx, responses })
    }

    pub async fn delta(&self) -> Delta {
        self.try_delta().await.expect("stream accepted")
    }
}

pub fn node() -> Option<Node> {
    Some(Node {
        id: NODE.into(),
        ..Default::default()
    })
}

pub fn rejection(message: &str) -> Option<RpcStatus> {
    Some(RpcStatus {
        code: 3,
        message: message.into(),
        details: vec![],
    })
}

/// A resource of `type_url` named `name` whose content (hence version) depends on `rev`.
pub fn res(type_url: &'static str, name: &str, rev: u32) -> Arc<Resource> {
    let tag = format!("rev{rev}");
    let r = match type_url {
        type_url::CLUSTER => Resource::encode(
            name,
            type_url,
            &Cluster {
                name: name.into(),
                alt_stat_name: tag,
                ..Default::default()
            },
        ),
        type_url::ENDPOINT => Resource::encode(
            name,
            type_url,
            &ClusterLoadAssignment {
                cluster_name: name.into(),
                endpoints: vec![LocalityLbEndpoints {
                    priority: rev,
                    ..Default::default()
                }],
                ..Default::default()
            },
        ),
        type_url::LISTENER => Resource::encode(
            name,
            type_url,
            &Listener {
                name: name.into(),
                stat_prefix: tag,
                ..Default::default()
            },
        ),
        type_url::ROUTE => Resource::encode(
            name,
            type_url,
            &RouteConfiguration {
                name: name.into(),
                virtual_hosts: vec![VirtualHost {
                    name: tag,
                    ..Default::default()
                }],
                ..Default::default()
            },
        ),
        _ => Resource::encode(
            name,
            type_url,
            &Secret {
                name: name.into(),
                r#type: Some(secret::Type::GenericSecret(GenericSecret {
                    secret: Some(DataSource {
                        specifier: Some(data_source::Specifier::InlineString(tag)),
                        ..Default::default()
                    }),
                    secrets: Default::default(),
                })),
            },
        ),
    };
    Arc::new(r)
}

/// A cluster whose encoding is a little over `bytes` long: a response carrying a few of
/// them fills the client's HTTP/2 stream window, so that the server's responses queue up
/// behind it until the client reads.
pub fn big_cluster(name: &str, bytes: usize) -> Arc<Resource> {
    Arc::new(Resource::encode(
        name,
        type_url::CLUSTER,
        &Cluster {
            name: name.into(),
            alt_stat_name: "x".repeat(bytes),
            ..Default::default()
        },
    ))
}

/// The error status a response stream ends with (not OK), within `WAIT`.
pub async fn ended_with_error<T: std::fmt::Debug>(responses: &mut Streaming<T>) -> tonic::Status {
    tokio::time::timeout(WAIT, responses.message())
        .await
        .expect("ended in time")
        .expect_err("an error status, not OK")
}

/// Waits until `cond` holds on the syncz view of `NODE`.
pub async fn wait_until(status: &XdsStatus, what: &str, cond: impl Fn(&serde_json::Value) -> bool) {
    let reached = tokio::time::timeout(WAIT, async {
        while !cond(&status.syncz_json()[NODE]) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    assert!(reached.is_ok(), "syncz never showed {what}");
}

/// A SotW client stream.
pub struct Sotw {
    tx: mpsc::Sender<DiscoveryRequest>,
    pub responses: Streaming<DiscoveryResponse>,
}

impl Sotw {
    pub async fn send(&self, request: DiscoveryRequest) {
        self.tx.send(request).await.expect("request stream open");
    }

    /// A first request of a type (with the node).
    pub async fn subscribe(&self, type_url: &str, names: &[&str]) {
        self.send(DiscoveryRequest {
            node: node(),
            type_url: type_url.into(),
            resource_names: names.iter().map(|n| n.to_string()).collect(),
            ..Default::default()
        })
        .await;
    }

    /// ACKs `response`, asking for `names`.
    pub async fn ack(&self, response: &DiscoveryResponse, names: &[&str]) {
        self.send(DiscoveryRequest {
            version_info: response.version_info.clone(),
            type_url: response.type_url.clone(),
            response_nonce: response.nonce.clone(),
            resource_names: names.iter().map(|n| n.to_string()).collect(),
            ..Default::default()
        })
        .await;
    }

    /// NACKs `response`, keeping `version` as the last good one.
    pub async fn nack(&self, response: &DiscoveryResponse, version: &str, names: &[&str]) {
        self.send(DiscoveryRequest {
            version_info: version.into(),
            type_url: response.type_url.clone(),
            response_nonce: response.nonce.clone(),
            resource_names: names.iter().map(|n| n.to_string()).collect(),
            error_detail: rejection("bad config"),
            ..Default::default()
        })
        .await;
    }

    pub async fn recv(&mut self) -> DiscoveryResponse {
        tokio::time::timeout(WAIT, self.responses.message())
            .await
            .expect("a response in time")
            .expect("stream ok")
            .expect("stream open")
    }

    /// Fails if a response arrives within `QUIET`.
    pub async fn expect_silence(&mut self) {
        if let Ok(r) = tokio::time::timeout(QUIET, self.responses.message()).await {
            panic!("unexpected response: {r:?}");
        }
    }
}

/// A Delta client stream.
pub struct Delta {
    tx: mpsc::Sender<DeltaDiscoveryRequest>,
    pub responses: Streaming<DeltaDiscoveryResponse>,
}

impl Delta {
    pub async fn send(&self, request: DeltaDiscoveryRequest) {
        self.tx.send(request).await.expect("request stream open");
    }

    pub async fn subscribe(&self, type_url: &str, names: &[&str]) {
        self.send(DeltaDiscoveryRequest {
            node: node(),
            type_url: type_url.into(),
            resource_names_subscribe: names.iter().map(|n| n.to_string()).collect(),
            ..Default::default()
        })
        .await;
    }

    pub async fn ack(&self, response: &DeltaDiscoveryResponse) {
        self.send(DeltaDiscoveryRequest {
            type_url: response.type_url.clone(),
            response_nonce: response.nonce.clone(),
            ..Default::default()
        })
        .await;
    }

    /// Rejects `response` with `message` as Envoy does.
    pub async fn nack(&self, response: &DeltaDiscoveryResponse, message: &str) {
        self.send(DeltaDiscoveryRequest {
            type_url: response.type_url.clone(),
            response_nonce: response.nonce.clone(),
            error_detail: rejection(message),
            ..Default::default()
        })
        .await;
    }

    pub async fn recv(&mut self) -> DeltaDiscoveryResponse {
        tokio::time::timeout(WAIT, self.responses.message())
            .await
            .expect("a response in time")
            .expect("stream ok")
            .expect("stream open")
    }

    pub async fn expect_silence(&mut self) {
        if let Ok(r) = tokio::time::timeout(QUIET, self.responses.message()).await {
            panic!("unexpected response: {r:?}");
        }
    }
}

/// Names of the resources in a response (decoding each `Any` by its type).
pub fn names(response: &DiscoveryResponse) -> Vec<String> {
    response
        .resources
        .iter()
        .map(|any| any_name(&any.type_url, &any.value))
        .collect()
}

pub fn delta_names(response: &DeltaDiscoveryResponse) -> Vec<String> {
    response.resources.iter().map(|r| r.name.clone()).collect()
}

fn any_name(type_url: &str, bytes: &[u8]) -> String {
    use prost::Message;
    match type_url {
        type_url::CLUSTER => Cluster::decode(bytes).unwrap().name,
        type_url::ENDPOINT => ClusterLoadAssignment::decode(bytes).unwrap().cluster_name,
        type_url::LISTENER => Listener::decode(bytes).unwrap().name,
        type_url::ROUTE => RouteConfiguration::decode(bytes).unwrap().name,
        _ => Secret::decode(bytes).unwrap().name,
    }
}

/// Leaves a route push due but unsent on a stream that has acknowledged listeners
/// (`lds_nonce`) and routes (`rds_nonce`) and stopped reading: the next generation's
/// responses back up behind megabytes of clusters.
pub async fn stall_route_push(h: &Harness, lds_nonce: &str, rds_nonce: &str) {
    // Eight MiB of clusters overflow the client's stream window while it does not read:
    // the response body stays busy sending them, the outbox behind it (`OUTBOX`, two slots,
    // src/xds/service.rs) fills with the endpoint and listener responses, so the route push
    // stays due.
    h.set(
        type_url::CLUSTER,
        (0..8)
            .map(|i| big_cluster(&format!("c{i}"), 1 << 20))
            .collect(),
    );
    h.set(type_url::ENDPOINT, vec![res(type_url::ENDPOINT, "a", 2)]);
    h.set(type_url::LISTENER, vec![res(type_url::LISTENER, "l", 2)]);
    h.set(
        type_url::ROUTE,
        vec![res(type_url::ROUTE, "80", 2), res(type_url::ROUTE, "90", 2)],
    );
    h.bump();
    wait_until(&h.status, "the listener response built", |v| {
        v["listeners"]["nonce_sent"] != lds_nonce
    })
    .await;
    tokio::time::sleep(QUIET).await;
    assert_eq!(
        h.status.syncz_json()[NODE]["routes"]["nonce_sent"],
        rds_nonce,
        "the route push is still queued"
    );
}
