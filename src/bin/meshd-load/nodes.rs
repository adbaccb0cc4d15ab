//! The simulated proxies' identities: Istio-style node ids and metadata for a synthetic pod
//! list (`--proxies N --namespaces K`), as istio-agent would send them.

use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::google::protobuf::{value::Kind, Struct, Value};

/// One simulated sidecar's pod.
#[derive(Debug, Clone, PartialEq)]
pub struct Pod {
    pub name: String,
    pub namespace: String,
    pub ip: String,
    pub app: String,
}

/// `count` pods spread round-robin over `namespaces` namespaces (`ns-0`..), each with its
/// own IP in 10.128.0.0/9 so that node ids are unique.
pub fn synthetic_pods(count: usize, namespaces: usize) -> Vec<Pod> {
    let namespaces = namespaces.max(1);
    (0..count)
        .map(|i| {
            let namespace = format!("ns-{}", i % namespaces);
            let app = format!("app-{}", i / namespaces);
            Pod {
                name: format!("{app}-{i:x}"),
                namespace,
                ip: format!(
                    "10.{}.{}.{}",
                    128 + ((i >> 16) & 0x7f),
                    (i >> 8) & 0xff,
                    i & 0xff
                ),
                app,
            }
        })
        .collect()
}

fn string(value: &str) -> Value {
    Value {
        kind: Some(Kind::StringValue(value.to_string())),
    }
}

/// The `Node` an Istio sidecar of `pod` sends: `sidecar~IP~POD.NS~NS.svc.cluster.local`
/// and the metadata keys istiod (and meshd) select configuration by.
pub fn node_for(pod: &Pod) -> Node {
    let labels = Struct {
        fields: [("app".to_string(), string(&pod.app))].into(),
    };
    let fields = [
        ("NAMESPACE", string(&pod.namespace)),
        ("INSTANCE_IPS", string(&pod.ip)),
        ("NAME", string(&pod.name)),
        ("WORKLOAD_NAME", string(&pod.app)),
        ("SERVICE_ACCOUNT", string("default")),
        ("CLUSTER_ID", string("Kubernetes")),
        ("ISTIO_VERSION", string("1.28.0")),
        ("INTERCEPTION_MODE", string("REDIRECT")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .chain([(
        "LABELS".to_string(),
        Value {
            kind: Some(Kind::StructValue(labels)),
        },
    )])
    .collect();
    Node {
        id: format!(
            "sidecar~{}~{}.{}~{}.svc.cluster.local",
            pod.ip, pod.name, pod.namespace, pod.namespace
        ),
        cluster: pod.app.clone(),
        metadata: Some(Struct { fields }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pods_are_unique_and_spread_over_namespaces() {
        let pods = synthetic_pods(600, 3);
        let ids: std::collections::BTreeSet<_> = pods.iter().map(|p| node_for(p).id).collect();
        assert_eq!(ids.len(), 600);
        assert_eq!(pods[4].namespace, "ns-1");
        assert_eq!(
            node_for(&pods[4]).id,
            "sidecar~10.128.0.4~app-1-4.ns-1~ns-1.svc.cluster.local"
        );
    }
}
