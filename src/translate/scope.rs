//! What one proxy sees: the services it may reach, the rules that apply to its traffic, and
//! its Sidecar. Every builder of per-proxy resources takes a `Scope`; two proxies with the
//! same `ScopeKey` (see `scope::key`) get the same resources, so the translator caches by
//! key, not by proxy.
//!
//! Visibility follows istiod: a service, VirtualService or DestinationRule is visible to a
//! proxy when its `exportTo` names the proxy's namespace (or everyone); a Sidecar's egress
//! hosts then narrow the services and VirtualServices further.

pub mod destination_rule;
pub mod egress;
pub mod key;
pub mod locality;

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::mesh::traffic::select::destination_rule_for;
use crate::mesh::traffic::{
    DestinationRule, Gateway, GatewayRef, OutboundPolicy, Sidecar, VirtualService,
};
use crate::mesh::{MeshModel, ObjectKey, ProxyType, Service};

pub use key::{ScopeIndex, ScopeKey};

/// Mesh-wide settings of translation (istiod's mesh config), from `meshd serve` flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranslateOptions {
    /// Istio's root namespace: its Sidecar without selector is every namespace's default,
    /// its rules apply mesh-wide (`--root-namespace`).
    pub root_namespace: String,
    /// Where traffic to unknown destinations goes when no Sidecar says otherwise
    /// (`--outbound-traffic-policy`).
    pub outbound_traffic_policy: OutboundPolicy,
    /// Whether gateway private keys may be served over SDS before streams are authenticated
    /// (`--insecure-serve-gateway-secrets`).
    pub serve_gateway_secrets: bool,
    /// Automatic mTLS: clients with a workload certificate use mTLS to endpoints with a
    /// sidecar without a DestinationRule asking (mesh config `enableAutoMtls`,
    /// `--auto-mtls`; on by default, as in istiod). Which proxies hold a certificate is per
    /// proxy (`Scope::identity`), not a mesh setting.
    pub auto_mtls: bool,
    /// The SPIFFE trust domain of workload identities.
    pub trust_domain: String,
}

/// istiod's default root namespace.
pub const DEFAULT_ROOT_NAMESPACE: &str = "istio-system";

impl Default for TranslateOptions {
    fn default() -> Self {
        TranslateOptions {
            root_namespace: DEFAULT_ROOT_NAMESPACE.to_string(),
            outbound_traffic_policy: OutboundPolicy::AllowAny,
            serve_gateway_secrets: false,
            auto_mtls: true,
            trust_domain: crate::mesh::DEFAULT_DOMAIN_SUFFIX.to_string(),
        }
    }
}

/// The view of the mesh one proxy (or every proxy with the same key) gets.
#[derive(Clone, Copy)]
pub struct Scope<'a> {
    pub model: &'a MeshModel,
    pub options: &'a TranslateOptions,
    pub index: &'a ScopeIndex,
    /// The proxy's namespace, or `""` when nothing in the model names that namespace (all
    /// such namespaces see the same thing, see `ScopeKey`).
    pub namespace: &'a str,
    pub proxy_type: ProxyType,
    /// The proxy's workload labels (its Pod's, else its node metadata's).
    pub labels: &'a BTreeMap<String, String>,
    /// The Sidecar that applies to the proxy, when any (sidecars only).
    pub sidecar: Option<&'a Sidecar>,
    /// The Gateways whose selector picks the proxy (routers only), sorted by key.
    pub gateway_keys: &'a [ObjectKey],
    /// The zone of the proxy's workload, when locality load balancing needs it (see
    /// `scope::locality`).
    pub zone: Option<&'a str>,
    /// Whether the proxy holds a workload certificate (`ScopeKey::identity`): only then may
    /// its resources reference SDS secrets (`translate::mtls`).
    pub identity: bool,
}

impl<'a> Scope<'a> {
    /// Services the proxy may reach: exported to its namespace, and within its Sidecar's
    /// egress hosts when it has one. Sorted by namespace and name.
    pub fn services(&self) -> impl Iterator<Item = &'a Arc<Service>> + 'a {
        let this = *self;
        self.model
            .services
            .values()
            .filter(move |s| this.service_visible(s))
    }

    /// Whether `service` is among `services()`.
    pub fn service_visible(&self, service: &Service) -> bool {
        service.export_to().visible_to(self.namespace)
            && self.sidecar.is_none_or(|sc| {
                egress::allows(
                    sc,
                    self.namespace,
                    &service.key.namespace,
                    &service.hostname,
                )
            })
    }

    /// The DestinationRule for traffic from this proxy to `host` (whose service lives in
    /// `service_namespace` when it is a registry service), as istiod chooses it.
    pub fn destination_rule(
        &self,
        host: &str,
        service_namespace: Option<&str>,
    ) -> Option<&'a Arc<DestinationRule>> {
        destination_rule_for(
            &self.index.destination_rules,
            host,
            service_namespace,
            self.namespace,
            &self.options.root_namespace,
        )
    }

    /// VirtualServices that apply to the proxy's own outbound traffic: bound to `mesh`,
    /// exported to its namespace, and (with a Sidecar) naming a host its egress allows.
    /// Sorted by namespace and name.
    pub fn virtual_services(&self) -> impl Iterator<Item = &'a Arc<VirtualService>> + 'a {
        let this = *self;
        self.model.virtual_services.values().filter(move |vs| {
            vs.gateways.contains(&GatewayRef::Mesh)
                && vs.export_to.visible_to(this.namespace)
                && this.sidecar.is_none_or(|sc| {
                    vs.hosts
                        .iter()
                        .any(|h| egress::allows(sc, this.namespace, &vs.key.namespace, h))
                })
        })
    }

    /// The Gateways whose selector picks the proxy (routers only), sorted by key.
    pub fn gateways(&self) -> impl Iterator<Item = &'a Arc<Gateway>> + 'a {
        let model = self.model;
        self.gateway_keys
            .iter()
            .filter_map(move |k| model.gateways.get(k))
    }

    /// VirtualServices bound to `gateway` and exported to the gateway proxy's namespace.
    pub fn gateway_virtual_services(
        &self,
        gateway: &'a ObjectKey,
    ) -> impl Iterator<Item = &'a Arc<VirtualService>> + 'a {
        let this = *self;
        self.model.virtual_services.values().filter(move |vs| {
            vs.gateways
                .iter()
                .any(|g| matches!(g, GatewayRef::Gateway(k) if k == gateway))
                && vs.export_to.visible_to(this.namespace)
        })
    }

    /// Where traffic to a destination the proxy does not know goes: its Sidecar's policy,
    /// else the mesh's.
    pub fn outbound_policy(&self) -> OutboundPolicy {
        self.sidecar
            .and_then(|sc| sc.outbound_traffic_policy.clone())
            .unwrap_or_else(|| self.options.outbound_traffic_policy.clone())
    }

    /// Whether the source match (`sourceLabels`, `sourceNamespace`) of a route picks this
    /// proxy. An empty selector and no namespace pick everyone.
    pub fn is_source(
        &self,
        source_labels: &BTreeMap<String, String>,
        source_namespace: Option<&str>,
    ) -> bool {
        source_labels
            .iter()
            .all(|(k, v)| self.labels.get(k) == Some(v))
            && source_namespace.is_none_or(|ns| ns == self.namespace)
    }
}
