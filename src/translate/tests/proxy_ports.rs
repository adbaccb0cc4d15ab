//! The sidecar's own ports (15000, 15001, 15006, 15020, 15021, 15090) never get a
//! per-port outbound HTTP listener, a route config, an inbound chain or an inbound cluster.

use super::*;

/// The base model plus an ingress gateway whose Service has Istio's HTTP status port 15021
/// next to port 80, a TCP service on 15021, and the gateway pod.
fn model_with_gateway() -> MeshModel {
    let mut m = model();
    for s in [
        service(
            "istio-system",
            "istio-ingressgateway",
            Some("10.96.9.1"),
            vec![
                port(
                    "status-port",
                    15021,
                    TargetPort::Number(15021),
                    Protocol::Http,
                ),
                port("http2", 80, TargetPort::Number(8080), Protocol::Http),
                port("metrics", 15090, TargetPort::Number(15090), Protocol::Http),
            ],
        ),
        service(
            "shop",
            "health",
            Some("10.96.9.2"),
            vec![port("tcp", 15021, TargetPort::Number(15021), Protocol::Tcp)],
        ),
    ] {
        m.namespaces.insert(s.key.namespace.clone());
        m.services.insert(s.key.clone(), Arc::new(s));
    }
    let gw = workload(
        "istio-system",
        "istio-ingressgateway-0",
        "istio-ingressgateway",
        "10.244.9.10",
    );
    m.workloads_by_ip
        .insert(gw.ip.clone().unwrap(), gw.key.clone());
    m.workloads.insert(gw.key.clone(), Arc::new(gw));
    m
}

#[test]
fn proxy_ports_are_known() {
    for p in [15000, 15001, 15006, 15020, 15021, 15090] {
        assert!(naming::is_proxy_port(p), "{p}");
    }
    for p in [80, 8080, 9080, 15010, 15443] {
        assert!(!naming::is_proxy_port(p), "{p}");
    }
}

#[test]
fn no_outbound_http_listener_or_route_on_proxy_ports() {
    let t = Translator::new(Arc::new(model_with_gateway()));
    let r = t.proxy_resources(&reviews_proxy());
    let listeners = names(&r, type_url::LISTENER);
    assert!(listeners.contains(&"0.0.0.0_80".to_string()));
    for p in [15021, 15090] {
        assert!(
            !listeners.contains(&naming::wildcard_listener(p)),
            "{listeners:?}"
        );
        assert!(!names(&r, type_url::ROUTE).contains(&naming::route_config(p)));
    }
    assert_eq!(names(&r, type_url::ROUTE), vec!["7070", "80", "9080"]);
    // A TCP listener on a VIP has its own name and address: kept.
    assert!(listeners.contains(&"10.96.9.2_15021".to_string()));
    // The gateway's clusters stay, so traffic routed to them still works.
    assert!(names(&r, type_url::CLUSTER)
        .contains(&"outbound|15021||istio-ingressgateway.istio-system.svc.cluster.local".into()));
}

#[test]
fn no_inbound_chain_or_cluster_on_proxy_ports() {
    let t = Translator::new(Arc::new(model_with_gateway()));
    let gw = proxy(
        "sidecar~10.244.9.10~istio-ingressgateway-0.istio-system~istio-system.svc.cluster.local",
    );
    assert_eq!(t.inbound_ports(&gw).into_keys().collect::<Vec<_>>(), [8080]);
    let r = t.proxy_resources(&gw);
    let inbound: Listener = decode(&r, type_url::LISTENER, "virtualInbound");
    let chains: Vec<_> = inbound
        .filter_chains
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(chains, ["virtualInbound-blackhole", "0.0.0.0_8080"]);
    let inbound_clusters: Vec<_> = names(&r, type_url::CLUSTER)
        .into_iter()
        .filter(|n| n.starts_with("inbound|"))
        .collect();
    assert_eq!(inbound_clusters, ["inbound|8080||"]);
}
