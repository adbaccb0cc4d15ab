//! AuthorizationPolicy and RequestAuthentication on ingress gateways, as istiod applies
//! them: the policies that select the gateway's workload (its namespace's, narrowed by
//! `selector` on the gateway pod's labels, and the root namespace's) go into every chain of
//! every gateway listener: `jwt_authn` and HTTP RBAC at the head of each connection manager
//! (HTTP and TLS-terminating HTTPS servers), network RBAC before `tcp_proxy` on TCP, TLS and
//! PASSTHROUGH chains. The filters are the sidecar's, so DENY before ALLOW, an ALLOW policy
//! without rules denying all and HTTP-only fields on TCP chains behave the same.

use envoy_types::pb::envoy::config::listener::v3::Listener;

use super::{http_filters, network_filters, secure_chain};
use crate::mesh::security::WorkloadSecurity;
use crate::mesh::MeshModel;

/// Adds the gateway workload's security filters to every chain of `listeners`.
pub fn secure_gateway(listeners: &mut [Listener], model: &MeshModel, security: &WorkloadSecurity) {
    if security.is_empty() {
        return;
    }
    let http = http_filters(model, security);
    let tcp = network_filters(security);
    for listener in listeners {
        for chain in listener
            .filter_chains
            .iter_mut()
            .chain(listener.default_filter_chain.as_mut())
        {
            secure_chain(chain, &http, &tcp);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use serde_json::Value;

    use crate::envoy::json::resource_to_json;
    use crate::envoy::type_url;
    use crate::mesh::build::build_model;
    use crate::mesh::ProxyId;
    use crate::source::file::load_dir;
    use crate::translate::Translator;

    /// testdata/traffic/gateway with testdata/security/gateway-authz (the golden inputs).
    fn translator() -> Translator {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
        let mut input = load_dir(&root.join("traffic/gateway")).unwrap();
        input.objects.extend(
            load_dir(&root.join("security/gateway-authz"))
                .unwrap()
                .objects,
        );
        let built = build_model(&input);
        assert!(built.problems.is_empty(), "{:?}", built.problems);
        Translator::new(Arc::new(built.model))
    }

    /// Every filter chain of the router's listeners, as JSON text.
    fn chains(translator: &Translator, node_id: &str, labels: &[(&str, &str)]) -> Vec<String> {
        let mut proxy = ProxyId::parse(node_id).unwrap();
        for (k, v) in labels {
            proxy.metadata.insert(format!("LABELS.{k}"), v.to_string());
        }
        let listeners = translator
            .proxy_resources(&proxy)
            .of_type(type_url::LISTENER);
        assert!(!listeners.is_empty(), "{node_id} has listeners");
        listeners
            .values()
            .flat_map(|l| {
                let json = resource_to_json(l).unwrap();
                json["filterChains"].as_array().cloned().unwrap_or_default()
            })
            .map(|c: Value| c.to_string())
            .collect()
    }

    fn rule(policy: &str, i: usize) -> String {
        format!("ns[istio-system]-policy[{policy}]-rule[{i}]")
    }

    #[test]
    fn the_gateways_policies_go_into_every_chain() {
        let t = translator();
        let router = "router~10.244.0.50~istio-ingressgateway-7d4f.istio-system~istio-system.svc.cluster.local";
        let chains = chains(&t, router, &[]);
        let (http, tcp): (Vec<_>, Vec<_>) = chains
            .iter()
            .partition(|c| c.contains("envoy.filters.network.http_connection_manager"));
        assert!(http.len() >= 2 && !tcp.is_empty(), "{chains:?}");
        for c in &http {
            // jwt_authn, then AUDIT, DENY, ALLOW, all before the router.
            let at = |s: &str| c.find(s).unwrap_or_else(|| panic!("{s} in {c}"));
            assert!(at("envoy.filters.http.jwt_authn") < at(&rule("mesh-audit", 0)));
            assert!(at(&rule("mesh-audit", 0)) < at(&rule("ingress-deny-header", 0)));
            assert!(at(&rule("ingress-deny-header", 0)) < at(&rule("ingress-allow", 0)));
            assert!(at(&rule("ingress-allow", 0)) < at("envoy.filters.http.router"));
            assert!(c.contains("\"pathTemplate\":\"/api/*/items\""), "{c}");
        }
        for c in &tcp {
            assert!(c.contains("envoy.filters.network.rbac"), "{c}");
            // The ALLOW rule with HTTP fields is dropped, the port rule kept.
            assert!(!c.contains(&rule("ingress-allow", 0)), "{c}");
            assert!(c.contains(&rule("ingress-allow", 2)), "{c}");
        }
        for c in &chains {
            assert!(
                !c.contains("egress-only") && !c.contains("shop-deny-all"),
                "{c}"
            );
        }
    }

    #[test]
    fn selection_follows_the_gateway_pods_labels_and_namespace() {
        let t = translator();
        // Another router, in another namespace, labelled as the egress gateway: the root
        // namespace's policies for its labels and the mesh-wide one only.
        let egress = "router~10.244.9.9~egress-0.edge~edge.svc.cluster.local";
        let chains = chains(&t, egress, &[("istio", "egressgateway")]);
        for c in &chains {
            assert!(c.contains(&rule("egress-only", 0)), "{c}");
            assert!(c.contains(&rule("mesh-audit", 0)), "{c}");
            assert!(
                !c.contains("ingress-") && !c.contains("shop-deny-all"),
                "{c}"
            );
            assert!(!c.contains("jwt_authn"), "{c}");
        }
    }
}
