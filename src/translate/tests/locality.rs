//! Locality failover: with a DestinationRule that has outlier detection, endpoints in the
//! proxy's zone come first (priority 0), the others after (priority 1).

use super::*;
use crate::mesh::traffic::{DestinationRule, ExportTo, OutlierDetection, TrafficPolicy};
use envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;

fn zoned_model(with_outlier: bool) -> MeshModel {
    let mut m = model();
    let reviews = key("default", "reviews");
    m.endpoints.insert(
        (reviews.clone(), 9080),
        Arc::new(PortEndpoints {
            endpoints: vec![
                endpoint("10.244.1.12", 9080, true, Some("zone-a")),
                endpoint("10.244.2.12", 9080, true, Some("zone-b")),
            ],
        }),
    );
    let mut own = endpoint("10.244.1.10", 9080, true, Some("zone-a"));
    own.workload = Some(key("default", "productpage-v1"));
    m.endpoints.insert(
        (key("default", "productpage"), 9080),
        Arc::new(PortEndpoints {
            endpoints: vec![own],
        }),
    );
    let rule = DestinationRule {
        key: key("default", "reviews"),
        host: "reviews.default.svc.cluster.local".into(),
        traffic_policy: Some(TrafficPolicy {
            outlier_detection: with_outlier.then(OutlierDetection::default),
            ..Default::default()
        }),
        subsets: vec![],
        export_to: ExportTo::All,
        workload_selector: None,
    };
    m.destination_rules.insert(rule.key.clone(), Arc::new(rule));
    m
}

/// zone -> priority in the reviews assignment a proxy gets.
fn priorities(t: &Translator, node_id: &str) -> BTreeMap<String, u32> {
    let cla: ClusterLoadAssignment = decode(
        &t.proxy_resources(&proxy(node_id)),
        type_url::ENDPOINT,
        "outbound|9080||reviews.default.svc.cluster.local",
    );
    cla.endpoints
        .iter()
        .map(|g| (g.locality.clone().unwrap_or_default().zone, g.priority))
        .collect()
}

const PRODUCTPAGE: &str = "sidecar~10.244.1.10~productpage-v1.default~default.svc.cluster.local";

#[test]
fn endpoints_in_the_proxys_zone_come_first_with_outlier_detection() {
    let t = Translator::new(Arc::new(zoned_model(true)));
    assert_eq!(
        priorities(&t, PRODUCTPAGE),
        BTreeMap::from([("zone-a".into(), 0), ("zone-b".into(), 1)])
    );
    // A proxy whose zone meshd does not know gets no priorities.
    assert_eq!(
        priorities(&t, "sidecar~10.244.9.9~x.default~default.svc.cluster.local"),
        BTreeMap::from([("zone-a".into(), 0), ("zone-b".into(), 0)])
    );
}

#[test]
fn no_failover_without_outlier_detection() {
    let t = Translator::new(Arc::new(zoned_model(false)));
    assert_eq!(
        priorities(&t, PRODUCTPAGE),
        BTreeMap::from([("zone-a".into(), 0), ("zone-b".into(), 0)])
    );
}
