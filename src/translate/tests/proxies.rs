//! Which proxy is which: node metadata and proxies without a known pod.

use super::*;

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
