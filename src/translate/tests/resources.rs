//! What a sidecar receives: names, domains, clusters, endpoints, listeners, routes.

use super::*;

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
    assert!(retry.retriable_status_codes.is_empty());

    let r = t.proxy_resources(&reviews_proxy());
    let routes: RouteConfiguration = decode(&r, type_url::ROUTE, "9080");
    assert!(routes.virtual_hosts[1]
        .domains
        .contains(&"reviews".to_string()));
}

#[test]
fn a_domain_is_listed_once_per_route_config() {
    // A second service claiming reviews' ClusterIP: only the first host keeps the domain.
    let t = Translator::new(Arc::new(model_with_shared_vip()));
    let r = t.proxy_resources(&proxy("sidecar~10.0.9.9~x.shop~shop.svc.cluster.local"));
    for resource in r.of_type(type_url::ROUTE).values() {
        let config = RouteConfiguration::decode(&resource.body.value[..]).unwrap();
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
        .map(|l| crate::envoy::json::resource_to_json(l).unwrap().to_string())
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
