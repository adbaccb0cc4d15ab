//! Translation: pure functions from the mesh model and a proxy to Envoy resources. No I/O,
//! no clocks, deterministic order. All names come from `naming`.
//!
//! Sharing: a `Translator` holds one model generation and builds and encodes each distinct
//! resource once. Endpoints, outbound clusters and outbound listeners are the same for
//! every sidecar (built lazily, once); outbound route configs depend on the proxy's
//! namespace (the short host names it may use), so they are cached per namespace; inbound
//! clusters and `virtualInbound` depend only on the ports the workload serves, so they are
//! cached per inbound port set. Proxies that get the same thing get the same `Arc`s.
//!
//! The caches are keyed by what a proxy claims (its namespace, its labels), so they are
//! bounded by the model, not by what clients send: a namespace without services shares
//! the config of every other such namespace, port sets found only through node-metadata
//! labels live in a capped cache that the next generation does not inherit.

pub mod bootstrap;
pub mod cluster;
pub mod endpoint;
pub mod filter;
pub mod inbound_ports;
pub mod listener;
pub mod naming;
pub mod node;
pub mod route;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};

use envoy_types::pb::envoy::config::core::v3::{
    address, config_source::ConfigSourceSpecifier, socket_address, Address, AggregatedConfigSource,
    ApiVersion, ConfigSource, SocketAddress,
};
use envoy_types::pb::google::protobuf::Duration;

use crate::envoy::{type_url, ProxyResources, Resource, ResourceMap};
use crate::mesh::{MeshModel, ProxyId};
use inbound_ports::{inbound_ports, InboundPorts};

/// Clusters and listeners of proxies serving one inbound port set (shared ones included).
struct InboundParts {
    clusters: Arc<ResourceMap>,
    listeners: Arc<ResourceMap>,
}

/// Translates one generation of the mesh model for any number of proxies. Each part is
/// built on first use; `Translator::next` carries parts whose inputs did not change over to
/// the next generation, so a change recomputes only what it can affect.
pub struct Translator {
    model: Arc<MeshModel>,
    /// Outbound and fixed clusters: depend on services only.
    clusters: OnceLock<Arc<ResourceMap>>,
    /// Load assignments: depend on services and endpoints.
    endpoints: OnceLock<Arc<ResourceMap>>,
    /// `virtualOutbound` and the per-port outbound listeners: depend on services and on the
    /// endpoints of headless services (which get a listener per pod address).
    listeners: OnceLock<Arc<ResourceMap>>,
    route_parts: OnceLock<Arc<Vec<route::EncodedPortRoutes>>>,
    /// Keyed by namespaces that have services; `""` stands for all others.
    routes_by_namespace: RwLock<HashMap<String, Arc<ResourceMap>>>,
    /// Port sets of workloads the model knows: carried to the next generation.
    inbound_by_ports: RwLock<HashMap<InboundPorts, Arc<InboundParts>>>,
    /// Port sets found only through a proxy's metadata labels: at most
    /// `MAX_CLAIMED_PORT_SETS`, built again by each generation.
    inbound_by_claimed_ports: RwLock<HashMap<InboundPorts, Arc<InboundParts>>>,
}

/// Distinct port sets from node-metadata labels cached per generation; past this, proxies
/// with yet another set get their inbound parts built for them alone.
pub const MAX_CLAIMED_PORT_SETS: usize = 1024;

fn encode_all<M: prost::Message>(
    type_url: &str,
    items: impl IntoIterator<Item = M>,
    name: impl Fn(&M) -> &str,
) -> ResourceMap {
    items
        .into_iter()
        .map(|m| {
            let n = name(&m).to_string();
            (n.clone(), Arc::new(Resource::encode(n, type_url, &m)))
        })
        .collect()
}

/// Looks `key` up in `cache`, building and inserting it when absent (the key is only
/// copied then). When two threads race, the first insert wins so every caller ends up with
/// the same `Arc`.
fn cached<K, Q, V>(cache: &RwLock<HashMap<K, Arc<V>>>, key: &Q, build: impl FnOnce() -> V) -> Arc<V>
where
    K: std::hash::Hash + Eq + std::borrow::Borrow<Q>,
    Q: std::hash::Hash + Eq + ToOwned<Owned = K> + ?Sized,
{
    if let Some(hit) = cache.read().expect("translator cache lock").get(key) {
        return hit.clone();
    }
    let built = Arc::new(build());
    cache
        .write()
        .expect("translator cache lock")
        .entry(key.to_owned())
        .or_insert(built)
        .clone()
}

/// As `cached`, but once `cache` holds `cap` entries a missing key is built without being
/// cached, so that keys chosen by clients cannot grow it without bound.
fn cached_bounded<K, V>(
    cache: &RwLock<HashMap<K, Arc<V>>>,
    key: &K,
    cap: usize,
    build: impl FnOnce() -> V,
) -> Arc<V>
where
    K: std::hash::Hash + Eq + Clone,
{
    if let Some(hit) = cache.read().expect("translator cache lock").get(key) {
        return hit.clone();
    }
    let built = Arc::new(build());
    let mut cache = cache.write().expect("translator cache lock");
    if cache.len() >= cap && !cache.contains_key(key) {
        return built;
    }
    cache.entry(key.clone()).or_insert(built).clone()
}

/// A part built by the previous generation, when its inputs are unchanged.
fn carry<T>(same: bool, part: &OnceLock<Arc<T>>) -> OnceLock<Arc<T>> {
    match part.get() {
        Some(built) if same => OnceLock::from(built.clone()),
        _ => OnceLock::new(),
    }
}

/// A cache of the previous generation, when the inputs of its entries are unchanged.
fn carry_cache<K: Clone, V>(
    same: bool,
    cache: &RwLock<HashMap<K, Arc<V>>>,
) -> RwLock<HashMap<K, Arc<V>>> {
    RwLock::new(if same {
        cache.read().expect("translator cache lock").clone()
    } else {
        HashMap::new()
    })
}

impl Translator {
    pub fn new(model: Arc<MeshModel>) -> Self {
        Translator {
            model,
            clusters: OnceLock::new(),
            endpoints: OnceLock::new(),
            listeners: OnceLock::new(),
            route_parts: OnceLock::new(),
            routes_by_namespace: RwLock::new(HashMap::new()),
            inbound_by_ports: RwLock::new(HashMap::new()),
            inbound_by_claimed_ports: RwLock::new(HashMap::new()),
        }
    }

    /// A translator for `model` that keeps what `previous` already built wherever the
    /// inputs of that part are unchanged: an endpoint-only change re-encodes endpoints (and
    /// the listeners of headless services) and nothing else.
    pub fn next(previous: &Translator, model: Arc<MeshModel>) -> Self {
        let services_same = previous.model.services == model.services;
        let endpoints_same = services_same && previous.model.endpoints == model.endpoints;
        let headless_same = services_same
            && (endpoints_same
                || listener::outbound::headless_endpoints(&previous.model)
                    == listener::outbound::headless_endpoints(&model));
        Translator {
            clusters: carry(services_same, &previous.clusters),
            endpoints: carry(endpoints_same, &previous.endpoints),
            listeners: carry(headless_same, &previous.listeners),
            route_parts: carry(services_same, &previous.route_parts),
            routes_by_namespace: carry_cache(services_same, &previous.routes_by_namespace),
            // Inbound parts embed the shared clusters and listeners.
            inbound_by_ports: carry_cache(headless_same, &previous.inbound_by_ports),
            inbound_by_claimed_ports: RwLock::new(HashMap::new()),
            model,
        }
    }

    pub fn model(&self) -> &Arc<MeshModel> {
        &self.model
    }

    fn clusters(&self) -> &Arc<ResourceMap> {
        self.clusters.get_or_init(|| {
            let mut clusters = cluster::outbound_clusters(&self.model);
            clusters.extend(cluster::fixed_clusters());
            Arc::new(encode_all(type_url::CLUSTER, clusters, |c| &c.name))
        })
    }

    fn endpoints(&self) -> &Arc<ResourceMap> {
        self.endpoints.get_or_init(|| {
            Arc::new(encode_all(
                type_url::ENDPOINT,
                endpoint::load_assignments(&self.model),
                |c| &c.cluster_name,
            ))
        })
    }

    fn listeners(&self) -> &Arc<ResourceMap> {
        self.listeners.get_or_init(|| {
            Arc::new(encode_all(
                type_url::LISTENER,
                listener::outbound::outbound_listeners(&self.model),
                |l| &l.name,
            ))
        })
    }

    fn routes(&self, namespace: &str) -> Arc<ResourceMap> {
        let parts = self
            .route_parts
            .get_or_init(|| Arc::new(route::encoded_route_parts(&self.model)));
        // Only a namespace with services sees its own short names; every other namespace,
        // whatever a proxy claims, gets the same configs.
        let namespace = if self.model.has_services_in(namespace) {
            namespace
        } else {
            ""
        };
        cached(&self.routes_by_namespace, namespace, || {
            parts
                .iter()
                .map(|p| {
                    let name = p.name().to_string();
                    // Each piece was encoded canonically (`route::encoded_route_parts`).
                    let resource = Resource::from_canonical_parts(
                        &name,
                        type_url::ROUTE,
                        p.assemble(namespace),
                    );
                    (name, Arc::new(resource))
                })
                .collect()
        })
    }

    fn inbound_parts(&self, ports: &InboundPorts) -> InboundParts {
        let mut clusters = ResourceMap::clone(self.clusters());
        clusters.extend(encode_all(
            type_url::CLUSTER,
            ports
                .iter()
                .map(|(port, protocol)| cluster::inbound_cluster(*port, *protocol)),
            |c| &c.name,
        ));
        let mut listeners = ResourceMap::clone(self.listeners());
        listeners.extend(encode_all(
            type_url::LISTENER,
            [listener::inbound::virtual_inbound(ports)],
            |l| &l.name,
        ));
        InboundParts {
            clusters: Arc::new(clusters),
            listeners: Arc::new(listeners),
        }
    }

    /// The inbound parts of a port set: from the carried cache when the set is one a
    /// workload of the model has, else from the capped per-generation cache.
    fn inbound(&self, ports: &InboundPorts, of_model_workload: bool) -> Arc<InboundParts> {
        if of_model_workload {
            cached(&self.inbound_by_ports, ports, || self.inbound_parts(ports))
        } else if let Some(hit) = self
            .inbound_by_ports
            .read()
            .expect("translator cache lock")
            .get(ports)
        {
            hit.clone()
        } else {
            cached_bounded(
                &self.inbound_by_claimed_ports,
                ports,
                MAX_CLAIMED_PORT_SETS,
                || self.inbound_parts(ports),
            )
        }
    }

    /// The ports the proxy's workload serves: its pod in the model, else the labels of its
    /// node metadata; none when neither is known.
    pub fn inbound_ports(&self, proxy: &ProxyId) -> InboundPorts {
        self.inbound_ports_of(proxy).0
    }

    /// The inbound ports, and whether they come from a workload of the model.
    fn inbound_ports_of(&self, proxy: &ProxyId) -> (InboundPorts, bool) {
        if let Some(workload) = proxy.workload(&self.model) {
            return (inbound_ports(&self.model, workload), true);
        }
        let ports = inbound_ports::workload_from_metadata(proxy)
            .map(|w| inbound_ports(&self.model, &w))
            .unwrap_or_default();
        // No ports at all is the same for everyone: keep it with the carried sets.
        let shared = ports.is_empty();
        (ports, shared)
    }

    /// Everything `proxy` should hold.
    pub fn proxy_resources(&self, proxy: &ProxyId) -> ProxyResources {
        let (ports, of_model) = self.inbound_ports_of(proxy);
        let inbound = self.inbound(&ports, of_model);
        let mut out = ProxyResources::default();
        out.by_type
            .insert(type_url::CLUSTER, inbound.clusters.clone());
        out.by_type
            .insert(type_url::ENDPOINT, self.endpoints().clone());
        out.by_type
            .insert(type_url::LISTENER, inbound.listeners.clone());
        out.by_type
            .insert(type_url::ROUTE, self.routes(&proxy.namespace));
        out
    }

    /// Entries in the caches keyed by what proxies claim: route configs by namespace,
    /// carried and claimed inbound port sets.
    #[cfg(test)]
    pub(crate) fn cache_sizes(&self) -> (usize, usize, usize) {
        fn len<K, V>(cache: &RwLock<HashMap<K, V>>) -> usize {
            cache.read().expect("translator cache lock").len()
        }
        (
            len(&self.routes_by_namespace),
            len(&self.inbound_by_ports),
            len(&self.inbound_by_claimed_ports),
        )
    }
}

/// The config source every dynamic resource uses (CDS and LDS in the bootstrap, RDS in
/// connection managers, EDS in clusters): the ADS stream, v3, waiting for meshd without a
/// deadline as istiod's do (`initial_fetch_timeout: 0s`). With Envoy's default of 15 s a
/// listener or cluster whose routes or endpoints are late would finish warming empty, and
/// answer 404 or 503 until they arrive.
pub(crate) fn ads_config_source() -> ConfigSource {
    ConfigSource {
        resource_api_version: ApiVersion::V3 as i32,
        config_source_specifier: Some(ConfigSourceSpecifier::Ads(AggregatedConfigSource {})),
        initial_fetch_timeout: Some(Duration::default()),
        ..Default::default()
    }
}

/// An IP (or host name) and TCP port as an Envoy address.
pub(crate) fn socket_address(address: &str, port: u16) -> Address {
    Address {
        address: Some(address::Address::SocketAddress(socket_address_inner(
            address, port,
        ))),
    }
}

pub(crate) fn socket_address_inner(address: &str, port: u16) -> SocketAddress {
    SocketAddress {
        address: address.to_string(),
        port_specifier: Some(socket_address::PortSpecifier::PortValue(u32::from(port))),
        ..Default::default()
    }
}
