//! Translation: pure functions from the mesh model and a proxy to Envoy resources. No I/O,
//! no clocks, deterministic order. All names come from `naming`.
//!
//! Sharing: a `Translator` holds one model generation and builds and encodes each distinct
//! resource set once. What a proxy gets depends on its scope (`scope::ScopeKey`: its
//! namespace when the model names it, its Sidecar, the route source selectors it matches,
//! its Gateways), so each type is cached per key; clusters and endpoints use a coarser key
//! (`ScopeKey::for_clusters`), as they depend on fewer of those. Inbound clusters and
//! `virtualInbound` depend on the ports the workload serves as well, so inbound parts are
//! cached per scope and port set. Proxies that get the same thing get the same `Arc`s.
//!
//! The caches are keyed by what a proxy claims (its namespace, its labels), so they are
//! bounded by the model, not by what clients send: keys are built only from what the model
//! holds, each cache holds at most `MAX_SCOPES` keys (past that a proxy's parts are built for
//! it alone), and port sets found only through node-metadata labels live in a capped cache
//! that the next generation does not inherit.

pub mod authz;
pub mod bootstrap;
pub mod cluster;
pub mod endpoint;
pub mod filter;
pub mod gateway;
pub mod http_route;
pub mod inbound_ports;
pub mod listener;
pub mod mtls;
pub mod naming;
pub mod node;
pub mod route;
pub mod scope;
pub mod sidecar_ingress;
pub mod subset;
pub mod traffic_policy;

pub mod probe;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, OnceLock, RwLock};

use envoy_types::pb::envoy::config::core::v3::{
    address, config_source::ConfigSourceSpecifier, socket_address, Address, AggregatedConfigSource,
    ApiVersion, ConfigSource, SocketAddress,
};
use envoy_types::pb::google::protobuf::Duration;

use crate::envoy::{type_url, ProxyResources, Resource, ResourceMap};
use crate::mesh::peer_authentication::{self, InboundMtls};
use crate::mesh::{MeshModel, ProxyId, ProxyType};
use inbound_ports::{inbound_ports, InboundPorts};
use scope::key::{proxy_labels, scope_key};
use scope::{Scope, ScopeIndex, ScopeKey, TranslateOptions};

/// Clusters and listeners of proxies serving one inbound port set (shared ones included).
#[derive(Default)]
struct InboundParts {
    clusters: Arc<ResourceMap>,
    listeners: Arc<ResourceMap>,
}

/// A cache entry is a cell filled once: proxies that need a part being built wait for it
/// rather than each building their own copy (at a cold start, every stream that asked
/// before the first build finished built the clusters too: in one heap profile, 350 MB live
/// at once).
type Cache<K, V> = RwLock<HashMap<K, Arc<OnceLock<Arc<V>>>>>;

/// What inbound parts depend on: the scope, the served ports and their mTLS modes.
type InboundKey = (ScopeKey, InboundPorts, InboundMtls);

/// Translates one generation of the mesh model for any number of proxies. Each part is
/// built on first use; `Translator::next` carries parts whose inputs did not change over to
/// the next generation, so a change recomputes only what it can affect.
pub struct Translator {
    model: Arc<MeshModel>,
    options: Arc<TranslateOptions>,
    index: OnceLock<ScopeIndex>,
    /// Outbound and fixed clusters, by cluster key: depend on services and Istio config.
    clusters: Cache<ScopeKey, ResourceMap>,
    /// Load assignments, by cluster key: depend on services, endpoints and Istio config.
    endpoints: Cache<ScopeKey, ResourceMap>,
    /// `virtualOutbound` and the per-port outbound listeners: depend on services, Istio
    /// config and the endpoints of headless services (a listener per pod address).
    listeners: Cache<ScopeKey, ResourceMap>,
    /// Outbound route configs: depend on services and Istio config.
    routes: Cache<ScopeKey, ResourceMap>,
    /// Port sets (and their mTLS modes) of workloads the model knows: carried to the next
    /// generation.
    inbound_by_ports: Cache<InboundKey, InboundParts>,
    /// Port sets found only through a proxy's metadata labels: at most
    /// `MAX_CLAIMED_PORT_SETS`, built again by each generation.
    inbound_by_claimed_ports: Cache<InboundKey, InboundParts>,
    /// Router proxies' listeners, routes and secrets, by scope and listen ports.
    gateway_parts: Cache<(ScopeKey, gateway::PortMap), gateway::GatewayParts>,
    /// DestinationRules that ask a scope's clusters for ISTIO_MUTUAL, by scope key (for
    /// the warning to proxies without certificate): depend on services and Istio config.
    istio_mutual_rules: Cache<ScopeKey, Vec<String>>,
}

/// Distinct port sets from node-metadata labels cached per generation; past this, proxies
/// with yet another set get their inbound parts built for them alone.
pub const MAX_CLAIMED_PORT_SETS: usize = 1024;

/// Distinct scope keys cached per part and generation (see `cached_bounded`).
pub const MAX_SCOPES: usize = 4096;

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

/// Looks `key` up in `cache`, building and inserting it when absent. When two threads
/// race, one builds and the other waits for its result, so every caller ends up with the
/// same `Arc`. Once `cache` holds `cap` entries a missing key is built without being
/// cached, so that keys chosen by clients cannot grow it without bound.
fn cached_bounded<K, V>(
    cache: &Cache<K, V>,
    key: &K,
    cap: usize,
    build: impl FnOnce() -> V,
) -> Arc<V>
where
    K: std::hash::Hash + Eq + Clone,
    V: Default,
{
    let hit = cache
        .read()
        .expect("translator cache lock")
        .get(key)
        .cloned();
    if probe::active() {
        // Nothing is built while probing: a part not built yet ends the probe.
        if let Some(ready) = hit.as_ref().and_then(|cell| cell.get()) {
            return ready.clone();
        }
        probe::missed();
        return Arc::default();
    }
    let cell = match hit {
        Some(cell) => cell,
        None => {
            let mut cache = cache.write().expect("translator cache lock");
            if cache.len() >= cap && !cache.contains_key(key) {
                return Arc::new(build());
            }
            cache.entry(key.clone()).or_default().clone()
        }
    };
    // Built outside the map's lock: other keys are looked up and built meanwhile.
    cell.get_or_init(|| Arc::new(build())).clone()
}

/// A cache of the previous generation, when the inputs of its entries are unchanged.
fn carry_cache<K: Clone, V>(same: bool, cache: &Cache<K, V>) -> Cache<K, V> {
    RwLock::new(if same {
        cache.read().expect("translator cache lock").clone()
    } else {
        HashMap::new()
    })
}

/// Whether the Istio configuration of two models is the same.
fn istio_config_same(a: &MeshModel, b: &MeshModel) -> bool {
    // ServiceEntries and WorkloadEntries are not compared: all translation takes from them
    // is in `services` (hosts, ports, addresses, resolution, exportTo) and `endpoints`, so a
    // WorkloadEntry that moves is an endpoint-only change, as in istiod.
    a.virtual_services == b.virtual_services
        && a.destination_rules == b.destination_rules
        && a.sidecars == b.sidecars
        && a.gateways == b.gateways
        && a.peer_authentications == b.peer_authentications
}

impl Translator {
    pub fn new(model: Arc<MeshModel>) -> Self {
        Translator::with_options(model, Arc::new(TranslateOptions::default()))
    }

    pub fn with_options(model: Arc<MeshModel>, options: Arc<TranslateOptions>) -> Self {
        Translator {
            model,
            options,
            index: OnceLock::new(),
            clusters: Default::default(),
            endpoints: Default::default(),
            listeners: Default::default(),
            routes: Default::default(),
            inbound_by_ports: Default::default(),
            inbound_by_claimed_ports: Default::default(),
            gateway_parts: Default::default(),
            istio_mutual_rules: Default::default(),
        }
    }

    /// A translator for `model` that keeps what `previous` already built wherever the
    /// inputs of that part are unchanged: an endpoint-only change re-encodes endpoints (and
    /// the listeners of headless services) and nothing else.
    pub fn next(previous: &Translator, model: Arc<MeshModel>) -> Self {
        let istio_same = istio_config_same(&previous.model, &model);
        let services_same = istio_same && previous.model.services == model.services;
        let endpoints_same = services_same && previous.model.endpoints == model.endpoints;
        let headless_same = services_same
            && (endpoints_same
                || listener::outbound::headless_endpoints(&previous.model)
                    == listener::outbound::headless_endpoints(&model));
        // DNS clusters carry their endpoints inline; under mTLS (any proxy with a
        // certificate), clusters verify the identities of the endpoints and pick mTLS by
        // their sidecars.
        let clusters_same = services_same
            && (endpoints_same
                || (cluster::resolution::dns_endpoints(&previous.model)
                    == cluster::resolution::dns_endpoints(&model)
                    && mtls::upstream::endpoint_inputs(&previous.model)
                        == mtls::upstream::endpoint_inputs(&model)));
        Translator {
            options: previous.options.clone(),
            index: OnceLock::new(),
            clusters: carry_cache(clusters_same, &previous.clusters),
            endpoints: carry_cache(endpoints_same, &previous.endpoints),
            listeners: carry_cache(headless_same, &previous.listeners),
            routes: carry_cache(services_same, &previous.routes),
            // Inbound parts embed the shared clusters and listeners.
            inbound_by_ports: carry_cache(
                headless_same
                    && clusters_same
                    && crate::mesh::security::WorkloadSecurity::inputs_same(
                        &previous.model,
                        &model,
                    ),
                &previous.inbound_by_ports,
            ),
            inbound_by_claimed_ports: Default::default(),
            gateway_parts: Default::default(),
            istio_mutual_rules: carry_cache(services_same, &previous.istio_mutual_rules),
            model,
        }
    }

    pub fn model(&self) -> &Arc<MeshModel> {
        &self.model
    }

    pub fn options(&self) -> &TranslateOptions {
        &self.options
    }

    fn index(&self) -> &ScopeIndex {
        self.index
            .get_or_init(|| ScopeIndex::new(&self.model, &self.options))
    }

    /// The scope of `key`, for a proxy whose labels are `labels` (which agree with the key).
    fn scope<'a>(&'a self, key: &'a ScopeKey, labels: &'a BTreeMap<String, String>) -> Scope<'a> {
        Scope {
            model: &self.model,
            options: &self.options,
            index: self.index(),
            namespace: &key.namespace,
            proxy_type: key.proxy_type,
            labels,
            sidecar: key
                .sidecar
                .as_ref()
                .and_then(|k| self.model.sidecars.get(k))
                .map(|s| s.as_ref()),
            gateway_keys: &key.gateways,
            zone: key.zone.as_deref(),
            identity: key.identity,
        }
    }

    fn clusters(&self, key: &ScopeKey, labels: &BTreeMap<String, String>) -> Arc<ResourceMap> {
        cached_bounded(&self.clusters, key, MAX_SCOPES, || {
            let mut clusters = cluster::outbound_clusters(&self.scope(key, labels));
            clusters.extend(cluster::fixed_clusters());
            encode_all(type_url::CLUSTER, clusters, |c| &c.name)
        })
    }

    fn endpoints(&self, key: &ScopeKey, labels: &BTreeMap<String, String>) -> Arc<ResourceMap> {
        cached_bounded(&self.endpoints, key, MAX_SCOPES, || {
            encode_all(
                type_url::ENDPOINT,
                endpoint::load_assignments(&self.scope(key, labels)),
                |c| &c.cluster_name,
            )
        })
    }

    fn listeners(&self, key: &ScopeKey, labels: &BTreeMap<String, String>) -> Arc<ResourceMap> {
        cached_bounded(&self.listeners, key, MAX_SCOPES, || {
            encode_all(
                type_url::LISTENER,
                listener::outbound::outbound_listeners(&self.scope(key, labels)),
                |l| &l.name,
            )
        })
    }

    fn routes(&self, key: &ScopeKey, labels: &BTreeMap<String, String>) -> Arc<ResourceMap> {
        cached_bounded(&self.routes, key, MAX_SCOPES, || {
            let scope = self.scope(key, labels);
            encode_all(
                type_url::ROUTE,
                route::outbound_route_configs(&scope)
                    .into_iter()
                    .chain(route::sniffed::sniffed_route_configs(&scope)),
                |r| &r.name,
            )
        })
    }

    /// `proxy_ip` matters only to Sidecar ingress ports sent to the proxy's own IP
    /// (`sidecar_ingress`); parts that use it are not cached.
    fn inbound_parts(
        &self,
        key: &ScopeKey,
        labels: &BTreeMap<String, String>,
        ports: &InboundPorts,
        mtls: &InboundMtls,
        proxy_ip: &str,
    ) -> InboundParts {
        if probe::active() {
            // Built for this proxy alone (or a cache miss): not while probing.
            probe::missed();
            return InboundParts::default();
        }
        let mut clusters =
            ResourceMap::clone(&self.clusters(&key.for_clusters(self.index()), labels));
        let inbound_clusters = match sidecar_ingress::of_scope(&self.model, key) {
            Some(ingress) => sidecar_ingress::inbound_clusters(&ingress, proxy_ip),
            None => ports
                .iter()
                .map(|(port, protocol)| cluster::inbound_cluster(*port, *protocol))
                .collect(),
        };
        clusters.extend(encode_all(type_url::CLUSTER, inbound_clusters, |c| &c.name));
        let mut listeners = ResourceMap::clone(&self.listeners(key, labels));
        let mut inbound = listener::inbound::virtual_inbound(ports, mtls, key.identity);
        let security =
            crate::mesh::security::WorkloadSecurity::from_keys(&self.model, &key.security);
        authz::secure_inbound(
            &mut inbound,
            &self.model,
            &security,
            &naming::blackhole_chain(naming::VIRTUAL_INBOUND),
        );
        listeners.extend(encode_all(type_url::LISTENER, [inbound], |l| &l.name));
        InboundParts {
            clusters: Arc::new(clusters),
            listeners: Arc::new(listeners),
        }
    }

    /// The inbound parts of a scope and port set: from the carried cache when the set is
    /// one a workload of the model has, else from the capped per-generation cache.
    fn inbound(
        &self,
        key: &ScopeKey,
        labels: &BTreeMap<String, String>,
        ports: InboundPorts,
        mtls: InboundMtls,
        of_model_workload: bool,
    ) -> Arc<InboundParts> {
        let cache_key = (key.clone(), ports, mtls);
        let build = || self.inbound_parts(key, labels, &cache_key.1, &cache_key.2, "");
        if of_model_workload {
            return cached_bounded(&self.inbound_by_ports, &cache_key, MAX_SCOPES, build);
        }
        let carried = (self.inbound_by_ports.read())
            .expect("translator cache lock")
            .get(&cache_key)
            .cloned();
        if let Some(hit) = carried {
            if probe::active() && hit.get().is_none() {
                probe::missed();
                return Arc::default();
            }
            // Maybe being built by another stream: wait for it (outside the map's lock).
            hit.wait().clone()
        } else {
            cached_bounded(
                &self.inbound_by_claimed_ports,
                &cache_key,
                MAX_CLAIMED_PORT_SETS,
                build,
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

    /// The mTLS modes the proxy's inbound side enforces: its PeerAuthentications', as far
    /// as a proxy without certificate can (`mtls::no_identity`).
    fn inbound_mtls(&self, proxy: &ProxyId, labels: &BTreeMap<String, String>) -> InboundMtls {
        let modes = peer_authentication::inbound_mtls(
            &self.model,
            &self.options.root_namespace,
            &proxy.namespace,
            labels,
        );
        if proxy.identity.is_some() {
            modes
        } else {
            mtls::no_identity::inbound_modes(modes)
        }
    }

    /// The scope key of `proxy` and the labels it was derived from.
    pub fn scope_key(&self, proxy: &ProxyId) -> (ScopeKey, BTreeMap<String, String>) {
        let labels = proxy_labels(&self.model, proxy);
        let key = scope_key(&self.model, self.index(), &self.options, proxy, &labels);
        (key, labels)
    }

    /// Everything `proxy` should hold.
    pub fn proxy_resources(&self, proxy: &ProxyId) -> ProxyResources {
        let (key, labels) = self.scope_key(proxy);
        if key.proxy_type == ProxyType::Router {
            return self.router_resources(proxy, &key, &labels);
        }
        let cluster_key = key.for_clusters(self.index());
        let mtls = self.inbound_mtls(proxy, &labels);
        // A Sidecar with ingress listeners replaces the ports of the workload's services.
        let inbound = match sidecar_ingress::of_scope(&self.model, &key) {
            Some(ingress) if sidecar_ingress::uses_proxy_ip(&ingress) => {
                let ports = sidecar_ingress::chain_ports(&ingress);
                Arc::new(self.inbound_parts(&key, &labels, &ports, &mtls, &proxy.ip))
            }
            Some(ingress) => {
                let ports = sidecar_ingress::chain_ports(&ingress);
                self.inbound(&key, &labels, ports, mtls, true)
            }
            None => {
                let (ports, of_model) = self.inbound_ports_of(proxy);
                self.inbound(&key, &labels, ports, mtls, of_model)
            }
        };
        let mut out = ProxyResources::default();
        out.by_type
            .insert(type_url::CLUSTER, inbound.clusters.clone());
        out.by_type
            .insert(type_url::ENDPOINT, self.endpoints(&cluster_key, &labels));
        out.by_type
            .insert(type_url::LISTENER, inbound.listeners.clone());
        out.by_type
            .insert(type_url::ROUTE, self.routes(&key, &labels));
        out
    }

    /// Entries in the caches keyed by what proxies claim: route configs by scope, carried
    /// and claimed inbound port sets.
    #[cfg(test)]
    pub(crate) fn cache_sizes(&self) -> (usize, usize, usize) {
        fn len<K, V>(cache: &RwLock<HashMap<K, V>>) -> usize {
            cache.read().expect("translator cache lock").len()
        }
        (
            len(&self.routes),
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
