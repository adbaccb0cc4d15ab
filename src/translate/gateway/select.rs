//! Where a router proxy's servers listen and which hosts meet, as istiod decides it (the
//! Gateways a router serves are `Scope::gateways`): a server's port that a Service of the
//! gateway workload exposes listens on that Service port's target port, any other on the
//! port as written.

use crate::mesh::{MeshModel, TargetPort, Workload};

/// The port a gateway server listens on: the target port of the first Service port (by
/// Service key) numbered `port` among the Services selecting the workload, else `port`.
pub fn listen_port(model: &MeshModel, workload: Option<&Workload>, port: u16) -> u16 {
    let Some(workload) = workload else {
        return port;
    };
    for service in model.services_selecting(workload) {
        let Some(p) = service.ports.iter().find(|p| p.port == port) else {
            continue;
        };
        return match &p.target_port {
            TargetPort::Number(n) => *n,
            TargetPort::Name(name) => workload.named_ports.get(name).copied().unwrap_or(port),
        };
    }
    port
}

/// Whether host `a` lies within host `b` (`*`, `*.suffix` or exact), as Istio's
/// `host.Name.SubsetOf`.
pub fn host_subset_of(a: &str, b: &str) -> bool {
    if b == "*" {
        return true;
    }
    if a == "*" {
        return false;
    }
    match (a.strip_prefix('*'), b.strip_prefix('*')) {
        // `*.a.b` within `*.b`
        (Some(a_suffix), Some(b_suffix)) => a_suffix.ends_with(b_suffix),
        (Some(_), None) => false,
        (None, Some(b_suffix)) => a.ends_with(b_suffix),
        (None, None) => a == b,
    }
}

/// The hosts both lists cover: for each pair where one lies within the other, the more
/// specific one (Istio's `host.Names.Intersection`), sorted and without duplicates.
pub fn intersect_hosts(server_hosts: &[&str], vs_hosts: &[String]) -> Vec<String> {
    let mut out = std::collections::BTreeSet::new();
    for s in server_hosts {
        for v in vs_hosts {
            if host_subset_of(v, s) {
                out.insert(v.to_ascii_lowercase());
            } else if host_subset_of(s, v) {
                out.insert(s.to_ascii_lowercase());
            }
        }
    }
    out.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_subsets_follow_istio() {
        assert!(host_subset_of("a.example.com", "*.example.com"));
        assert!(host_subset_of("*.a.example.com", "*.example.com"));
        assert!(host_subset_of("anything", "*"));
        assert!(!host_subset_of("*.example.com", "a.example.com"));
        assert!(!host_subset_of("example.com", "*.example.com"));
        assert!(!host_subset_of("*", "a.com"));
    }

    #[test]
    fn intersection_keeps_the_more_specific_host() {
        let vs = vec!["a.example.com".to_string(), "*.shop.io".to_string()];
        assert_eq!(
            intersect_hosts(&["*.example.com", "www.shop.io"], &vs),
            ["a.example.com", "www.shop.io"]
        );
        assert_eq!(intersect_hosts(&["*"], &vs), ["*.shop.io", "a.example.com"]);
        assert!(intersect_hosts(&["other.com"], &vs).is_empty());
    }
}
