//! Encoded once and shared: between proxies, across generations, deterministically.

use super::*;

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

#[test]
fn caches_keyed_by_claims_stay_bounded_and_are_not_inherited() {
    let t = Translator::new(Arc::new(model()));
    // Namespaces without services, as claimed by many proxies: one shared entry.
    let first = t.proxy_resources(&proxy(
        "sidecar~10.9.0.1~x-0.nowhere-0~nowhere-0.svc.cluster.local",
    ));
    for i in 1..50 {
        let other = t.proxy_resources(&proxy(&format!(
            "sidecar~10.9.0.1~x-0.nowhere-{i}~nowhere-{i}.svc.cluster.local"
        )));
        assert!(Arc::ptr_eq(
            &first.of_type(type_url::ROUTE),
            &other.of_type(type_url::ROUTE)
        ));
    }
    let (routes, _, _) = t.cache_sizes();
    assert_eq!(routes, 1);

    // A proxy the model does not know, with labels that select reviews: its port set is
    // cached for this generation only.
    let mut claimed = proxy("sidecar~10.9.0.2~ghost-1.default~default.svc.cluster.local");
    claimed
        .metadata
        .insert("LABELS.app".into(), "reviews".into());
    let resources = t.proxy_resources(&claimed);
    assert!(resources
        .of_type(type_url::CLUSTER)
        .contains_key("inbound|9080||"));
    // The only carried set is the empty one the service-less proxies above share.
    let (_, carried, claimed_sets) = t.cache_sizes();
    assert_eq!((carried, claimed_sets), (1, 1));
    let next = Translator::next(&t, Arc::new(model()));
    // Route configs: the shared entry and `default`, a namespace with services.
    assert_eq!(next.cache_sizes(), (2, 1, 0));
}

#[test]
fn a_probe_serves_a_translated_scope_and_builds_nothing() {
    use crate::translate::probe::probe;
    let t = Translator::new(Arc::new(model()));
    // Nothing built yet: the probe misses and leaves the caches empty.
    assert!(probe(|| t.proxy_resources(&reviews_proxy())).is_none());
    assert_eq!(t.cache_sizes(), (0, 0, 0));
    let built = t.proxy_resources(&reviews_proxy());
    // Another proxy of the same scope and ports: served by look-ups, the same maps.
    let other = proxy("sidecar~10.244.1.10~productpage-v1.default~default.svc.cluster.local");
    let probed = probe(|| t.proxy_resources(&other)).expect("a translated scope");
    for url in [
        type_url::CLUSTER,
        type_url::ENDPOINT,
        type_url::LISTENER,
        type_url::ROUTE,
    ] {
        assert!(
            Arc::ptr_eq(&built.of_type(url), &probed.of_type(url)),
            "{url}"
        );
    }
    // A router's parts are not built yet: a miss again.
    let router = proxy("router~10.244.3.1~ingress-0.istio-system~istio-system.svc.cluster.local");
    assert!(probe(|| t.proxy_resources(&router)).is_none());
}
