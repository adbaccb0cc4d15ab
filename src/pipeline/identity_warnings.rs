//! The warning a proxy without workload certificate gets, once, when mTLS policy applies to
//! it that it cannot honour (STRICT ports that refuse it, ISTIO_MUTUAL clusters that fail
//! closed; see `translate::mtls::no_identity`). Translation stays pure: the generator asks
//! the translator what the problems are and logs them here.

use std::collections::HashSet;
use std::sync::Mutex;

use tracing::warn;

use crate::mesh::ProxyId;
use crate::translate::Translator;

/// Proxies remembered as warned; past this the memory is cleared (and some proxies may be
/// warned again), so that node ids chosen by clients cannot grow it without bound.
const MAX_WARNED: usize = 100_000;

/// The node ids already warned.
#[derive(Default)]
pub struct IdentityWarnings {
    warned: Mutex<HashSet<String>>,
}

impl IdentityWarnings {
    /// Warns about `proxy` unless it holds a certificate or was warned already; returns
    /// whether it warned.
    pub fn check(&self, translator: &Translator, proxy: &ProxyId) -> bool {
        if proxy.identity.is_some() {
            return false;
        }
        let id = format!(
            "{:?}~{}~{}.{}",
            proxy.proxy_type, proxy.ip, proxy.pod_name, proxy.namespace
        );
        if self.warned.lock().expect("warned lock").contains(&id) {
            return false;
        }
        let problems = translator.identity_problems(proxy);
        // Made of stand-ins when a look-up-only translation missed: the real one warns.
        if problems.is_empty() || crate::translate::probe::missed_so_far() {
            return false;
        }
        let mut warned = self.warned.lock().expect("warned lock");
        if warned.len() >= MAX_WARNED {
            warned.clear();
        }
        if !warned.insert(id) {
            return false;
        }
        for problem in problems {
            warn!(proxy = %proxy.pod_name, namespace = %proxy.namespace, ip = %proxy.ip, "{problem}");
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::peer_authentication::{MtlsMode, PeerAuthentication};
    use crate::mesh::{MeshModel, ObjectKey};
    use std::sync::Arc;

    #[test]
    fn a_proxy_without_certificate_under_strict_is_warned_once() {
        let mut model = MeshModel::default();
        let key = ObjectKey {
            namespace: "istio-system".into(),
            name: "default".into(),
        };
        model.peer_authentications.insert(
            key.clone(),
            Arc::new(PeerAuthentication {
                key,
                selector: None,
                mode: MtlsMode::Strict,
                port_level: Default::default(),
                created: None,
            }),
        );
        let translator = Translator::new(Arc::new(model));
        let mut proxy = ProxyId::parse("sidecar~10.0.0.1~a-0.shop~shop.svc.cluster.local").unwrap();
        let warnings = IdentityWarnings::default();
        assert!(warnings.check(&translator, &proxy));
        assert!(!warnings.check(&translator, &proxy), "once");
        proxy.ip = "10.0.0.2".into();
        proxy.identity = Some("spiffe://cluster.local/ns/shop/sa/a".into());
        assert!(!warnings.check(&translator, &proxy), "it has a certificate");
        assert!(translator.identity_problems(&proxy).is_empty());
    }
}
