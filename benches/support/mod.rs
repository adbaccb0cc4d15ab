//! Synthetic meshes for benchmarks: N services in a handful of namespaces, 3 pods each.

use std::collections::BTreeMap;
use std::sync::Arc;

use meshd::mesh::{
    Endpoint, MeshModel, ObjectKey, PortEndpoints, Protocol, Service, ServicePort, TargetPort,
    Workload,
};

/// Namespaces the synthetic services are spread over.
pub const NAMESPACES: usize = 10;

pub fn synthetic_mesh(services: usize) -> MeshModel {
    let mut model = MeshModel::default();
    for i in 0..services {
        let namespace = format!("ns-{}", i % NAMESPACES);
        model.namespaces.insert(namespace.clone());
        let name = format!("svc-{i}");
        let key = ObjectKey {
            namespace: namespace.clone(),
            name: name.clone(),
        };
        // Every fourth service is TCP, the rest HTTP, so both listener shapes are exercised.
        let (port_name, protocol) = if i % 4 == 3 {
            ("tcp", Protocol::Tcp)
        } else {
            ("http", Protocol::Http)
        };
        let port = 8000 + (i % 50) as u16;
        let selector: BTreeMap<String, String> = [("app".to_string(), name.clone())].into();
        let cluster_ip = format!("240.{}.{}.{}", (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff);
        model.services.insert(
            key.clone(),
            Arc::new(Service {
                key: key.clone(),
                hostname: format!("{name}.{namespace}.svc.cluster.local"),
                cluster_ip: Some(cluster_ip),
                ports: vec![ServicePort {
                    name: port_name.to_string(),
                    port,
                    target_port: TargetPort::Number(8080),
                    protocol,
                }],
                selector: Some(selector.clone()),
                labels: BTreeMap::new(),
                origin: meshd::mesh::ServiceOrigin::Kubernetes,
            }),
        );
        let mut endpoints = Vec::new();
        for p in 0..3 {
            let pod = ObjectKey {
                namespace: namespace.clone(),
                name: format!("{name}-{p}"),
            };
            let ip = format!("241.{}.{}.{}", (i >> 8) & 0xff, i & 0xff, p);
            model.workloads_by_ip.insert(ip.clone(), pod.clone());
            model.workloads.insert(
                pod.clone(),
                Arc::new(Workload {
                    key: pod.clone(),
                    ip: Some(ip.clone()),
                    labels: selector.clone(),
                    service_account: "default".into(),
                    ready: true,
                    named_ports: BTreeMap::new(),
                    mtls_ready: true,
                }),
            );
            endpoints.push(Endpoint {
                address: ip,
                port: 8080,
                ready: true,
                workload: Some(pod),
                labels: selector.clone(),
                service_account: Some("default".into()),
                mtls_ready: true,
                zone: None,
            });
        }
        model
            .endpoints
            .insert((key, port), Arc::new(PortEndpoints { endpoints }));
    }
    model
}

/// The node id of the first pod of service `i`.
pub fn node_id_of(i: usize) -> String {
    let namespace = format!("ns-{}", i % NAMESPACES);
    format!(
        "sidecar~241.{}.{}.0~svc-{i}-0.{namespace}~{namespace}.svc.cluster.local",
        (i >> 8) & 0xff,
        i & 0xff
    )
}

/// Replaces the address of one endpoint of the first service (a pod rescheduled).
pub fn move_one_endpoint(model: &mut MeshModel) {
    let (key, first) = model
        .endpoints
        .iter()
        .next()
        .map(|(k, v)| (k.clone(), v.clone()))
        .expect("a service with endpoints");
    let mut endpoints = PortEndpoints::clone(&first);
    endpoints.endpoints[0].address = "242.0.0.1".to_string();
    model.endpoints.insert(key, Arc::new(endpoints));
}
