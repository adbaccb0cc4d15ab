//! Sidecar ingress through the Translator: the ingress ports replace the service ports;
//! clusters sent to the proxy's own IP are built per proxy, the others shared.

use super::*;
use crate::mesh::build::yaml_fixture::build_clean;

fn model(endpoint: &str) -> Arc<MeshModel> {
    let yaml = format!(
        "apiVersion: v1
kind: Service
metadata: {{name: web, namespace: shop}}
spec:
  clusterIP: 10.96.0.5
  selector: {{app: web}}
  ports: [{{name: http, port: 80, targetPort: 8080}}]
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {{name: web, namespace: shop}}
spec:
  workloadSelector: {{labels: {{app: web}}}}
  ingress:
  - port: {{number: 9000, protocol: TCP, name: tcp}}
    defaultEndpoint: {endpoint}
"
    );
    let built = build_clean(&yaml);
    Arc::new(built.model)
}

/// A proxy of the `web` workload known by its metadata labels only.
fn web_proxy(ip: &str) -> ProxyId {
    let mut p = proxy(&format!("sidecar~{ip}~web-x.shop~shop.svc.cluster.local"));
    p.metadata.insert("LABELS.app".into(), "web".into());
    p
}

fn inbound_hosts(r: &ProxyResources) -> Vec<String> {
    r.of_type(type_url::CLUSTER)
        .iter()
        .filter(|(name, _)| name.starts_with("inbound|"))
        .map(|(name, res)| {
            let c = Cluster::decode(&res.body.value[..]).unwrap();
            let host = c
                .load_assignment
                .map(|la| format!("{:?}", la.endpoints[0].lb_endpoints[0].host_identifier))
                .unwrap_or_default();
            let host = if host.contains("10.244.") {
                "own-ip"
            } else {
                &host
            };
            format!("{name} {host}")
        })
        .collect()
}

#[test]
fn ingress_ports_replace_service_ports() {
    let t = Translator::new(model("127.0.0.1:9001"));
    let a = t.proxy_resources(&web_proxy("10.244.0.7"));
    let b = t.proxy_resources(&web_proxy("10.244.0.8"));
    let names: Vec<String> = a
        .of_type(type_url::CLUSTER)
        .keys()
        .filter(|n| n.starts_with("inbound|"))
        .cloned()
        .collect();
    assert_eq!(names, ["inbound|9000||"], "8080 of the service is replaced");
    for url in [type_url::CLUSTER, type_url::LISTENER] {
        assert!(Arc::ptr_eq(&a.of_type(url), &b.of_type(url)), "{url}");
    }
}

#[test]
fn own_ip_endpoints_are_built_per_proxy() {
    let t = Translator::new(model("0.0.0.0:9001"));
    let a = t.proxy_resources(&web_proxy("10.244.0.7"));
    let b = t.proxy_resources(&web_proxy("10.244.0.8"));
    assert_eq!(inbound_hosts(&a), ["inbound|9000|| own-ip"]);
    assert_ne!(
        a.of_type(type_url::CLUSTER)["inbound|9000||"],
        b.of_type(type_url::CLUSTER)["inbound|9000||"]
    );
    // The outbound side is still shared.
    let name = "outbound|80||web.shop.svc.cluster.local";
    assert!(Arc::ptr_eq(
        &a.of_type(type_url::CLUSTER)[name],
        &b.of_type(type_url::CLUSTER)[name]
    ));
}
