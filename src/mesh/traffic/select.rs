//! Which DestinationRule applies to traffic from a proxy to a host, as istiod picks it:
//! first a rule in the proxy's own namespace, then one the host's service namespace
//! exports to the proxy's namespace, then one the root namespace exports; within a
//! namespace, an exact host beats the most specific wildcard. Proxies in the root namespace
//! look at the root namespace's rules first, then as everyone else.
//!
//! Several rules for one host in one namespace are merged before this choice, as istiod
//! does (`merge`).

use std::sync::Arc;

use super::DestinationRule;

/// Whether `pattern` (a host, `*.suffix` or `*`) covers `host`.
pub fn host_matches(pattern: &str, host: &str) -> bool {
    match pattern.strip_prefix('*') {
        Some("") => true,
        Some(suffix) => host.ends_with(suffix) && host.len() > suffix.len(),
        None => pattern == host,
    }
}

/// The most specific of `candidates` for `host`: an exact host, else the longest wildcard
/// that covers it; ties go to the first (the caller passes them sorted by name).
fn most_specific<'a>(
    host: &str,
    candidates: impl Iterator<Item = &'a Arc<DestinationRule>>,
) -> Option<&'a Arc<DestinationRule>> {
    let mut best: Option<&'a Arc<DestinationRule>> = None;
    for rule in candidates.filter(|r| host_matches(&r.host, host)) {
        let better = match best {
            None => true,
            Some(b) if b.host == host => false,
            Some(_) if rule.host == host => true,
            Some(b) => rule.host.len() > b.host.len(),
        };
        if better {
            best = Some(rule);
        }
    }
    best
}

/// The DestinationRule for traffic from a proxy in `proxy_namespace` to `host`, whose
/// service lives in `service_namespace` (when the host is a service of the registry).
/// `rules` are all rules, sorted by namespace and name.
pub fn destination_rule_for<'a>(
    rules: &'a [Arc<DestinationRule>],
    host: &str,
    service_namespace: Option<&str>,
    proxy_namespace: &str,
    root_namespace: &str,
) -> Option<&'a Arc<DestinationRule>> {
    // Rules without a workload selector only; selected ones are a per-workload refinement.
    let visible_in = |ns: &str| -> Vec<&'a Arc<DestinationRule>> {
        rules
            .iter()
            .filter(|r| {
                r.key.namespace == ns
                    && r.workload_selector.is_none()
                    && r.export_to.visible_to(proxy_namespace)
            })
            .collect()
    };
    if let Some(rule) = most_specific(host, visible_in(proxy_namespace).into_iter()) {
        return Some(rule);
    }
    if let Some(ns) = service_namespace.filter(|ns| *ns != proxy_namespace) {
        if let Some(rule) = most_specific(host, visible_in(ns).into_iter()) {
            return Some(rule);
        }
    }
    if root_namespace != proxy_namespace {
        return most_specific(host, visible_in(root_namespace).into_iter());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::model::ObjectKey;
    use crate::mesh::traffic::ExportTo;

    fn rule(ns: &str, name: &str, host: &str, export_to: ExportTo) -> Arc<DestinationRule> {
        Arc::new(DestinationRule {
            key: ObjectKey {
                namespace: ns.into(),
                name: name.into(),
            },
            host: host.into(),
            traffic_policy: None,
            subsets: vec![],
            export_to,
            workload_selector: None,
        })
    }

    const REVIEWS: &str = "reviews.bookinfo.svc.cluster.local";

    fn pick(rules: &[Arc<DestinationRule>], proxy_ns: &str) -> Option<String> {
        destination_rule_for(rules, REVIEWS, Some("bookinfo"), proxy_ns, "istio-system")
            .map(|r| r.key.to_string())
    }

    #[test]
    fn proxy_namespace_then_service_namespace_then_root() {
        let all = ExportTo::All;
        let mut rules = vec![
            rule("istio-system", "mesh-wide", "*.cluster.local", all.clone()),
            rule("bookinfo", "reviews", REVIEWS, all.clone()),
            rule("frontend", "client-side", REVIEWS, all.clone()),
        ];
        rules.sort_by(|a, b| a.key.cmp(&b.key));
        assert_eq!(
            pick(&rules, "frontend").as_deref(),
            Some("frontend/client-side")
        );
        assert_eq!(pick(&rules, "other").as_deref(), Some("bookinfo/reviews"));
        let root_only: Vec<_> = rules
            .iter()
            .filter(|r| r.key.namespace == "istio-system")
            .cloned()
            .collect();
        assert_eq!(
            pick(&root_only, "other").as_deref(),
            Some("istio-system/mesh-wide")
        );
    }

    #[test]
    fn exact_host_beats_wildcards_and_export_to_hides() {
        let mut rules = vec![
            rule("bookinfo", "a-wide", "*.svc.cluster.local", ExportTo::All),
            rule(
                "bookinfo",
                "b-narrow",
                "*.bookinfo.svc.cluster.local",
                ExportTo::All,
            ),
            rule(
                "bookinfo",
                "c-exact-private",
                REVIEWS,
                ExportTo::Namespaces(vec!["bookinfo".into()]),
            ),
        ];
        rules.sort_by(|a, b| a.key.cmp(&b.key));
        assert_eq!(
            pick(&rules, "bookinfo").as_deref(),
            Some("bookinfo/c-exact-private")
        );
        // Elsewhere the private exact rule is hidden; the most specific wildcard wins.
        assert_eq!(pick(&rules, "other").as_deref(), Some("bookinfo/b-narrow"));
    }

    #[test]
    fn wildcards_cover_subdomains_only() {
        assert!(host_matches("*", "a.b"));
        assert!(host_matches("*.example.com", "api.example.com"));
        assert!(!host_matches("*.example.com", "example.com"));
        assert!(!host_matches("api.example.com", "www.example.com"));
    }
}
