//! Who a connecting proxy is, from Istio's node id shape
//! `TYPE~IP~POD.NAMESPACE~NAMESPACE.svc.cluster.local` and its node metadata.
//! This only selects configuration; it is never proof of identity (`ProxyId::identity`
//! comes from the stream, not from the node).

use std::collections::BTreeMap;

use super::model::{MeshModel, ObjectKey, Workload};
use super::MeshError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ProxyType {
    /// `sidecar`
    Sidecar,
    /// `router` (a gateway)
    Router,
}

/// A proxy as described by its node id and metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyId {
    pub proxy_type: ProxyType,
    pub ip: String,
    /// Pod name (the third field up to its last `.`: pod names may contain dots, namespaces
    /// cannot).
    pub pod_name: String,
    pub namespace: String,
    /// Node metadata as strings (`LABELS` flattened as `LABELS.key`), as far as meshd uses it.
    pub metadata: BTreeMap<String, String>,
    /// The identity its xDS stream proved (secure port), set by whoever serves the stream;
    /// `None` when it proved none. Parsing never sets it: node metadata grants nothing.
    /// Decides whether the proxy can hold a workload certificate, hence mesh mTLS.
    pub identity: Option<String>,
}

impl ProxyId {
    /// Parses `TYPE~IP~POD.NAMESPACE~NAMESPACE.svc.cluster.local`.
    pub fn parse(node_id: &str) -> Result<ProxyId, MeshError> {
        let bad = |reason: &str| MeshError::NodeId {
            node_id: node_id.to_string(),
            reason: reason.to_string(),
        };
        let parts: Vec<&str> = node_id.split('~').collect();
        if parts.len() != 4 {
            return Err(bad(
                "expected 4 fields separated by '~': TYPE~IP~POD.NAMESPACE~NAMESPACE.svc.cluster.local",
            ));
        }
        let proxy_type = match parts[0] {
            "sidecar" => ProxyType::Sidecar,
            "router" => ProxyType::Router,
            other => {
                return Err(bad(&format!(
                    "type {other:?} is neither \"sidecar\" nor \"router\""
                )))
            }
        };
        let ip = parts[1];
        if ip.parse::<std::net::IpAddr>().is_err() {
            return Err(bad(&format!("{ip:?} is not an IP address")));
        }
        // Pod names may contain dots; namespaces are DNS labels and cannot.
        let (pod_name, pod_namespace) = parts[2]
            .rsplit_once('.')
            .ok_or_else(|| bad("third field must be POD.NAMESPACE"))?;
        let namespace = parts[3]
            .split_once('.')
            .map(|(ns, _)| ns)
            .unwrap_or(parts[3]);
        if pod_name.is_empty() || pod_namespace.is_empty() {
            return Err(bad("pod name and namespace must not be empty"));
        }
        if namespace != pod_namespace {
            return Err(bad(&format!(
                "namespace {pod_namespace:?} in the third field differs from {namespace:?} in the fourth"
            )));
        }
        Ok(ProxyId {
            proxy_type,
            ip: ip.to_string(),
            pod_name: pod_name.to_string(),
            namespace: namespace.to_string(),
            metadata: BTreeMap::new(),
            identity: None,
        })
    }

    /// The workload this proxy runs beside: by pod name and namespace, else by IP.
    pub fn workload<'m>(&self, model: &'m MeshModel) -> Option<&'m std::sync::Arc<Workload>> {
        let by_name = ObjectKey {
            namespace: self.namespace.clone(),
            name: self.pod_name.clone(),
        };
        model.workload_by_key_or_ip(Some(&by_name), &self.ip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_istio_node_id() {
        let p = ProxyId::parse("sidecar~10.1.0.5~reviews-v1-abc.default~default.svc.cluster.local")
            .unwrap();
        assert_eq!(p.proxy_type, ProxyType::Sidecar);
        assert_eq!(p.ip, "10.1.0.5");
        assert_eq!(p.pod_name, "reviews-v1-abc");
        assert_eq!(p.namespace, "default");
    }

    #[test]
    fn pod_name_may_contain_dots() {
        let p = ProxyId::parse("sidecar~10.1.0.5~a.b.ns~ns.svc.cluster.local").unwrap();
        assert_eq!(p.pod_name, "a.b");
        assert_eq!(p.namespace, "ns");
    }

    #[test]
    fn rejects_other_shapes() {
        for id in [
            "",
            "sidecar~10.0.0.1~pod.ns",
            "gateway~10.0.0.1~pod.ns~ns.svc.cluster.local",
            "sidecar~not-ip~pod.ns~ns.svc.cluster.local",
            "sidecar~10.0.0.1~pod~ns.svc.cluster.local",
            "sidecar~10.0.0.1~pod.a~b.svc.cluster.local",
        ] {
            let err = ProxyId::parse(id).unwrap_err().to_string();
            assert!(err.contains("node id"), "{id}: {err}");
        }
    }
}
