//! A Sidecar's egress hosts: which services and VirtualService hosts a proxy keeps.
//! `ns/host` where ns is `*` (any), a namespace, `.` (the proxy's namespace: for the root
//! namespace's default Sidecar that is each proxy's own) or `~` (none), and host is `*`,
//! `*.suffix` or an exact name. A Sidecar without
//! egress listeners keeps everything, as istiod's default egress `*/*`.

use crate::mesh::traffic::select::host_matches;
use crate::mesh::traffic::{NamespaceScope, ScopedHost, Sidecar};

/// Whether `pattern` lets a proxy in `proxy_namespace` see `host` of an object in
/// `namespace`.
pub fn host_allowed(
    pattern: &ScopedHost,
    proxy_namespace: &str,
    namespace: &str,
    host: &str,
) -> bool {
    let namespace_ok = match &pattern.namespace {
        NamespaceScope::Any => true,
        NamespaceScope::Named(ns) => ns == namespace,
        NamespaceScope::ProxyNamespace => proxy_namespace == namespace,
        NamespaceScope::None => false,
    };
    namespace_ok && host_matches(&pattern.host, host)
}

/// Whether any egress listener of `sidecar` lets a proxy in `proxy_namespace` see `host`
/// in `namespace`.
pub fn allows(sidecar: &Sidecar, proxy_namespace: &str, namespace: &str, host: &str) -> bool {
    sidecar.egress.is_empty()
        || sidecar
            .egress
            .iter()
            .flat_map(|e| &e.hosts)
            .any(|p| host_allowed(p, proxy_namespace, namespace, host))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(ns: NamespaceScope, host: &str) -> ScopedHost {
        ScopedHost {
            namespace: ns,
            host: host.to_string(),
        }
    }

    #[test]
    fn namespace_and_host_must_both_match() {
        let own = pattern(NamespaceScope::Named("shop".into()), "*");
        assert!(host_allowed(&own, "x", "shop", "db.shop.svc.cluster.local"));
        assert!(!host_allowed(
            &own,
            "x",
            "other",
            "db.other.svc.cluster.local"
        ));
        let dot = pattern(NamespaceScope::ProxyNamespace, "*");
        assert!(host_allowed(&dot, "a", "a", "s.a.svc.cluster.local"));
        assert!(!host_allowed(&dot, "b", "a", "s.a.svc.cluster.local"));
        let any_api = pattern(NamespaceScope::Any, "*.example.com");
        assert!(host_allowed(&any_api, "p", "x", "api.example.com"));
        assert!(!host_allowed(&any_api, "p", "x", "example.com"));
        let exact = pattern(NamespaceScope::Named("a".into()), "s.a.svc.cluster.local");
        assert!(host_allowed(&exact, "p", "a", "s.a.svc.cluster.local"));
        assert!(!host_allowed(&exact, "p", "a", "t.a.svc.cluster.local"));
        assert!(!host_allowed(
            &pattern(NamespaceScope::None, "*"),
            "a",
            "a",
            "s.a.svc.cluster.local"
        ));
    }
}
