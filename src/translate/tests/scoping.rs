//! Per-proxy scopes: Sidecar egress narrows what a proxy gets, REGISTRY_ONLY closes the
//! catch-alls, and proxies whose view is the same share one key.

use super::*;
use crate::mesh::traffic::{NamespaceScope, OutboundPolicy, ScopedHost, Sidecar, SidecarEgress};
use envoy_types::pb::envoy::config::listener::v3::filter::ConfigType;
use envoy_types::pb::envoy::config::route::v3::route::Action;
use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::{
    tcp_proxy::ClusterSpecifier, TcpProxy,
};

fn sidecar(
    ns: &str,
    name: &str,
    selector: Option<(&str, &str)>,
    hosts: &[(&str, &str)],
) -> Sidecar {
    Sidecar {
        key: key(ns, name),
        workload_selector: selector.map(|(k, v)| BTreeMap::from([(k.into(), v.into())])),
        ingress: vec![],
        egress: vec![SidecarEgress {
            port: None,
            bind: None,
            hosts: hosts
                .iter()
                .map(|(ns, host)| ScopedHost {
                    namespace: match *ns {
                        "*" => NamespaceScope::Any,
                        "~" => NamespaceScope::None,
                        "." => NamespaceScope::ProxyNamespace,
                        n => NamespaceScope::Named(n.into()),
                    },
                    host: host.to_string(),
                })
                .collect(),
        }],
        outbound_traffic_policy: None,
    }
}

fn with_sidecars(sidecars: Vec<Sidecar>) -> MeshModel {
    let mut m = model();
    for s in sidecars {
        m.sidecars.insert(s.key.clone(), Arc::new(s));
    }
    m
}

fn outbound_cluster_names(r: &ProxyResources) -> Vec<String> {
    names(r, type_url::CLUSTER)
        .into_iter()
        .filter(|n| n.starts_with("outbound|"))
        .collect()
}

#[test]
fn namespace_sidecar_limits_clusters_endpoints_and_routes_to_its_egress_hosts() {
    let all = Translator::new(Arc::new(model())).proxy_resources(&reviews_proxy());
    let t = Translator::new(Arc::new(with_sidecars(vec![sidecar(
        "default",
        "default",
        None,
        &[("default", "*")],
    )])));
    let scoped = t.proxy_resources(&reviews_proxy());
    let clusters = outbound_cluster_names(&scoped);
    assert!(!clusters.is_empty());
    assert!(
        clusters
            .iter()
            .all(|c| c.ends_with(".default.svc.cluster.local")),
        "{clusters:?}"
    );
    assert!(clusters.len() < outbound_cluster_names(&all).len());
    for name in names(&scoped, type_url::ENDPOINT) {
        assert!(name.ends_with(".default.svc.cluster.local"), "{name}");
    }
    for resource in scoped.of_type(type_url::ROUTE).values() {
        let config = RouteConfiguration::decode(&resource.body.value[..]).unwrap();
        for vhost in &config.virtual_hosts {
            assert!(
                vhost.name == naming::ALLOW_ANY_VHOST || vhost.name.contains(".default.svc"),
                "{}",
                vhost.name
            );
        }
    }
    // A proxy in another namespace is not under that Sidecar.
    let db = t.proxy_resources(&proxy(
        "sidecar~10.244.2.10~db-0.shop~shop.svc.cluster.local",
    ));
    assert_eq!(outbound_cluster_names(&db), outbound_cluster_names(&all));
}

#[test]
fn workload_selector_beats_namespace_sidecar_and_root_sidecar_is_the_default() {
    let m = with_sidecars(vec![
        sidecar("default", "all", None, &[("default", "*")]),
        sidecar(
            "default",
            "reviews",
            Some(("app", "reviews")),
            &[("shop", "*")],
        ),
        sidecar("istio-system", "default", None, &[("~", "*")]),
    ]);
    // A root-namespace Sidecar with `./*` means each proxy's own namespace.
    let root_dot = Translator::new(Arc::new(with_sidecars(vec![sidecar(
        "istio-system",
        "default",
        None,
        &[(".", "*")],
    )])));
    let db = root_dot.proxy_resources(&proxy(
        "sidecar~10.244.2.10~db-0.shop~shop.svc.cluster.local",
    ));
    let db = outbound_cluster_names(&db);
    assert!(!db.is_empty());
    assert!(
        db.iter().all(|c| c.ends_with(".shop.svc.cluster.local")),
        "{db:?}"
    );
    let t = Translator::new(Arc::new(m));
    let reviews = outbound_cluster_names(&t.proxy_resources(&reviews_proxy()));
    assert!(
        reviews
            .iter()
            .all(|c| c.ends_with(".shop.svc.cluster.local")),
        "{reviews:?}"
    );
    let product = outbound_cluster_names(&t.proxy_resources(&proxy(
        "sidecar~10.244.1.10~productpage-v1.default~default.svc.cluster.local",
    )));
    assert!(
        product
            .iter()
            .all(|c| c.ends_with(".default.svc.cluster.local")),
        "{product:?}"
    );
    // The shop namespace has no Sidecar: the root namespace's (`~/*`) applies.
    let db = t.proxy_resources(&proxy(
        "sidecar~10.244.2.10~db-0.shop~shop.svc.cluster.local",
    ));
    assert!(outbound_cluster_names(&db).is_empty());
}

fn passthrough_cluster_of(r: &ProxyResources) -> String {
    let l: Listener = decode(r, type_url::LISTENER, naming::VIRTUAL_OUTBOUND);
    let chain = l.default_filter_chain.unwrap();
    let Some(ConfigType::TypedConfig(any)) = &chain.filters[0].config_type else {
        panic!("typed config");
    };
    match TcpProxy::decode(&any.value[..]).unwrap().cluster_specifier {
        Some(ClusterSpecifier::Cluster(c)) => c,
        other => panic!("{other:?}"),
    }
}

fn catch_all_is_blocked(r: &ProxyResources) -> bool {
    let config: RouteConfiguration = decode(r, type_url::ROUTE, "9080");
    let last = config.virtual_hosts.last().unwrap();
    match &last.routes[0].action {
        Some(Action::DirectResponse(d)) => {
            assert_eq!(d.status, 502);
            assert_eq!(last.name, naming::BLOCK_ALL_VHOST);
            true
        }
        _ => {
            assert_eq!(last.name, naming::ALLOW_ANY_VHOST);
            false
        }
    }
}

#[test]
fn registry_only_sends_unknown_destinations_to_the_blackhole() {
    let open = Translator::new(Arc::new(model())).proxy_resources(&reviews_proxy());
    assert_eq!(passthrough_cluster_of(&open), naming::PASSTHROUGH_CLUSTER);
    assert!(!catch_all_is_blocked(&open));

    let options = TranslateOptions {
        outbound_traffic_policy: OutboundPolicy::RegistryOnly,
        ..Default::default()
    };
    let closed = Translator::with_options(Arc::new(model()), Arc::new(options))
        .proxy_resources(&reviews_proxy());
    assert_eq!(passthrough_cluster_of(&closed), naming::BLACKHOLE_CLUSTER);
    assert!(catch_all_is_blocked(&closed));

    // A Sidecar's own policy wins over the mesh's.
    let mut s = sidecar("default", "default", None, &[("*", "*")]);
    s.outbound_traffic_policy = Some(OutboundPolicy::RegistryOnly);
    let by_sidecar =
        Translator::new(Arc::new(with_sidecars(vec![s]))).proxy_resources(&reviews_proxy());
    assert_eq!(
        passthrough_cluster_of(&by_sidecar),
        naming::BLACKHOLE_CLUSTER
    );
    assert!(catch_all_is_blocked(&by_sidecar));
}

#[test]
fn namespaces_the_model_does_not_name_share_one_scope() {
    let t = Translator::new(Arc::new(model()));
    let (a, _) = t.scope_key(&proxy(
        "sidecar~10.9.0.1~a.nowhere~nowhere.svc.cluster.local",
    ));
    let (b, _) = t.scope_key(&proxy(
        "sidecar~10.9.0.2~b.elsewhere~elsewhere.svc.cluster.local",
    ));
    assert_eq!(a, b);
    assert_eq!(a.namespace, "");
    let (shop, _) = t.scope_key(&proxy(
        "sidecar~10.244.2.10~db-0.shop~shop.svc.cluster.local",
    ));
    assert_eq!(shop.namespace, "shop");
    // Clusters do not depend on a namespace without DestinationRules.
    let index = t.index();
    assert_eq!(shop.for_clusters(index), a.for_clusters(index));
}
