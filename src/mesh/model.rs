//! The mesh model: services, their ports and protocols, endpoints and workloads, indexed
//! for the lookups translation needs. Built from source objects by `mesh::build`; knows
//! nothing of Kubernetes wire types or Envoy.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::protocol::Protocol;

/// Namespace and name of a namespaced object.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey {
    pub namespace: String,
    pub name: String,
}

impl std::fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// The service account of a pod that names none (Kubernetes' default).
pub const DEFAULT_SERVICE_ACCOUNT: &str = "default";

/// The cluster's DNS suffix (`svc.cluster.local` after the namespace).
pub const DEFAULT_DOMAIN_SUFFIX: &str = "cluster.local";

#[derive(Debug, Clone, PartialEq)]
pub struct Service {
    pub key: ObjectKey,
    /// `name.namespace.svc.cluster.local`
    pub hostname: String,
    /// `None` for headless services (`clusterIP: None`) and services without one yet.
    pub cluster_ip: Option<String>,
    pub ports: Vec<ServicePort>,
    /// `None` when the service has no selector (endpoints come only from EndpointSlices).
    pub selector: Option<BTreeMap<String, String>>,
    pub labels: BTreeMap<String, String>,
    /// Kubernetes, ExternalName or a ServiceEntry host (`mesh::origin`).
    pub origin: super::origin::ServiceOrigin,
}

impl Service {
    /// Whether the selector picks the workload's labels. An absent or empty selector picks
    /// none, as in Kubernetes. (The namespace is the caller's to check.)
    pub fn selects(&self, workload: &Workload) -> bool {
        self.selector.as_ref().is_some_and(|sel| {
            !sel.is_empty() && sel.iter().all(|(k, v)| workload.labels.get(k) == Some(v))
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePort {
    /// May be empty for a single-port service.
    pub name: String,
    pub port: u16,
    pub target_port: TargetPort,
    pub protocol: Protocol,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetPort {
    Number(u16),
    /// A container port name, resolved per pod.
    Name(String),
}

/// One address that serves one service port.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Endpoint {
    pub address: String,
    /// The port on the endpoint (the resolved target port).
    pub port: u16,
    pub ready: bool,
    /// The pod behind the endpoint, when known.
    pub workload: Option<ObjectKey>,
    pub labels: BTreeMap<String, String>,
    pub service_account: Option<String>,
    /// True when the workload runs a sidecar that terminates mesh mTLS
    /// (Istio's `security.istio.io/tlsMode: istio` label).
    pub mtls_ready: bool,
    pub zone: Option<String>,
}

/// A pod (or later a WorkloadEntry): something a proxy can run beside.
#[derive(Debug, Clone, PartialEq)]
pub struct Workload {
    pub key: ObjectKey,
    pub ip: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub service_account: String,
    pub ready: bool,
    /// Named container ports (`name -> port`), for resolving named target ports.
    pub named_ports: BTreeMap<String, u16>,
    /// True when the workload runs a sidecar (see `Endpoint::mtls_ready`).
    pub mtls_ready: bool,
}

/// Endpoints of one service port.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PortEndpoints {
    pub endpoints: Vec<Endpoint>,
}

/// The whole mesh as translation sees it. Cheap to share (`Arc`) between proxies.
#[derive(Debug, Clone, Default)]
pub struct MeshModel {
    pub namespaces: BTreeSet<String>,
    /// Services by namespace/name.
    pub services: BTreeMap<ObjectKey, Arc<Service>>,
    /// Endpoints by (service, service port number), sorted by address then port.
    pub endpoints: BTreeMap<(ObjectKey, u16), Arc<PortEndpoints>>,
    /// Workloads by namespace/name.
    pub workloads: BTreeMap<ObjectKey, Arc<Workload>>,
    /// Workload keys by IP, for proxies that identify themselves by address.
    pub workloads_by_ip: BTreeMap<String, ObjectKey>,
    /// Checked VirtualServices by namespace/name (not applied to traffic yet).
    pub virtual_services: BTreeMap<ObjectKey, Arc<super::traffic::VirtualService>>,
    /// Checked DestinationRules by namespace/name (not applied to traffic yet).
    pub destination_rules: BTreeMap<ObjectKey, Arc<super::traffic::DestinationRule>>,
    /// Checked ServiceEntries and WorkloadEntries. Translation reads them through `services`
    /// (one per entry host) and `endpoints` (`mesh::build::entry_services`).
    pub service_entries: BTreeMap<ObjectKey, Arc<super::traffic::ServiceEntry>>,
    pub workload_entries: BTreeMap<ObjectKey, Arc<super::traffic::WorkloadEntry>>,
    /// ServiceEntry hosts -> their service keys (the first namespace by name when several
    /// namespaces declare a host), for `service_by_hostname`.
    pub entry_hosts: BTreeMap<String, ObjectKey>,
    /// Checked Sidecars and Gateways (not applied to traffic yet).
    pub sidecars: BTreeMap<ObjectKey, Arc<super::traffic::Sidecar>>,
    pub gateways: BTreeMap<ObjectKey, Arc<super::traffic::Gateway>>,
    /// TLS credentials from Secrets, for gateways' `credentialName` (key material redacted
    /// from `Debug`).
    pub secrets: BTreeMap<ObjectKey, Arc<super::secret::TlsCredential>>,
    /// Checked AuthorizationPolicies and RequestAuthentications (`mesh::security`).
    pub authorization_policies: BTreeMap<ObjectKey, Arc<super::security::AuthorizationPolicy>>,
    pub request_authentications: BTreeMap<ObjectKey, Arc<super::security::RequestAuthentication>>,
    /// JWKS documents fetched from RequestAuthentication `jwksUri`s, by URI (filled by the
    /// fetcher beside the source; absent while not fetched).
    pub fetched_jwks: BTreeMap<String, Arc<str>>,
    /// Checked PeerAuthentications (`mesh::peer_authentication` picks the one that applies).
    pub peer_authentications:
        BTreeMap<ObjectKey, Arc<super::peer_authentication::PeerAuthentication>>,
}

impl MeshModel {
    pub fn service_by_hostname(&self, hostname: &str) -> Option<&Arc<Service>> {
        if let Some(service) = self.entry_hosts.get(hostname) {
            return self.services.get(service);
        }
        // Hostnames are `name.ns.svc.<suffix>`; the key is recoverable from them.
        let mut parts = hostname.splitn(3, '.');
        let name = parts.next()?;
        let namespace = parts.next()?;
        let service = self.services.get(&ObjectKey {
            namespace: namespace.to_string(),
            name: name.to_string(),
        })?;
        (service.hostname == hostname).then_some(service)
    }

    pub fn endpoints_of(&self, service: &ObjectKey, port: u16) -> Option<&Arc<PortEndpoints>> {
        self.endpoints.get(&(service.clone(), port))
    }

    /// Whether any service lives in `namespace`.
    pub fn has_services_in(&self, namespace: &str) -> bool {
        self.services
            .range(
                ObjectKey {
                    namespace: namespace.to_string(),
                    name: String::new(),
                }..,
            )
            .next()
            .is_some_and(|(k, _)| k.namespace == namespace)
    }

    /// Services whose selector picks the workload's labels (in its namespace).
    pub fn services_selecting<'a>(
        &'a self,
        workload: &'a Workload,
    ) -> impl Iterator<Item = &'a Arc<Service>> + 'a {
        self.services
            .range(
                ObjectKey {
                    namespace: workload.key.namespace.clone(),
                    name: String::new(),
                }..,
            )
            .take_while(move |(k, _)| k.namespace == workload.key.namespace)
            .map(|(_, s)| s)
            .filter(move |s| s.selects(workload))
    }

    /// A workload by its key when known, else by its IP.
    pub fn workload_by_key_or_ip(
        &self,
        key: Option<&ObjectKey>,
        ip: &str,
    ) -> Option<&Arc<Workload>> {
        key.and_then(|k| self.workloads.get(k)).or_else(|| {
            let key = self.workloads_by_ip.get(ip)?;
            self.workloads.get(key)
        })
    }
}
