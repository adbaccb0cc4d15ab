//! Where a service of the registry comes from, and what follows from that for translation:
//! how its endpoints are found (istiod's "resolution"), which addresses it answers on, whether
//! it is outside the mesh, and who may see it.
//!
//! Kubernetes Services and the hosts of ServiceEntries share one registry
//! (`MeshModel.services`), as in istiod, so that every translation path (clusters, endpoints,
//! listeners, routes) walks one list; the few places where the kinds differ ask these methods
//! rather than looking at `cluster_ip`.

use std::net::IpAddr;
use std::sync::Arc;

use super::model::{ObjectKey, Service};
use super::traffic::{ExportTo, Location, Resolution};

#[derive(Debug, Clone, PartialEq)]
pub enum ServiceOrigin {
    /// A Kubernetes Service with a ClusterIP (EDS) or headless (original destination).
    Kubernetes,
    /// A Kubernetes Service of type ExternalName: resolved by DNS to `spec.externalName`.
    ExternalName(String),
    /// One host of a ServiceEntry.
    ServiceEntry(Arc<EntryService>),
}

/// What a ServiceEntry gives each of its hosts.
#[derive(Debug, Clone, PartialEq)]
pub struct EntryService {
    /// The ServiceEntry (namespace/name) the host comes from.
    pub entry: ObjectKey,
    /// `spec.addresses`: IPs, and CIDRs (a CIDR with all bits set is its IP).
    pub addresses: Vec<String>,
    pub location: Location,
    pub resolution: Resolution,
    pub export_to: ExportTo,
}

impl Service {
    /// How the service's endpoints are found: Kubernetes ClusterIP services by EDS, headless
    /// ones by the address the client dialled, ExternalName services by DNS.
    pub fn resolution(&self) -> Resolution {
        match &self.origin {
            ServiceOrigin::Kubernetes if self.cluster_ip.is_some() => Resolution::Static,
            ServiceOrigin::Kubernetes => Resolution::None,
            ServiceOrigin::ExternalName(_) => Resolution::Dns,
            ServiceOrigin::ServiceEntry(e) => e.resolution.clone(),
        }
    }

    /// Whether the service is outside the mesh (ServiceEntry `MESH_EXTERNAL`, ExternalName).
    pub fn mesh_external(&self) -> bool {
        match &self.origin {
            ServiceOrigin::Kubernetes => false,
            ServiceOrigin::ExternalName(_) => true,
            ServiceOrigin::ServiceEntry(e) => e.location == Location::MeshExternal,
        }
    }

    /// The addresses clients dial for the service (its ClusterIP, a ServiceEntry's IP
    /// addresses), the ones outbound TCP listeners and route domains are made of. A CIDR
    /// that is not a single host is left out.
    pub fn vips(&self) -> Vec<&str> {
        match &self.origin {
            ServiceOrigin::ServiceEntry(e) => {
                e.addresses.iter().filter_map(|a| single_host(a)).collect()
            }
            _ => self.cluster_ip.as_deref().into_iter().collect(),
        }
    }

    /// Namespaces that may see the service (a ServiceEntry's `exportTo`).
    pub fn export_to(&self) -> ExportTo {
        match &self.origin {
            ServiceOrigin::ServiceEntry(e) => e.export_to.clone(),
            _ => ExportTo::All,
        }
    }

    /// A Kubernetes Service without a ClusterIP: clients dial its pods directly.
    pub fn is_headless(&self) -> bool {
        self.origin == ServiceOrigin::Kubernetes && self.cluster_ip.is_none()
    }
}

/// The IP of an address or of a CIDR with all bits set (`10.0.0.1/32`), else `None`.
fn single_host(address: &str) -> Option<&str> {
    match address.split_once('/') {
        None => address.parse::<IpAddr>().ok().map(|_| address),
        Some((ip, bits)) => {
            let full = match ip.parse::<IpAddr>().ok()? {
                IpAddr::V4(_) => "32",
                IpAddr::V6(_) => "128",
            };
            (bits == full).then_some(ip)
        }
    }
}

/// Test fixture: the MESH_EXTERNAL host `host` of a ServiceEntry in `namespace`.
#[cfg(test)]
pub(crate) fn entry_service(
    namespace: &str,
    host: &str,
    addresses: &[&str],
    resolution: Resolution,
    export_to: ExportTo,
) -> Service {
    Service {
        key: ObjectKey {
            namespace: namespace.into(),
            name: host.into(),
        },
        hostname: host.into(),
        cluster_ip: None,
        ports: vec![],
        selector: None,
        labels: Default::default(),
        origin: ServiceOrigin::ServiceEntry(Arc::new(EntryService {
            entry: ObjectKey {
                namespace: namespace.into(),
                name: "entry".into(),
            },
            addresses: addresses.iter().map(|a| a.to_string()).collect(),
            location: Location::MeshExternal,
            resolution,
            export_to,
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(addresses: &[&str], resolution: Resolution) -> Service {
        let export_to = ExportTo::Namespaces(vec!["shop".into()]);
        entry_service("shop", "api.example.com", addresses, resolution, export_to)
    }

    #[test]
    fn kubernetes_services_resolve_by_their_cluster_ip() {
        let mut svc = entry(&[], Resolution::Dns);
        svc.origin = ServiceOrigin::Kubernetes;
        assert_eq!(svc.resolution(), Resolution::None);
        assert!(svc.is_headless());
        svc.cluster_ip = Some("10.96.0.1".into());
        assert_eq!(svc.resolution(), Resolution::Static);
        assert_eq!(svc.vips(), ["10.96.0.1"]);
        assert!(!svc.mesh_external());
        assert_eq!(svc.export_to(), ExportTo::All);
        svc.origin = ServiceOrigin::ExternalName("db.example.com".into());
        assert_eq!(svc.resolution(), Resolution::Dns);
        assert!(svc.mesh_external());
        assert!(!svc.is_headless());
    }

    #[test]
    fn entry_hosts_answer_on_their_single_host_addresses() {
        let svc = entry(
            &["240.0.0.1", "10.1.0.0/16", "10.2.0.7/32", "2001:db8::1/128"],
            Resolution::Static,
        );
        assert_eq!(svc.vips(), ["240.0.0.1", "10.2.0.7", "2001:db8::1"]);
        assert_eq!(svc.resolution(), Resolution::Static);
        assert!(svc.mesh_external());
        assert!(!svc.export_to().visible_to("other"));
        assert!(!svc.is_headless());
    }
}
