use std::time::Duration;

use super::*;
use crate::mesh::build::istio_test_support::{assert_rejects, istio};

fn dr(yaml_spec: &str) -> wire::IstioObject<wire::DestinationRuleSpec> {
    istio("reviews", "bookinfo", yaml_spec)
}

#[test]
fn reads_policies_subsets_and_ports() {
    let checked = check(&dr("
host: reviews
trafficPolicy:
  loadBalancer:
    consistentHash: {httpHeaderName: X-User, maglev: {tableSize: 65537}}
  connectionPool:
    tcp: {maxConnections: 1, connectTimeout: 250ms}
    http: {http1MaxPendingRequests: 1, maxRequestsPerConnection: 1}
  outlierDetection: {consecutiveErrors: 2, interval: 1s, baseEjectionTime: 3m, maxEjectionPercent: 100}
  portLevelSettings:
  - port: {number: 9080}
    loadBalancer: {simple: ROUND_ROBIN}
subsets:
- name: v1
  labels: {version: v1}
- name: v2
  labels: {version: v2}
  trafficPolicy:
    tls: {mode: SIMPLE, sni: reviews.example}
"))
    .unwrap();
    assert_eq!(checked.host, "reviews.bookinfo.svc.cluster.local");
    let policy = checked.traffic_policy.as_ref().unwrap();
    let LbPolicy::ConsistentHash(hash) = &policy.load_balancer.as_ref().unwrap().policy else {
        panic!("expected consistent hashing");
    };
    assert_eq!(hash.key, HashKey::Header("x-user".into()));
    assert_eq!(
        hash.algorithm,
        HashAlgorithm::Maglev {
            table_size: Some(65537)
        }
    );
    let pool = policy.connection_pool.as_ref().unwrap();
    assert_eq!(pool.max_connections, Some(1));
    assert_eq!(pool.connect_timeout, Some(Duration::from_millis(250)));
    let outlier = policy.outlier_detection.as_ref().unwrap();
    assert_eq!(
        outlier.consecutive_5xx_errors,
        Some(2),
        "deprecated name read"
    );
    assert_eq!(outlier.base_ejection_time, Some(Duration::from_secs(180)));
    assert_eq!(
        policy.port_level[&9080]
            .load_balancer
            .as_ref()
            .unwrap()
            .policy,
        LbPolicy::RoundRobin
    );
    assert_eq!(checked.subsets.len(), 2);
    let v2_tls = checked.subsets[1]
        .traffic_policy
        .as_ref()
        .unwrap()
        .tls
        .as_ref()
        .unwrap();
    assert_eq!(v2_tls.mode, TlsMode::Simple);
}

#[test]
fn rejects_with_field_and_reason() {
    let cases = [
        ("{}", "spec.host", "host is required"),
        (
            "host: a\nsubsets:\n- name: v1\n- name: v1\n",
            "spec.subsets[1].name",
            "defined twice",
        ),
        (
            "host: a\ntrafficPolicy: {loadBalancer: {simple: FASTEST}}\n",
            "spec.trafficPolicy.loadBalancer.simple",
            "not one of",
        ),
        (
            "host: a\ntrafficPolicy: {loadBalancer: {consistentHash: {httpHeaderName: x, useSourceIp: true}}}\n",
            "spec.trafficPolicy.loadBalancer.consistentHash",
            "exactly one of",
        ),
        (
            "host: a\ntrafficPolicy: {loadBalancer: {consistentHash: {useSourceIp: true, maglev: {tableSize: 1000}}}}\n",
            "spec.trafficPolicy.loadBalancer.consistentHash.maglev.tableSize",
            "not a prime",
        ),
        (
            "host: a\ntrafficPolicy: {connectionPool: {tcp: {maxConnections: -1}}}\n",
            "spec.trafficPolicy.connectionPool.tcp.maxConnections",
            "negative",
        ),
        (
            "host: a\ntrafficPolicy: {outlierDetection: {maxEjectionPercent: 150}}\n",
            "spec.trafficPolicy.outlierDetection.maxEjectionPercent",
            "not in 0-100",
        ),
        (
            "host: a\ntrafficPolicy: {tls: {mode: MUTUAL}}\n",
            "spec.trafficPolicy.tls",
            "MUTUAL needs",
        ),
        ("host: a\ntrafficPolicy: {}\n", "spec.trafficPolicy", "at least one setting"),
        (
            "host: a\ntrafficPolicy:\n  portLevelSettings:\n  - loadBalancer: {simple: RANDOM}\n",
            "spec.trafficPolicy.portLevelSettings[0].port.number",
            "port number is required",
        ),
    ];
    assert_rejects(&cases, |spec| check(&dr(spec)));
}
