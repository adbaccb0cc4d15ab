use std::collections::BTreeMap;

use envoy_types::pb::envoy::config::listener::v3::filter::ConfigType;
use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::{
    tcp_proxy::ClusterSpecifier, TcpProxy,
};
use prost::Message;

use super::*;
use crate::mesh::traffic::{
    ConnectionPool, ConsistentHash, ExportTo, HashAlgorithm, HashKey, HeaderRules, LbPolicy,
    Subset, TcpRoute, TlsRoute, TrafficPolicy,
};
use crate::mesh::{ObjectKey, ProxyType, TargetPort};
use crate::translate::scope::{ScopeIndex, TranslateOptions};

/// A model with its scope index, for scopes of proxies with any namespace and labels.
struct World {
    model: MeshModel,
    options: TranslateOptions,
    index: ScopeIndex,
}

impl World {
    fn new(services: &[&Service], rules: Vec<VirtualService>, drs: Vec<DestinationRule>) -> World {
        let mut model = MeshModel::default();
        for s in services {
            model
                .services
                .insert(s.key.clone(), std::sync::Arc::new((*s).clone()));
        }
        for vs in rules {
            model
                .virtual_services
                .insert(vs.key.clone(), std::sync::Arc::new(vs));
        }
        for dr in drs {
            model
                .destination_rules
                .insert(dr.key.clone(), std::sync::Arc::new(dr));
        }
        let options = TranslateOptions::default();
        let index = ScopeIndex::new(&model, &options);
        World {
            model,
            options,
            index,
        }
    }

    fn scope<'a>(&'a self, namespace: &'a str, labels: &'a BTreeMap<String, String>) -> Scope<'a> {
        Scope {
            model: &self.model,
            options: &self.options,
            index: &self.index,
            namespace,
            proxy_type: ProxyType::Sidecar,
            labels,
            sidecar: None,
            gateway_keys: &[],
            zone: None,
            identity: false,
        }
    }
}

/// `l4_chains` for a proxy in `namespace` with `labels`.
fn chains_for(
    world: &World,
    namespace: &str,
    labels: &BTreeMap<String, String>,
    service: &Service,
    port: &ServicePort,
) -> Vec<ChainOpts> {
    let scope = world.scope(namespace, labels);
    l4_chains(&scope, &l4_rules(&scope), service, port)
}

fn key(ns: &str, name: &str) -> ObjectKey {
    ObjectKey {
        namespace: ns.into(),
        name: name.into(),
    }
}

fn service(name: &str, port: u16, protocol: Protocol) -> Service {
    Service {
        key: key("shop", name),
        hostname: format!("{name}.shop.svc.cluster.local"),
        cluster_ip: Some("10.96.0.40".into()),
        ports: vec![ServicePort {
            name: String::new(),
            port,
            target_port: TargetPort::Number(port),
            protocol,
        }],
        selector: None,
        labels: BTreeMap::new(),
        origin: crate::mesh::ServiceOrigin::Kubernetes,
    }
}

fn to(host: &str, weight: u32) -> WeightedDestination {
    WeightedDestination {
        destination: Destination {
            host: host.into(),
            subset: None,
            port: None,
        },
        weight,
        headers: HeaderRules::default(),
    }
}

fn vs(name: &str, host: &str, tcp: Vec<TcpRoute>, tls: Vec<TlsRoute>) -> VirtualService {
    VirtualService {
        key: key("shop", name),
        hosts: vec![host.into()],
        gateways: vec![GatewayRef::Mesh],
        http: Vec::new(),
        tls,
        tcp,
        export_to: ExportTo::All,
    }
}

fn tcp_proxy(opts: &ChainOpts) -> TcpProxy {
    match &opts.filters[0].config_type {
        Some(ConfigType::TypedConfig(any)) => TcpProxy::decode(&any.value[..]).unwrap(),
        _ => panic!("typed config"),
    }
}

fn cluster(opts: &ChainOpts) -> String {
    match tcp_proxy(opts).cluster_specifier {
        Some(ClusterSpecifier::Cluster(c)) => c,
        other => panic!("expected one cluster, got {other:?}"),
    }
}

fn no_labels() -> BTreeMap<String, String> {
    BTreeMap::new()
}

#[test]
fn weighted_tcp_route_takes_the_whole_port() {
    let db = service("db", 5432, Protocol::Tcp);
    let rule = vs(
        "db-split",
        &db.hostname,
        vec![TcpRoute {
            matches: Vec::new(),
            route: vec![
                to("db.shop.svc.cluster.local", 80),
                to("db-canary.shop.svc.cluster.local", 20),
                to("db-off.shop.svc.cluster.local", 0),
            ],
        }],
        Vec::new(),
    );
    let world = World::new(&[&db], vec![rule], Vec::new());
    let labels = no_labels();
    let chains = chains_for(&world, "shop", &labels, &db, &db.ports[0]);
    assert_eq!(
        chains.len(),
        1,
        "the route replaces the service's own chain"
    );
    assert!(chains[0].is_match_all());
    let proxy_config = tcp_proxy(&chains[0]);
    assert_eq!(proxy_config.stat_prefix, "db-split.shop");
    let Some(ClusterSpecifier::WeightedClusters(w)) = proxy_config.cluster_specifier else {
        panic!("expected weighted clusters");
    };
    let got: Vec<(&str, u32)> = w
        .clusters
        .iter()
        .map(|c| (c.name.as_str(), c.weight))
        .collect();
    assert_eq!(
        got,
        [
            ("outbound|5432||db.shop.svc.cluster.local", 80),
            ("outbound|5432||db-canary.shop.svc.cluster.local", 20)
        ]
    );
}

#[test]
fn tcp_matches_on_source_and_subnets() {
    let db = service("db", 5432, Protocol::Unsupported);
    let rule = vs(
        "db-route",
        &db.hostname,
        vec![
            TcpRoute {
                matches: vec![L4Match {
                    source_labels: BTreeMap::from([("app".into(), "batch".into())]),
                    ..Default::default()
                }],
                route: vec![to("db-batch.shop.svc.cluster.local", 100)],
            },
            TcpRoute {
                matches: vec![L4Match {
                    destination_subnets: vec!["10.96.0.0/16".into()],
                    port: Some(5432),
                    ..Default::default()
                }],
                route: vec![to("db-subnet.shop.svc.cluster.local", 100)],
            },
        ],
        Vec::new(),
    );
    let world = World::new(&[&db], vec![rule], Vec::new());
    let batch = BTreeMap::from([("app".to_string(), "batch".to_string())]);
    let web = BTreeMap::from([("app".to_string(), "web".to_string())]);
    // The batch proxy matches the first route, which takes the whole port.
    let for_batch = chains_for(&world, "shop", &batch, &db, &db.ports[0]);
    assert_eq!(for_batch.len(), 1);
    assert_eq!(
        cluster(&for_batch[0]),
        "outbound|5432||db-batch.shop.svc.cluster.local"
    );
    // Others get the subnet chain, then the service's own.
    let for_web = chains_for(&world, "shop", &web, &db, &db.ports[0]);
    assert_eq!(for_web.len(), 2);
    assert_eq!(for_web[0].destination_cidrs, ["10.96.0.0/16"]);
    assert_eq!(
        cluster(&for_web[0]),
        "outbound|5432||db-subnet.shop.svc.cluster.local"
    );
    assert!(for_web[1].is_match_all());
    assert_eq!(
        cluster(&for_web[1]),
        "outbound|5432||db.shop.svc.cluster.local"
    );
}

#[test]
fn tls_routes_match_sni_once_per_distinct_match() {
    let secure = service("secure", 443, Protocol::Tls);
    let sni = |hosts: &[&str]| L4Match {
        sni_hosts: hosts.iter().map(|h| h.to_string()).collect(),
        ..Default::default()
    };
    let rule = vs(
        "secure-sni",
        "*.shop.svc.cluster.local",
        Vec::new(),
        vec![
            TlsRoute {
                matches: vec![sni(&["a.secure.example"])],
                route: vec![to("secure-a.shop.svc.cluster.local", 100)],
            },
            TlsRoute {
                // Same match again: the first keeps it.
                matches: vec![sni(&["a.secure.example"]), sni(&["b.secure.example"])],
                route: vec![WeightedDestination {
                    destination: Destination {
                        host: "secure.shop.svc.cluster.local".into(),
                        subset: Some("v2".into()),
                        port: Some(8443),
                    },
                    weight: 100,
                    headers: HeaderRules::default(),
                }],
            },
        ],
    );
    let labels = no_labels();
    let world = World::new(&[&secure], vec![rule], Vec::new());
    let chains = chains_for(&world, "web", &labels, &secure, &secure.ports[0]);
    assert_eq!(chains.len(), 2, "no plain chain once SNI routes exist");
    assert_eq!(chains[0].sni_hosts, ["a.secure.example"]);
    assert_eq!(
        cluster(&chains[0]),
        "outbound|443||secure-a.shop.svc.cluster.local"
    );
    assert_eq!(chains[1].sni_hosts, ["b.secure.example"]);
    assert_eq!(
        cluster(&chains[1]),
        "outbound|8443|v2|secure.shop.svc.cluster.local"
    );
    // A TLS port without routes has its plain chain.
    let empty = World::new(&[&secure], Vec::new(), Vec::new());
    let plain = chains_for(&empty, "web", &labels, &secure, &secure.ports[0]);
    assert_eq!(plain.len(), 1);
    assert!(plain[0].is_match_all());
    assert_eq!(
        cluster(&plain[0]),
        "outbound|443||secure.shop.svc.cluster.local"
    );
}

#[test]
fn matches_for_other_namespaces_ports_or_gateways_do_not_apply() {
    let world = World::new(&[], Vec::new(), Vec::new());
    let labels = no_labels();
    let scope = world.scope("web", &labels);
    assert!(applies(&scope, &L4Match::default(), 80));
    for m in [
        L4Match {
            source_namespace: Some("other".into()),
            ..Default::default()
        },
        L4Match {
            port: Some(81),
            ..Default::default()
        },
        L4Match {
            gateways: vec![GatewayRef::Gateway(key("istio-system", "ingress"))],
            ..Default::default()
        },
        L4Match {
            source_labels: BTreeMap::from([("app".into(), "x".into())]),
            ..Default::default()
        },
    ] {
        assert!(!applies(&scope, &m, 80), "{m:?}");
    }
}

#[test]
fn destination_rules_set_idle_timeout_duration_and_source_ip_hashing() {
    let db = service("db", 5432, Protocol::Tcp);
    let source_ip = |key| TrafficPolicy {
        load_balancer: Some(crate::mesh::traffic::LoadBalancer {
            policy: LbPolicy::ConsistentHash(ConsistentHash {
                key,
                algorithm: HashAlgorithm::RingHash {
                    minimum_ring_size: None,
                },
            }),
            locality: None,
            warmup: None,
        }),
        ..Default::default()
    };
    let dr = DestinationRule {
        key: key("shop", "db"),
        host: db.hostname.clone(),
        traffic_policy: Some(TrafficPolicy {
            connection_pool: Some(ConnectionPool {
                tcp_idle_timeout: Some(std::time::Duration::from_secs(30)),
                max_connection_duration: Some(std::time::Duration::from_millis(1500)),
                ..Default::default()
            }),
            ..source_ip(HashKey::SourceIp)
        }),
        subsets: vec![Subset {
            name: "v2".into(),
            labels: BTreeMap::new(),
            // A subset's own load balancer replaces the top-level one.
            traffic_policy: Some(source_ip(HashKey::Header("x-user".into()))),
        }],
        export_to: ExportTo::All,
        workload_selector: None,
    };
    let to_v2 = vs(
        "db-v2",
        &db.hostname,
        vec![TcpRoute {
            matches: vec![L4Match {
                source_namespace: Some("batch".into()),
                ..Default::default()
            }],
            route: vec![WeightedDestination {
                destination: Destination {
                    host: db.hostname.clone(),
                    subset: Some("v2".into()),
                    port: None,
                },
                weight: 100,
                headers: HeaderRules::default(),
            }],
        }],
        Vec::new(),
    );
    let world = World::new(&[&db], vec![to_v2], vec![dr]);
    let labels = no_labels();
    let whole = tcp_proxy(&chains_for(&world, "shop", &labels, &db, &db.ports[0])[0]);
    assert_eq!(whole.idle_timeout.unwrap().seconds, 30);
    let max = whole.max_downstream_connection_duration.unwrap();
    assert_eq!((max.seconds, max.nanos), (1, 500_000_000));
    assert_eq!(whole.hash_policy.len(), 1, "hash on the source IP");
    let subset = tcp_proxy(&chains_for(&world, "batch", &labels, &db, &db.ports[0])[0]);
    assert_eq!(
        cluster(&chains_for(&world, "batch", &labels, &db, &db.ports[0])[0]),
        "outbound|5432|v2|db.shop.svc.cluster.local"
    );
    assert!(
        subset.hash_policy.is_empty(),
        "the subset hashes on a header"
    );
    assert_eq!(subset.idle_timeout.unwrap().seconds, 30);
}
