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

mod entries;
mod ingress;
mod locality;
mod mtls;
mod proxies;
mod proxy_ports;
mod resources;
mod scoping;
mod sharing;

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
        origin: crate::mesh::ServiceOrigin::Kubernetes,
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

/// The base model plus `shop/reviews`, which claims `default/reviews`' ClusterIP.
fn model_with_shared_vip() -> MeshModel {
    let mut model = model();
    let dup = service(
        "shop",
        "reviews",
        Some("10.96.0.12"),
        vec![port("http", 9080, TargetPort::Number(9080), Protocol::Http)],
    );
    model.services.insert(dup.key.clone(), Arc::new(dup));
    model
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
