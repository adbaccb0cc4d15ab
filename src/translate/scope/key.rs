//! Scope keys: what makes one proxy's view differ from another's, reduced so that proxies
//! that must get the same resources get the same key. The key is made only of things the
//! model holds (its namespaces, Sidecars, Gateways and route source selectors), so the
//! caches keyed by it are bounded by the model, whatever proxies claim.
//!
//! A namespace counts only when something in the model names it (it holds services or
//! Istio objects, or an `exportTo` or `sourceNamespace` lists it); every other namespace
//! sees the same as every other, and its key says `""`. Clusters and endpoints depend on
//! fewer namespaces still: only on those with DestinationRules or named by an `exportTo`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::TranslateOptions;
use crate::mesh::traffic::{DestinationRule, ExportTo, Gateway, Sidecar};
use crate::mesh::{MeshModel, ObjectKey, ProxyId, ProxyType};
use crate::translate::inbound_ports::workload_from_metadata;

/// Lookups derived once per model generation.
#[derive(Debug, Default)]
pub struct ScopeIndex {
    /// Every DestinationRule, sorted by namespace and name, those for one host in one
    /// namespace merged as istiod merges them (`destination_rule_for` input).
    pub destination_rules: Vec<Arc<DestinationRule>>,
    /// Namespaces that can see something others cannot.
    named_namespaces: BTreeSet<String>,
    /// Namespaces whose clusters and endpoints can differ from others'.
    cluster_namespaces: BTreeSet<String>,
    /// Distinct `(sourceLabels, sourceNamespace)` selectors of route matches.
    source_selectors: Vec<(BTreeMap<String, String>, Option<String>)>,
    /// Zones of workloads, when some DestinationRule makes endpoints depend on the
    /// proxy's locality (`super::locality`); empty otherwise.
    workload_zones: BTreeMap<ObjectKey, String>,
}

fn exported_namespaces(export_to: &ExportTo) -> impl Iterator<Item = &String> {
    match export_to {
        ExportTo::All => [].iter(),
        ExportTo::Namespaces(list) => list.iter(),
    }
}

impl ScopeIndex {
    pub fn new(model: &MeshModel, options: &TranslateOptions) -> ScopeIndex {
        let all: Vec<_> = model.destination_rules.values().cloned().collect();
        let destination_rules = crate::mesh::traffic::merge::merge_destination_rules(&all);
        let mut cluster_namespaces = BTreeSet::from([options.root_namespace.clone()]);
        for rule in &destination_rules {
            cluster_namespaces.insert(rule.key.namespace.clone());
            cluster_namespaces.extend(exported_namespaces(&rule.export_to).cloned());
        }
        for entry in model.service_entries.values() {
            cluster_namespaces.insert(entry.key.namespace.clone());
            cluster_namespaces.extend(exported_namespaces(&entry.export_to).cloned());
        }
        let mut named_namespaces = cluster_namespaces.clone();
        named_namespaces.extend(model.services.keys().map(|k| k.namespace.clone()));
        let mut selectors = BTreeSet::new();
        for vs in model.virtual_services.values() {
            named_namespaces.insert(vs.key.namespace.clone());
            named_namespaces.extend(exported_namespaces(&vs.export_to).cloned());
            let http = vs
                .http
                .iter()
                .flat_map(|r| &r.matches)
                .map(|m| (&m.source_labels, &m.source_namespace));
            let l4 = vs
                .tcp
                .iter()
                .flat_map(|r| &r.matches)
                .chain(vs.tls.iter().flat_map(|r| &r.matches))
                .map(|m| (&m.source_labels, &m.source_namespace));
            for (labels, namespace) in http.chain(l4) {
                if let Some(ns) = namespace {
                    named_namespaces.insert(ns.clone());
                }
                if !labels.is_empty() || namespace.is_some() {
                    selectors.insert((labels.clone(), namespace.clone()));
                }
            }
        }
        named_namespaces.extend(model.sidecars.keys().map(|k| k.namespace.clone()));
        named_namespaces.extend(model.gateways.keys().map(|k| k.namespace.clone()));
        let workload_zones = if destination_rules
            .iter()
            .any(|r| super::locality::rule_uses_locality(r))
        {
            super::locality::workload_zones(model)
        } else {
            BTreeMap::new()
        };
        ScopeIndex {
            workload_zones,
            destination_rules,
            named_namespaces,
            cluster_namespaces,
            source_selectors: selectors.into_iter().collect(),
        }
    }
}

/// Who a proxy is as far as its resources are concerned. See the module doc.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ScopeKey {
    pub proxy_type: ProxyType,
    /// The proxy's namespace when it can see something others cannot, else `""`.
    pub namespace: String,
    pub sidecar: Option<ObjectKey>,
    /// Which of the index's source selectors pick the proxy.
    pub sources: Vec<bool>,
    /// The Gateways that select a router, sorted.
    pub gateways: Vec<ObjectKey>,
    /// The zone of the proxy's workload, only while some rule fails over by locality.
    pub zone: Option<String>,
    /// The AuthorizationPolicies and RequestAuthentications that apply to the proxy's workload
    /// (a sidecar's inbound listener, a gateway's listeners).
    pub security: Vec<(&'static str, ObjectKey)>,
    /// Whether the proxy's xDS stream proved an identity, so that it holds a workload
    /// certificate (`ProxyId::identity`): proxies with and without one never share parts.
    pub identity: bool,
}

impl ScopeKey {
    /// The key of what clusters and endpoints depend on: the namespace only when it has
    /// DestinationRules, an `exportTo` names it or a Sidecar applies (whose `./` means the
    /// proxy's namespace), and no route source selectors.
    pub fn for_clusters(&self, index: &ScopeIndex) -> ScopeKey {
        ScopeKey {
            namespace: if self.sidecar.is_some()
                || index.cluster_namespaces.contains(&self.namespace)
            {
                self.namespace.clone()
            } else {
                String::new()
            },
            sources: Vec::new(),
            security: Vec::new(),
            ..self.clone()
        }
    }
}

/// The labels of the proxy's workload: its Pod's when the model knows it, else those of its
/// node metadata (`LABELS`).
pub fn proxy_labels(model: &MeshModel, proxy: &ProxyId) -> BTreeMap<String, String> {
    match proxy.workload(model) {
        Some(w) => w.labels.clone(),
        None => workload_from_metadata(proxy)
            .map(|w| w.labels)
            .unwrap_or_default(),
    }
}

fn selects(selector: &BTreeMap<String, String>, labels: &BTreeMap<String, String>) -> bool {
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// The Sidecar of a proxy, as istiod picks it: one in its namespace whose workload selector
/// picks its labels, else its namespace's Sidecar without selector, else the root
/// namespace's Sidecar without selector. Ties go to the first by name.
pub fn sidecar_for<'m>(
    model: &'m MeshModel,
    namespace: &'m str,
    labels: &BTreeMap<String, String>,
    root_namespace: &'m str,
) -> Option<&'m Arc<Sidecar>> {
    fn in_namespace<'m>(
        model: &'m MeshModel,
        ns: &'m str,
    ) -> impl Iterator<Item = &'m Arc<Sidecar>> + 'm {
        model
            .sidecars
            .iter()
            .filter(move |(k, _)| k.namespace == ns)
            .map(|(_, s)| s)
    }
    in_namespace(model, namespace)
        .find(|s| {
            s.workload_selector
                .as_ref()
                .is_some_and(|sel| selects(sel, labels))
        })
        .or_else(|| in_namespace(model, namespace).find(|s| s.workload_selector.is_none()))
        .or_else(|| in_namespace(model, root_namespace).find(|s| s.workload_selector.is_none()))
}

/// The Gateways whose selector picks a router's labels (an empty selector picks every
/// router), sorted by key.
pub fn gateways_for<'m>(
    model: &'m MeshModel,
    labels: &BTreeMap<String, String>,
) -> Vec<&'m Arc<Gateway>> {
    model
        .gateways
        .values()
        .filter(|g| selects(&g.selector, labels))
        .collect()
}

/// The key of `proxy` whose labels are `labels`.
pub fn scope_key(
    model: &MeshModel,
    index: &ScopeIndex,
    options: &TranslateOptions,
    proxy: &ProxyId,
    labels: &BTreeMap<String, String>,
) -> ScopeKey {
    let namespace = if index.named_namespaces.contains(&proxy.namespace) {
        proxy.namespace.clone()
    } else {
        String::new()
    };
    let (sidecar, gateways) = match proxy.proxy_type {
        ProxyType::Sidecar => (
            sidecar_for(model, &proxy.namespace, labels, &options.root_namespace)
                .map(|s| s.key.clone()),
            Vec::new(),
        ),
        ProxyType::Router => (
            None,
            gateways_for(model, labels)
                .into_iter()
                .map(|g| g.key.clone())
                .collect(),
        ),
    };
    let sources = index
        .source_selectors
        .iter()
        .map(|(sel, ns)| selects(sel, labels) && ns.as_ref().is_none_or(|ns| *ns == namespace))
        .collect();
    let zone = proxy
        .workload(model)
        .and_then(|w| index.workload_zones.get(&w.key))
        .cloned();
    // Gateways get the policies selecting their workload as sidecars do (authz::gateway).
    let security = crate::mesh::security::WorkloadSecurity::of(
        model,
        &proxy.namespace,
        labels,
        &options.root_namespace,
    )
    .keys();
    ScopeKey {
        proxy_type: proxy.proxy_type,
        namespace,
        sidecar,
        sources,
        gateways,
        zone,
        security,
        identity: proxy.identity.is_some(),
    }
}
