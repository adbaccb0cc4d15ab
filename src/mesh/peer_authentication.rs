//! PeerAuthentication as the model holds it, and which one applies to a workload, as istiod
//! composes them: the mesh-wide policy (no selector, root namespace), then the namespace's
//! (no selector), then the workload's (selector, not in the root namespace), each mode that
//! is not UNSET overriding the one before; the workload policy's `portLevelMtls` then sets
//! target ports, UNSET there meaning the mode above. With nothing set the mode is
//! PERMISSIVE. When several policies compete for one level the oldest wins (by
//! `creationTimestamp`, then by name when the source has no timestamps).

use std::collections::BTreeMap;

use super::model::{MeshModel, ObjectKey};

/// Istio's mutual TLS modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MtlsMode {
    /// Inherit from the level above.
    Unset,
    /// Plaintext only.
    Disable,
    /// mTLS and plaintext on the same port.
    Permissive,
    /// mTLS only.
    Strict,
}

impl MtlsMode {
    pub fn as_str(self) -> &'static str {
        match self {
            MtlsMode::Unset => "UNSET",
            MtlsMode::Disable => "DISABLE",
            MtlsMode::Permissive => "PERMISSIVE",
            MtlsMode::Strict => "STRICT",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerAuthentication {
    pub key: ObjectKey,
    /// `selector.matchLabels`; `None` when absent or empty (namespace- or mesh-wide).
    pub selector: Option<BTreeMap<String, String>>,
    pub mode: MtlsMode,
    /// Target port -> mode (`portLevelMtls`; only with a selector, as Istio validates).
    pub port_level: BTreeMap<u16, MtlsMode>,
    pub created: Option<String>,
}

/// The modes a workload's inbound side enforces: a default and target-port overrides.
/// Neither is ever `Unset`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InboundMtls {
    pub default: MtlsMode,
    pub ports: BTreeMap<u16, MtlsMode>,
}

impl Default for InboundMtls {
    fn default() -> Self {
        InboundMtls {
            default: MtlsMode::Permissive,
            ports: BTreeMap::new(),
        }
    }
}

impl InboundMtls {
    /// The mode of a target port.
    pub fn mode(&self, port: u16) -> MtlsMode {
        self.ports.get(&port).copied().unwrap_or(self.default)
    }

    /// The same for every port.
    pub fn uniform(mode: MtlsMode) -> Self {
        InboundMtls {
            default: mode,
            ports: BTreeMap::new(),
        }
    }
}

/// The oldest of `candidates` (istiod's choice among competing policies).
fn oldest<'a>(
    candidates: impl Iterator<Item = &'a PeerAuthentication>,
) -> Option<&'a PeerAuthentication> {
    candidates.min_by(|a, b| (&a.created, &a.key).cmp(&(&b.created, &b.key)))
}

fn in_namespace<'a>(
    model: &'a MeshModel,
    namespace: &'a str,
) -> impl Iterator<Item = &'a PeerAuthentication> + 'a {
    model
        .peer_authentications
        .values()
        .map(|p| p.as_ref())
        .filter(move |p| p.key.namespace == namespace)
}

/// The mesh-wide and the namespace-wide policy of `namespace`.
fn wide<'a>(
    model: &'a MeshModel,
    root_namespace: &'a str,
    namespace: &str,
) -> [Option<&'a PeerAuthentication>; 2] {
    let mesh = oldest(in_namespace(model, root_namespace).filter(|p| p.selector.is_none()));
    let ns = if namespace == root_namespace {
        None
    } else {
        oldest(
            model
                .peer_authentications
                .values()
                .map(|p| p.as_ref())
                .filter(|p| p.key.namespace == namespace && p.selector.is_none()),
        )
    };
    [mesh, ns]
}

/// The modes of a workload in `namespace` with `labels`.
pub fn inbound_mtls(
    model: &MeshModel,
    root_namespace: &str,
    namespace: &str,
    labels: &BTreeMap<String, String>,
) -> InboundMtls {
    if model.peer_authentications.is_empty() {
        return InboundMtls::default();
    }
    let workload = (namespace != root_namespace)
        .then(|| {
            oldest(in_namespace(model, namespace).filter(|p| {
                p.selector
                    .as_ref()
                    .is_some_and(|sel| sel.iter().all(|(k, v)| labels.get(k) == Some(v)))
            }))
        })
        .flatten();
    let mut out = InboundMtls::default();
    let [mesh, ns] = wide(model, root_namespace, namespace);
    for policy in [mesh, ns, workload].into_iter().flatten() {
        if policy.mode != MtlsMode::Unset {
            out.default = policy.mode;
        }
    }
    if let Some(policy) = workload {
        for (port, mode) in &policy.port_level {
            let mode = if *mode == MtlsMode::Unset {
                out.default
            } else {
                *mode
            };
            out.ports.insert(*port, mode);
        }
    }
    out
}

/// The mode a service's namespace declares (namespace-wide, else mesh-wide), for clients
/// deciding on automatic mTLS (istiod's best-effort guess of a service's mode); `None`
/// when neither sets one.
pub fn namespace_mode(
    model: &MeshModel,
    root_namespace: &str,
    namespace: &str,
) -> Option<MtlsMode> {
    let [mesh, ns] = wide(model, root_namespace, namespace);
    [ns, mesh]
        .into_iter()
        .flatten()
        .map(|p| p.mode)
        .find(|m| *m != MtlsMode::Unset)
}

#[cfg(test)]
#[path = "peer_authentication_tests.rs"]
mod tests;
