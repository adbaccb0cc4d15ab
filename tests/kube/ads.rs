//! An ADS client standing in for a sidecar: SotW, wildcard clusters and listeners, then the
//! endpoints and routes they name, as Envoy asks for them; every response is acked. It
//! records the latest version per type and counts responses, so tests can compare what two
//! meshd processes serve one node and count pushes.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use envoy_types::pb::envoy::config::cluster::v3::cluster::{ClusterDiscoveryType, DiscoveryType};
use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::envoy::config::listener::v3::{filter, Listener};
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::http_connection_manager::RouteSpecifier;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager;
use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
use envoy_types::pb::envoy::service::discovery::v3::{DiscoveryRequest, DiscoveryResponse};
use meshd::xds::type_url;
use prost::Message;
use tokio::sync::mpsc;
use tokio_stream::StreamExt;

/// What the probe holds.
#[derive(Debug, Default, Clone)]
pub struct Seen {
    /// Latest `version_info` per short type name (`clusters`, `endpoints`, ...).
    pub versions: BTreeMap<String, String>,
    /// Responses received, all types.
    pub responses: u64,
    /// Set when the stream ended (meshd went away or refused it).
    pub ended: Option<String>,
}

/// The probe, on its own runtime thread; disconnects on drop.
pub struct AdsProbe {
    pub node_id: String,
    seen: Arc<Mutex<Seen>>,
    _runtime: tokio::runtime::Runtime,
}

impl AdsProbe {
    pub fn connect(xds: SocketAddr, node_id: &str) -> AdsProbe {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("probe runtime");
        let seen = Arc::new(Mutex::new(Seen::default()));
        runtime.spawn(run(xds, node_id.to_string(), seen.clone()));
        AdsProbe {
            node_id: node_id.to_string(),
            seen,
            _runtime: runtime,
        }
    }

    pub fn seen(&self) -> Seen {
        self.seen.lock().unwrap().clone()
    }

    pub fn versions(&self) -> BTreeMap<String, String> {
        self.seen().versions
    }

    pub fn responses(&self) -> u64 {
        self.seen().responses
    }
}

/// Per type: the names asked for (`None`: wildcard), and the last version and nonce.
#[derive(Default)]
struct Subscription {
    names: Option<BTreeSet<String>>,
    version: String,
    nonce: String,
}

async fn run(xds: SocketAddr, node_id: String, seen: Arc<Mutex<Seen>>) {
    let ended = stream(xds, &node_id, &seen).await;
    seen.lock().unwrap().ended = Some(ended);
}

async fn stream(xds: SocketAddr, node_id: &str, seen: &Mutex<Seen>) -> String {
    let mut client = match AggregatedDiscoveryServiceClient::connect(format!("http://{xds}")).await
    {
        Ok(client) => client,
        Err(e) => return format!("connect: {e}"),
    };
    let (tx, rx) = mpsc::unbounded_channel();
    let mut subs: BTreeMap<&'static str, Subscription> = BTreeMap::new();
    let request = |t: &str, sub: &Subscription| DiscoveryRequest {
        node: Some(Node {
            id: node_id.to_string(),
            ..Default::default()
        }),
        type_url: t.to_string(),
        resource_names: sub.names.iter().flatten().cloned().collect(),
        version_info: sub.version.clone(),
        response_nonce: sub.nonce.clone(),
        ..Default::default()
    };
    for t in [type_url::CLUSTER, type_url::LISTENER] {
        let sub = subs.entry(t).or_default();
        let _ = tx.send(request(t, sub));
    }
    let mut responses = match client
        .stream_aggregated_resources(tokio_stream::wrappers::UnboundedReceiverStream::new(rx))
        .await
    {
        Ok(r) => r.into_inner(),
        Err(e) => return format!("stream: {e}"),
    };
    loop {
        let response = match responses.next().await {
            Some(Ok(r)) => r,
            Some(Err(e)) => return format!("stream: {e}"),
            None => return "stream closed".into(),
        };
        let Some(t) = type_url::PUSH_ORDER
            .iter()
            .copied()
            .find(|t| *t == response.type_url)
        else {
            continue;
        };
        // What this response makes the proxy ask for next (Envoy's order: the dependent
        // type's new names go out before the ACK).
        let wanted = match t {
            t if t == type_url::CLUSTER => Some((type_url::ENDPOINT, eds_names(&response))),
            t if t == type_url::LISTENER => Some((type_url::ROUTE, rds_names(&response))),
            _ => None,
        };
        if let Some((dep, names)) = wanted {
            let sub = subs.entry(dep).or_default();
            if sub.names.as_ref() != Some(&names) {
                sub.names = Some(names);
                let _ = tx.send(request(dep, sub));
            }
        }
        let sub = subs.entry(t).or_default();
        sub.version = response.version_info.clone();
        sub.nonce = response.nonce.clone();
        let _ = tx.send(request(t, sub));
        let mut seen = seen.lock().unwrap();
        seen.responses += 1;
        seen.versions.insert(
            type_url::short_name(t).to_string(),
            response.version_info.clone(),
        );
    }
}

/// The EDS resource names of the EDS clusters in a CDS response.
fn eds_names(response: &DiscoveryResponse) -> BTreeSet<String> {
    response
        .resources
        .iter()
        .filter_map(|any| Cluster::decode(any.value.as_slice()).ok())
        .filter(|c| {
            c.cluster_discovery_type == Some(ClusterDiscoveryType::Type(DiscoveryType::Eds as i32))
        })
        .map(|c| match &c.eds_cluster_config {
            Some(eds) if !eds.service_name.is_empty() => eds.service_name.clone(),
            _ => c.name,
        })
        .collect()
}

/// The route configuration names the HTTP connection managers of an LDS response use.
fn rds_names(response: &DiscoveryResponse) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for any in &response.resources {
        let Ok(listener) = Listener::decode(any.value.as_slice()) else {
            continue;
        };
        let chains = listener
            .filter_chains
            .iter()
            .chain(listener.default_filter_chain.iter());
        for f in chains.flat_map(|c| &c.filters) {
            let Some(filter::ConfigType::TypedConfig(config)) = &f.config_type else {
                continue;
            };
            if !config.type_url.ends_with("HttpConnectionManager") {
                continue;
            }
            if let Ok(hcm) = HttpConnectionManager::decode(config.value.as_slice()) {
                if let Some(RouteSpecifier::Rds(rds)) = hcm.route_specifier {
                    names.insert(rds.route_config_name);
                }
            }
        }
    }
    names
}
