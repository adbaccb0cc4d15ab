//! Unit tests of translation on hand-built models.

use std::collections::BTreeMap;
use std::sync::Arc;

use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::listener::v3::Listener;
use envoy_types::pb::envoy::config::route::v3::RouteConfiguration;
use prost::Message;

use super::*;
use crate::mesh::{
    Endpoint, ObjectKey, PortEndpoints, Protocol, Service, ServicePort, TargetPort, Workload,
};

mod proxy_ports;

fn key(ns: &str, name: &str) -> ObjectKey {
    ObjectKey {
        namespace: ns.into(),
        name: name.into(),
    }
}

fn service(ns: &str, name: &str, ip: Option<&str>, ports: Vec<ServicePort>) -> Service {
    Service {
        key: key(ns, name),
        hostname: format!("{name}.{ns}.svc.cluster.local"),
        cluster_ip: ip.map(str::to_string),
        ports,
        selector: Some(BTreeMap::from([("app".into(), name.into())])),
        labels: BTreeMap::new(),
    }
}

fn port(name: &str, port: u16, target: TargetPort, protocol: Protocol) -> ServicePort {
    ServicePort {
        name: name.into(),
        port,
        target_port: target,
        protocol,
    }
}

fn endpoint(ip: &str, port: u16, ready: bool, zone: Option<&str>) -> Endpoint {
    Endpoint {
        address: ip.into(),
        port,
        ready,
        workload: None,
        labels: BTreeMap::new(),
        service_account: None,
        mtls_ready: true,
        zone: zone.map(str::to_string),
    }
}

fn workload(ns: &str, name: &str, app: &str, ip: &str) -> Workload {
    Workload {
        key: key(ns, name),
        ip: Some(ip.into()),
        labels: BTreeMap::from([("app".into(), app.into())]),
        service_account: "default".into(),
        ready: true,
        named_ports: BTreeMap::from([("postgres".into(), 5432)]),
        mtls_ready: true,
    }
}

/// reviews and productpage (HTTP 9080) in default, db (TCP, named target port) and a gRPC
/// api in shop, a TCP service sharing port 9080, and a headless TCP service.
fn model() -> MeshModel {
    let mut m = MeshModel::default();
    let services = [
        service(
            "default",
            "reviews",
            Some("10.96.0.12"),
            vec![port("http", 9080, TargetPort::Number(9080), Protocol::Http)],
        ),
        service(
            "default",
            "productpage",
            Some("10.96.0.10"),
            vec![port("http", 9080, TargetPort::Number(9080), Protocol::Http)],
        ),
        service(
            "shop",
            "db",
            Some("10.96.1.20"),
            vec![port(
                "tcp-postgres",
                5432,
                TargetPort::Name("postgres".into()),
                Protocol::Tcp,
            )],
        ),
        service(
            "shop",
            "api",
            Some("10.96.1.21"),
            vec![port("grpc", 7070, TargetPort::Number(7070), Protocol::Grpc)],
        ),
        service(
            "shop",
            "legacy",
            Some("10.96.1.22"),
            vec![port("tcp", 9080, TargetPort::Number(9080), Protocol::Tcp)],
        ),
        service(
            "shop",
            "cache",
            None,
            vec![port(
                "tcp-redis",
                6379,
                TargetPort::Number(6379),
                Protocol::Tcp,
            )],
        ),
    ];
    for s in services {
        m.namespaces.insert(s.key.namespace.clone());
        m.services.insert(s.key.clone(), Arc::new(s));
    }
    m.endpoints.insert(
        (key("default", "reviews"), 9080),
        Arc::new(PortEndpoints {
            endpoints: vec![
                endpoint("10.244.1.14", 9080, true, Some("zone-b")),
                endpoint("10.244.1.12", 9080, true, Some("zone-a")),
                endpoint("10.244.1.13", 9080, false, Some("zone-a")),
            ],
        }),
    );
    m.endpoints.insert(
        (key("shop", "cache"), 6379),
        Arc::new(PortEndpoints {
            endpoints: vec![endpoint("10.244.2.30", 6379, true, None)],
        }),
    );
    for w in [
        workload("default", "reviews-v1", "reviews", "10.244.1.12"),
        workload("default", "productpage-v1", "productpage", "10.244.1.10"),
        workload("shop", "db-0", "db", "10.244.2.10"),
    ] {
        m.workloads_by_ip
            .insert(w.ip.clone().unwrap(), w.key.clone());
        m.workloads.insert(w.key.clone(), Arc::new(w));
    }
    m
}

fn proxy(id: &str) -> ProxyId {
    ProxyId::parse(id).unwrap()
}

fn reviews_proxy() -> ProxyId {
    proxy("sidecar~10.244.1.12~reviews-v1.default~default.svc.cluster.local")
}

fn decode<M: Message + Default>(resources: &ProxyResources, url: &str, name: &str) -> M {
    let all = resources.of_type(url);
    let r = all
        .get(name)
        .unwrap_or_else(|| panic!("no {name} in {:?}", all.keys().collect::<Vec<_>>()));
    M::decode(&r.body.value[..]).unwrap()
}

fn names(resources: &ProxyResources, url: &str) -> Vec<String> {
    resources.of_type(url).keys().cloned().collect()
}

#[test]
fn names_follow_istio() {
    assert_eq!(
        naming::outbound_cluster(9080, "", "reviews.default.svc.cluster.local"),
        "outbound|9080||reviews.default.svc.cluster.local"
    );
    assert_eq!(naming::inbound_cluster(9080), "inbound|9080||");
    assert_eq!(naming::route_config(9080), "9080");
    assert_eq!(naming::wildcard_listener(9080), "0.0.0.0_9080");
    assert_eq!(naming::tcp_listener("10.96.1.20", 5432), "10.96.1.20_5432");
    assert_eq!(
        naming::outbound_sni(9080, "v1", "reviews.default.svc.cluster.local"),
        "outbound_.9080_.v1_.reviews.default.svc.cluster.local"
    );
}

#[test]
fn domains_depend_on_proxy_namespace() {
    let host = "reviews.default.svc.cluster.local";
    assert_eq!(
        naming::service_domains(host, "reviews", "default", Some("10.96.0.12"), "default"),
        vec![
            host,
            "reviews",
            "reviews.default",
            "reviews.default.svc",
            "10.96.0.12"
        ]
    );
    assert_eq!(
        naming::service_domains(host, "reviews", "default", None, "shop"),
        vec![host, "reviews.default", "reviews.default.svc"]
    );
}

#[test]
fn clusters_of_a_sidecar() {
    let t = Translator::new(Arc::new(model()));
    let r = t.proxy_resources(&reviews_proxy());
    assert_eq!(
        names(&r, type_url::CLUSTER),
        vec![
            "BlackHoleCluster",
            "InboundPassthroughCluster",
            "PassthroughCluster",
            "inbound|9080||",
            "outbound|5432||db.shop.svc.cluster.local",
            "outbound|6379||cache.shop.svc.cluster.local",
            "outbound|7070||api.shop.svc.cluster.local",
            "outbound|9080||legacy.shop.svc.cluster.local",
            "outbound|9080||productpage.default.svc.cluster.local",
            "outbound|9080||reviews.default.svc.cluster.local",
        ]
    );
    let eds: Cluster = decode(
        &r,
        type_url::CLUSTER,
        "outbound|9080||reviews.default.svc.cluster.local",
    );
    let config = eds.eds_cluster_config.unwrap();
    assert_eq!(config.service_name, eds.name);
    assert!(eds.typed_extension_protocol_options.is_empty());
    let grpc: Cluster = decode(
        &r,
        type_url::CLUSTER,
        "outbound|7070||api.shop.svc.cluster.local",
    );
    assert!(grpc
        .typed_extension_protocol_options
        .contains_key(cluster::HTTP_PROTOCOL_OPTIONS_KEY));
    let headless: Cluster = decode(
        &r,
        type_url::CLUSTER,
        "outbound|6379||cache.shop.svc.cluster.local",
    );
    assert!(headless.eds_cluster_config.is_none());
    assert_eq!(
        headless.lb_policy,
        envoy_types::pb::envoy::config::cluster::v3::cluster::LbPolicy::ClusterProvided as i32
    );
}

#[test]
fn endpoints_are_ready_sorted_and_by_zone() {
    let t = Translator::new(Arc::new(model()));
    let r = t.proxy_resources(&reviews_proxy());
    // Headless services have no EDS assignment.
    assert!(!names(&r, type_url::ENDPOINT)
        .contains(&"outbound|6379||cache.shop.svc.cluster.local".to_string()));
    let cla: envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment = decode(
        &r,
        type_url::ENDPOINT,
        "outbound|9080||reviews.default.svc.cluster.local",
    );
    let zones: Vec<_> = cla
        .endpoints
        .iter()
        .map(|l| l.locality.clone().unwrap().zone)
        .collect();
    assert_eq!(zones, vec!["zone-a", "zone-b"]);
    assert_eq!(
        cla.endpoints[0].lb_endpoints.len(),
        1,
        "unready endpoint left out"
    );
    assert!(cla.endpoints[0].lb_endpoints[0]
        .metadata
        .as_ref()
        .unwrap()
        .filter_metadata
        .contains_key(endpoint::TRANSPORT_SOCKET_MATCH_KEY));
}

#[test]
fn tcp_and_http_listeners() {
    let t = Translator::new(Arc::new(model()));
    let r = t.proxy_resources(&reviews_proxy());
    assert_eq!(
        names(&r, type_url::LISTENER),
        vec![
            "0.0.0.0_7070",
            "0.0.0.0_9080",
            "10.244.2.30_6379",
            "10.96.1.20_5432",
            "10.96.1.22_9080",
            "virtualInbound",
            "virtualOutbound",
        ]
    );
    let http: Listener = decode(&r, type_url::LISTENER, "0.0.0.0_9080");
    assert!(!http.bind_to_port.unwrap().value);
    assert_eq!(http.filter_chains[0].filters[0].name, filter::hcm::NAME);
    let tcp: Listener = decode(&r, type_url::LISTENER, "10.96.1.22_9080");
    assert_eq!(
        tcp.filter_chains[0].filters[0].name,
        filter::tcp_proxy::NAME
    );
    let outbound: Listener = decode(&r, type_url::LISTENER, "virtualOutbound");
    assert!(outbound.use_original_dst.unwrap().value);
    assert_eq!(
        outbound.default_filter_chain.unwrap().name,
        naming::PASSTHROUGH_CHAIN
    );
}

#[test]
fn inbound_chains_per_target_port() {
    let t = Translator::new(Arc::new(model()));
    // db's service names its target port; the pod's container port resolves it.
    let r = t.proxy_resources(&proxy(
        "sidecar~10.244.2.10~db-0.shop~shop.svc.cluster.local",
    ));
    let inbound: Listener = decode(&r, type_url::LISTENER, "virtualInbound");
    let chains: Vec<_> = inbound
        .filter_chains
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(chains, vec!["virtualInbound-blackhole", "0.0.0.0_5432"]);
    assert_eq!(
        inbound.filter_chains[1].filters[0].name,
        filter::tcp_proxy::NAME
    );
    assert!(names(&r, type_url::CLUSTER).contains(&"inbound|5432||".to_string()));

    let r = t.proxy_resources(&reviews_proxy());
    let inbound: Listener = decode(&r, type_url::LISTENER, "virtualInbound");
    assert_eq!(inbound.filter_chains[1].name, "0.0.0.0_9080");
    assert_eq!(inbound.filter_chains[1].filters[0].name, filter::hcm::NAME);
    assert_eq!(inbound.listener_filters[0].name, filter::original_dst::NAME);

    // No workload: only the blackhole chain, and no inbound clusters.
    let r = t.proxy_resources(&proxy(
        "sidecar~10.9.9.9~ghost.default~default.svc.cluster.local",
    ));
    let inbound: Listener = decode(&r, type_url::LISTENER, "virtualInbound");
    assert_eq!(inbound.filter_chains.len(), 1);
    assert!(!names(&r, type_url::CLUSTER)
        .iter()
        .any(|n| n.starts_with("inbound|")));
}

#[test]
fn routes_per_port_with_namespace_domains() {
    let t = Translator::new(Arc::new(model()));
    let r = t.proxy_resources(&proxy(
        "sidecar~10.244.2.10~db-0.shop~shop.svc.cluster.local",
    ));
    assert_eq!(names(&r, type_url::ROUTE), vec!["7070", "9080"]);
    let routes: RouteConfiguration = decode(&r, type_url::ROUTE, "9080");
    let hosts: Vec<_> = routes
        .virtual_hosts
        .iter()
        .map(|v| v.name.as_str())
        .collect();
    assert_eq!(
        hosts,
        vec![
            "productpage.default.svc.cluster.local:9080",
            "reviews.default.svc.cluster.local:9080",
            "allow_any",
        ]
    );
    assert!(!routes.virtual_hosts[1]
        .domains
        .contains(&"reviews".to_string()));
    assert!(routes.ignore_port_in_host_matching);
    let route = &routes.virtual_hosts[1].routes[0];
    assert_eq!(route.name, "default");
    let envoy_types::pb::envoy::config::route::v3::route::Action::Route(action) =
        route.action.as_ref().unwrap()
    else {
        panic!("route action")
    };
    assert_eq!(action.timeout.unwrap().seconds, 0);
    let retry = action.retry_policy.as_ref().unwrap();
    assert_eq!(retry.num_retries.unwrap().value, 2);
    assert_eq!(retry.retriable_status_codes, vec![503]);

    let r = t.proxy_resources(&reviews_proxy());
    let routes: RouteConfiguration = decode(&r, type_url::ROUTE, "9080");
    assert!(routes.virtual_hosts[1]
        .domains
        .contains(&"reviews".to_string()));
}

#[test]
fn proxies_share_encoded_resources() {
    let t = Translator::new(Arc::new(model()));
    let a = t.proxy_resources(&reviews_proxy());
    let b = t.proxy_resources(&proxy(
        "sidecar~10.244.1.99~reviews-v2.default~default.svc.cluster.local",
    ));
    let c = t.proxy_resources(&proxy(
        "sidecar~10.244.1.10~productpage-v1.default~default.svc.cluster.local",
    ));
    let d = t.proxy_resources(&proxy(
        "sidecar~10.244.2.10~db-0.shop~shop.svc.cluster.local",
    ));
    for url in [type_url::ROUTE, type_url::ENDPOINT] {
        assert!(Arc::ptr_eq(&a.of_type(url), &c.of_type(url)), "{url}");
    }
    // Same inbound port set (9080 HTTP): same cluster and listener maps.
    for url in [type_url::CLUSTER, type_url::LISTENER] {
        assert!(Arc::ptr_eq(&a.of_type(url), &c.of_type(url)), "{url}");
    }
    // reviews-v2 is not in the model: no inbound ports, different maps, shared entries.
    assert!(!Arc::ptr_eq(
        &a.of_type(type_url::CLUSTER),
        &b.of_type(type_url::CLUSTER)
    ));
    let name = "outbound|9080||reviews.default.svc.cluster.local";
    assert!(Arc::ptr_eq(
        &a.of_type(type_url::CLUSTER)[name],
        &d.of_type(type_url::CLUSTER)[name]
    ));
    assert!(!Arc::ptr_eq(
        &a.of_type(type_url::ROUTE),
        &d.of_type(type_url::ROUTE)
    ));
}

#[test]
fn output_is_deterministic() {
    let a = Translator::new(Arc::new(model())).proxy_resources(&reviews_proxy());
    let b = Translator::new(Arc::new(model())).proxy_resources(&reviews_proxy());
    for url in type_url::PUSH_ORDER {
        assert_eq!(a.of_type(url), b.of_type(url), "{url}");
    }
}

#[test]
fn translator_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Translator>();
}

#[test]
fn node_metadata_is_copied() {
    use envoy_types::pb::envoy::config::core::v3::Node;
    use envoy_types::pb::google::protobuf::{value::Kind, Struct, Value};
    let s = |v: &str| Value {
        kind: Some(Kind::StringValue(v.into())),
    };
    let node = Node {
        id: "sidecar~10.0.0.1~productpage-v1.default~default.svc.cluster.local".into(),
        metadata: Some(Struct {
            fields: [
                ("NAMESPACE".to_string(), s("default")),
                ("SERVICE_ACCOUNT".to_string(), s("bookinfo")),
                ("IGNORED".to_string(), s("x")),
                (
                    "LABELS".to_string(),
                    Value {
                        kind: Some(Kind::StructValue(Struct {
                            fields: [("app".to_string(), s("productpage"))].into(),
                        })),
                    },
                ),
            ]
            .into(),
        }),
        ..Default::default()
    };
    let p = node::proxy_from_node(&node).unwrap();
    assert_eq!(p.metadata["NAMESPACE"], "default");
    assert_eq!(p.metadata["SERVICE_ACCOUNT"], "bookinfo");
    assert_eq!(p.metadata["LABELS.app"], "productpage");
    assert!(!p.metadata.contains_key("IGNORED"));
}

#[test]
fn unknown_pod_is_matched_by_metadata_labels() {
    let t = Translator::new(Arc::new(model()));
    let mut p = proxy("sidecar~10.244.1.77~reviews-new.default~default.svc.cluster.local");
    assert!(t.inbound_ports(&p).is_empty());
    p.metadata.insert("LABELS.app".into(), "reviews".into());
    assert_eq!(
        t.inbound_ports(&p).into_iter().collect::<Vec<_>>(),
        vec![(9080, Protocol::Http)]
    );
}

#[test]
fn assembled_routes_equal_encoded_messages() {
    let mut model = model();
    // A second service claiming reviews' ClusterIP: only the first host keeps the domain.
    let dup = service(
        "shop",
        "reviews",
        Some("10.96.0.12"),
        vec![port("http", 9080, TargetPort::Number(9080), Protocol::Http)],
    );
    model.services.insert(dup.key.clone(), Arc::new(dup));
    let parts = route::encoded_route_parts(&model);
    for namespace in ["default", "shop", "elsewhere"] {
        let configs = route::outbound_route_configs(&model, namespace);
        assert_eq!(configs.len(), parts.len());
        for (config, part) in configs.iter().zip(&parts) {
            assert_eq!(config.name, part.name());
            assert_eq!(
                config.encode_to_vec(),
                part.assemble(namespace),
                "{namespace}"
            );
        }
    }
}

#[test]
fn a_domain_is_listed_once_per_route_config() {
    let mut model = model();
    let dup = service(
        "shop",
        "reviews",
        Some("10.96.0.12"),
        vec![port("http", 9080, TargetPort::Number(9080), Protocol::Http)],
    );
    model.services.insert(dup.key.clone(), Arc::new(dup));
    for config in route::outbound_route_configs(&model, "shop") {
        let mut seen = std::collections::BTreeSet::new();
        for domain in config.virtual_hosts.iter().flat_map(|v| &v.domains) {
            assert!(
                seen.insert(domain.clone()),
                "{domain} twice in {}",
                config.name
            );
        }
    }
}

/// Nothing the proxy receives may refer to a resource it does not get: every EDS cluster
/// has an assignment (else it stays warming) and every RDS name a route config.
#[test]
fn references_resolve() {
    let t = Translator::new(Arc::new(model()));
    let r = t.proxy_resources(&reviews_proxy());
    let endpoints = r.of_type(type_url::ENDPOINT);
    for resource in r.of_type(type_url::CLUSTER).values() {
        let cluster = Cluster::decode(&resource.body.value[..]).unwrap();
        if let Some(eds) = cluster.eds_cluster_config {
            assert!(
                endpoints.contains_key(&eds.service_name),
                "{}",
                cluster.name
            );
        }
    }
    let routes = r.of_type(type_url::ROUTE);
    let json: Vec<String> = r
        .of_type(type_url::LISTENER)
        .values()
        .map(|l| crate::xds::json::resource_to_json(l).unwrap().to_string())
        .collect();
    let mut referenced = 0;
    for text in json {
        for piece in text.split("\"routeConfigName\":\"").skip(1) {
            let name = piece.split('"').next().unwrap();
            assert!(routes.contains_key(name), "route config {name}");
            referenced += 1;
        }
    }
    assert_eq!(referenced, routes.len());
}

#[test]
fn next_generation_rebuilds_only_what_changed() {
    let first = Translator::new(Arc::new(model()));
    let before = first.proxy_resources(&reviews_proxy());

    // Endpoint-only change: one reviews endpoint more.
    let mut changed = model();
    let reviews = (key("default", "reviews"), 9080);
    let mut endpoints = PortEndpoints::clone(&changed.endpoints[&reviews]);
    endpoints
        .endpoints
        .push(endpoint("10.244.1.77", 9080, true, None));
    changed.endpoints.insert(reviews, Arc::new(endpoints));
    let second = Translator::next(&first, Arc::new(changed));
    let after = second.proxy_resources(&reviews_proxy());
    for url in [type_url::CLUSTER, type_url::LISTENER, type_url::ROUTE] {
        assert!(
            Arc::ptr_eq(&before.of_type(url), &after.of_type(url)),
            "{url} kept"
        );
    }
    assert!(!Arc::ptr_eq(
        &before.of_type(type_url::ENDPOINT),
        &after.of_type(type_url::ENDPOINT)
    ));
    let name = "outbound|9080||reviews.default.svc.cluster.local";
    assert_ne!(
        before.of_type(type_url::ENDPOINT)[name].version,
        after.of_type(type_url::ENDPOINT)[name].version
    );
    // Carried-over parts equal a fresh translation of the same model.
    let fresh = Translator::new(second.model().clone()).proxy_resources(&reviews_proxy());
    for url in type_url::PUSH_ORDER {
        assert_eq!(*fresh.of_type(url), *after.of_type(url), "{url}");
    }

    // A service change rebuilds clusters, listeners and routes.
    let mut more = MeshModel::clone(second.model());
    let ratings = service(
        "default",
        "ratings",
        Some("10.96.0.13"),
        vec![port("http", 9080, TargetPort::Number(9080), Protocol::Http)],
    );
    more.services.insert(ratings.key.clone(), Arc::new(ratings));
    let third = Translator::next(&second, Arc::new(more));
    let latest = third.proxy_resources(&reviews_proxy());
    for url in [type_url::CLUSTER, type_url::ROUTE] {
        assert!(
            !Arc::ptr_eq(&after.of_type(url), &latest.of_type(url)),
            "{url} rebuilt"
        );
    }
    assert!(latest
        .of_type(type_url::CLUSTER)
        .contains_key("outbound|9080||ratings.default.svc.cluster.local"));
}
