//! DestinationRules read through the real parser and model builder, turned into clusters.

use std::path::Path;

use envoy_types::pb::envoy::config::cluster::v3::{
    cluster::{ClusterDiscoveryType, DiscoveryType, LbConfig, LbPolicy as EnvoyLb},
    Cluster,
};
use envoy_types::pb::envoy::config::route::v3::route_action::hash_policy::PolicySpecifier;
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    common_tls_context::ValidationContextType, UpstreamTlsContext,
};
use envoy_types::pb::envoy::extensions::upstreams::http::v3::{
    http_protocol_options::{explicit_http_config::ProtocolConfig, UpstreamProtocolOptions},
    HttpProtocolOptions,
};
use envoy_types::pb::google::protobuf::{Duration, UInt32Value};
use prost::Message;

use super::load_balancer::hash_policies_for;
use super::*;
use crate::mesh::build::build_model;
use crate::mesh::traffic::{DestinationRule, LbPolicy};
use crate::mesh::MeshModel;
use crate::source::parse::parse_file;
use crate::source::InputSet;
use crate::translate::subset;

const SERVICE: &str = "
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: shop}
spec:
  clusterIP: 10.96.0.20
  selector: {app: reviews}
  ports:
  - {name: http, port: 9080}
  - {name: grpc, port: 7070}
";

fn pod(name: &str, ip: &str, version: &str) -> String {
    format!(
        "
---
apiVersion: v1
kind: Pod
metadata: {{name: {name}, namespace: shop, labels: {{app: reviews, version: {version}}}}}
spec: {{containers: [{{name: app}}]}}
status: {{podIP: {ip}, phase: Running, conditions: [{{type: Ready, status: 'True'}}]}}
"
    )
}

/// The model of `reviews` (pods of v1 and v2) and one DestinationRule with `spec`.
fn model(spec: &str) -> MeshModel {
    let text = format!(
        "{SERVICE}{}{}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: reviews, namespace: shop}}
spec:
{}",
        pod("reviews-v1", "10.244.0.11", "v1"),
        pod("reviews-v2", "10.244.0.12", "v2"),
        spec.lines().map(|l| format!("  {l}\n")).collect::<String>()
    );
    let parsed = parse_file(Path::new("test.yaml"), &text);
    assert!(parsed.problems.is_empty(), "{:?}", parsed.problems);
    let built = build_model(&InputSet {
        objects: parsed.objects,
        problems: vec![],
    });
    assert!(built.problems.is_empty(), "{:?}", built.problems);
    built.model
}

fn rule(model: &MeshModel) -> &DestinationRule {
    model.destination_rules.values().next().expect("one rule")
}

/// The clusters of the service port `port` under the model's rule, by name.
fn clusters(model: &MeshModel, port: u16) -> Vec<Cluster> {
    let service = model.services.values().next().unwrap();
    let p = service.ports.iter().find(|p| p.port == port).unwrap();
    subset::clusters(
        model,
        &Default::default(),
        false,
        service,
        p,
        Some(rule(model)),
    )
}

fn port_9080(service: &crate::mesh::Service) -> &crate::mesh::ServicePort {
    service.ports.iter().find(|p| p.port == 9080).unwrap()
}

fn cluster<'a>(clusters: &'a [Cluster], name: &str) -> &'a Cluster {
    clusters
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no cluster {name}"))
}

fn options(c: &Cluster) -> Option<HttpProtocolOptions> {
    http_options(c)
}

fn u32v(value: u32) -> Option<UInt32Value> {
    Some(UInt32Value { value })
}

const V1_9080: &str = "outbound|9080|v1|reviews.shop.svc.cluster.local";
const V2_9080: &str = "outbound|9080|v2|reviews.shop.svc.cluster.local";
const ALL_9080: &str = "outbound|9080||reviews.shop.svc.cluster.local";

#[test]
fn subsets_get_clusters_and_only_their_endpoints() {
    let m = model(
        "host: reviews
subsets:
- {name: v1, labels: {version: v1}}
- {name: v2, labels: {version: v2}}",
    );
    let built = clusters(&m, 9080);
    let names: Vec<&str> = built.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, [ALL_9080, V1_9080, V2_9080]);
    let v1 = cluster(&built, V1_9080);
    assert_eq!(
        v1.eds_cluster_config.as_ref().unwrap().service_name,
        V1_9080
    );
    assert_eq!(v1.alt_stat_name, format!("{V1_9080};"));
    // A rule without policies leaves the default cluster as it was.
    let service = m.services.values().next().unwrap();
    assert_eq!(
        cluster(&built, ALL_9080),
        &crate::translate::cluster::outbound_cluster(service, port_9080(service))
    );

    let assignments = subset::load_assignments(&m, service, port_9080(service), Some(rule(&m)));
    let addresses = |name: &str| -> Vec<String> {
        let cla = assignments.iter().find(|a| a.cluster_name == name).unwrap();
        cla.endpoints
            .iter()
            .flat_map(|l| &l.lb_endpoints)
            .map(|e| format!("{:?}", e.host_identifier))
            .collect()
    };
    assert_eq!(addresses(ALL_9080).len(), 2);
    let v1 = addresses(V1_9080);
    assert_eq!(v1.len(), 1);
    assert!(v1[0].contains("10.244.0.11"), "{v1:?}");
    assert!(addresses(V2_9080)[0].contains("10.244.0.12"));
}

#[test]
fn subset_policy_overrides_part_by_part_and_port_level_replaces() {
    let m = model(
        "host: reviews
trafficPolicy:
  loadBalancer: {simple: ROUND_ROBIN}
  connectionPool: {tcp: {maxConnections: 7}}
  portLevelSettings:
  - port: {number: 7070}
    loadBalancer: {simple: RANDOM}
subsets:
- name: v1
  labels: {version: v1}
  trafficPolicy:
    loadBalancer: {simple: LEAST_REQUEST}
- name: v2
  labels: {version: v2}
  trafficPolicy:
    outlierDetection: {consecutive5xxErrors: 3}
    portLevelSettings:
    - port: {number: 9080}
      outlierDetection: {consecutive5xxErrors: 1}",
    );
    let r = rule(&m);
    let v1 = effective_policy(Some(r), Some(&r.subsets[0]), 9080);
    assert_eq!(v1.load_balancer.unwrap().policy, LbPolicy::LeastRequest);
    assert_eq!(v1.connection_pool.unwrap().max_connections, Some(7), "kept");
    // Port-level settings replace the whole top-level policy for that port.
    let on_7070 = effective_policy(Some(r), None, 7070);
    assert_eq!(on_7070.load_balancer.unwrap().policy, LbPolicy::Random);
    assert!(on_7070.connection_pool.is_none());
    // The subset's port-level settings replace every part for their port...
    let v2 = effective_policy(Some(r), Some(&r.subsets[1]), 9080);
    assert!(v2.load_balancer.is_none() && v2.connection_pool.is_none());
    assert_eq!(
        v2.outlier_detection.unwrap().consecutive_5xx_errors,
        Some(1)
    );
    // ... and on other ports the subset's policy merges over the rule's.
    let v2 = effective_policy(Some(r), Some(&r.subsets[1]), 7070);
    assert_eq!(v2.load_balancer.unwrap().policy, LbPolicy::Random);
    assert_eq!(
        v2.outlier_detection.unwrap().consecutive_5xx_errors,
        Some(3)
    );

    let built = clusters(&m, 9080);
    assert_eq!(
        cluster(&built, ALL_9080).lb_policy,
        EnvoyLb::RoundRobin as i32
    );
    assert_eq!(
        cluster(&built, V1_9080).lb_policy,
        EnvoyLb::LeastRequest as i32
    );
    let v2 = cluster(&built, V2_9080);
    assert_eq!(
        v2.outlier_detection.as_ref().unwrap().consecutive_5xx,
        u32v(1)
    );
    assert_eq!(
        v2.circuit_breakers.as_ref().unwrap().thresholds[0].max_connections,
        u32v(u32::MAX),
        "the subset's port-level settings left the pool at its defaults"
    );
}

#[test]
fn connection_pool_sets_breakers_timeouts_and_http_options() {
    let m = model(
        "host: reviews
trafficPolicy:
  connectionPool:
    tcp:
      maxConnections: 1
      connectTimeout: 250ms
      maxConnectionDuration: 1h
      tcpKeepalive: {probes: 3, time: 60s, interval: 5s}
    http:
      http1MaxPendingRequests: 2
      http2MaxRequests: 3
      maxRetries: 4
      maxRequestsPerConnection: 5
      idleTimeout: 30s
      maxConcurrentStreams: 6",
    );
    for port in [9080, 7070] {
        let built = clusters(&m, port);
        let c = &built[0];
        let t = &c.circuit_breakers.as_ref().unwrap().thresholds[0];
        assert_eq!(t.max_connections, u32v(1));
        assert_eq!(t.max_pending_requests, u32v(2));
        assert_eq!(t.max_requests, u32v(3));
        assert_eq!(t.max_retries, u32v(4));
        assert!(t.track_remaining);
        assert_eq!(
            c.connect_timeout,
            Some(Duration {
                seconds: 0,
                nanos: 250_000_000
            })
        );
        let k = c
            .upstream_connection_options
            .as_ref()
            .unwrap()
            .tcp_keepalive
            .as_ref()
            .unwrap();
        assert_eq!(k.keepalive_probes, u32v(3));
        assert_eq!(k.keepalive_time, u32v(60));
        assert_eq!(k.keepalive_interval, u32v(5));
        let o = options(c).unwrap();
        let common = o.common_http_protocol_options.unwrap();
        assert_eq!(
            common.idle_timeout,
            Some(Duration {
                seconds: 30,
                nanos: 0
            })
        );
        assert_eq!(common.max_requests_per_connection, u32v(5));
        assert_eq!(
            common.max_connection_duration,
            Some(Duration {
                seconds: 3600,
                nanos: 0
            })
        );
        // maxConcurrentStreams applies where the cluster speaks HTTP/2 (the grpc port);
        // elsewhere the options name HTTP/1.1, as Envoy requires a protocol.
        let Some(UpstreamProtocolOptions::ExplicitHttpConfig(e)) = o.upstream_protocol_options
        else {
            panic!("explicit protocol expected");
        };
        match e.protocol_config {
            Some(ProtocolConfig::Http2ProtocolOptions(h2)) => {
                assert_eq!(port, 7070);
                assert_eq!(h2.max_concurrent_streams, u32v(6));
            }
            Some(ProtocolConfig::HttpProtocolOptions(_)) => assert_eq!(port, 9080),
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[test]
fn h2_upgrade_and_client_protocol() {
    let m = model(
        "host: reviews
trafficPolicy:
  connectionPool: {http: {h2UpgradePolicy: UPGRADE}}
subsets:
- name: v1
  labels: {version: v1}
  trafficPolicy:
    connectionPool: {http: {useClientProtocol: true, h2UpgradePolicy: UPGRADE}}",
    );
    let built = clusters(&m, 9080);
    let upgraded = options(cluster(&built, ALL_9080)).unwrap();
    assert!(matches!(
        upgraded.upstream_protocol_options,
        Some(UpstreamProtocolOptions::ExplicitHttpConfig(_))
    ));
    let v1 = options(cluster(&built, V1_9080)).unwrap();
    let Some(UpstreamProtocolOptions::UseDownstreamProtocolConfig(d)) =
        v1.upstream_protocol_options
    else {
        panic!("downstream protocol expected");
    };
    assert!(d.http_protocol_options.is_some() && d.http2_protocol_options.is_some());
}

#[test]
fn outlier_detection_maps_as_istiod() {
    let m = model(
        "host: reviews
trafficPolicy:
  outlierDetection:
    consecutive5xxErrors: 2
    consecutiveGatewayErrors: 0
    interval: 1s
    baseEjectionTime: 30s
    maxEjectionPercent: 50
    splitExternalLocalOriginErrors: true
    consecutiveLocalOriginFailures: 4",
    );
    let c = &clusters(&m, 9080)[0];
    let o = c.outlier_detection.as_ref().unwrap();
    assert_eq!(o.enforcing_success_rate, u32v(0));
    assert_eq!(o.consecutive_5xx, u32v(2));
    assert_eq!(o.enforcing_consecutive_5xx, u32v(100));
    assert_eq!(o.consecutive_gateway_failure, u32v(0));
    assert_eq!(o.enforcing_consecutive_gateway_failure, u32v(0));
    assert_eq!(
        o.interval,
        Some(Duration {
            seconds: 1,
            nanos: 0
        })
    );
    assert_eq!(
        o.base_ejection_time,
        Some(Duration {
            seconds: 30,
            nanos: 0
        })
    );
    assert_eq!(o.max_ejection_percent, u32v(50));
    assert!(o.split_external_local_origin_errors);
    assert_eq!(o.consecutive_local_origin_failure, u32v(4));
    assert_eq!(o.enforcing_consecutive_local_origin_failure, u32v(100));
    assert_eq!(o.enforcing_local_origin_success_rate, u32v(0));
    let panic = c
        .common_lb_config
        .as_ref()
        .unwrap()
        .healthy_panic_threshold
        .as_ref();
    assert_eq!(panic.unwrap().value, 0.0, "panic mode off unless asked");
}

#[test]
fn load_balancers() {
    let m = model(
        "host: reviews
trafficPolicy:
  loadBalancer: {simple: ROUND_ROBIN, warmupDurationSecs: 10s}
subsets:
- {name: random, labels: {version: v1}, trafficPolicy: {loadBalancer: {simple: RANDOM}}}
- {name: pass, labels: {version: v1}, trafficPolicy: {loadBalancer: {simple: PASSTHROUGH}}}
- {name: ring, labels: {version: v1}, trafficPolicy: {loadBalancer: {consistentHash: {useSourceIp: true}}}}
- name: maglev
  labels: {version: v1}
  trafficPolicy: {loadBalancer: {consistentHash: {httpHeaderName: x-user, maglev: {tableSize: 65537}}}}",
    );
    let built = clusters(&m, 9080);
    let name = |s: &str| format!("outbound|9080|{s}|reviews.shop.svc.cluster.local");
    let all = cluster(&built, ALL_9080);
    assert_eq!(all.lb_policy, EnvoyLb::RoundRobin as i32);
    let Some(LbConfig::RoundRobinLbConfig(rr)) = &all.lb_config else {
        panic!("slow start expected");
    };
    assert_eq!(
        rr.slow_start_config.as_ref().unwrap().slow_start_window,
        Some(Duration {
            seconds: 10,
            nanos: 0
        })
    );
    assert_eq!(
        cluster(&built, &name("random")).lb_policy,
        EnvoyLb::Random as i32
    );
    let pass = cluster(&built, &name("pass"));
    assert_eq!(pass.lb_policy, EnvoyLb::ClusterProvided as i32);
    assert_eq!(
        pass.cluster_discovery_type,
        Some(ClusterDiscoveryType::Type(
            DiscoveryType::OriginalDst as i32
        ))
    );
    assert!(pass.eds_cluster_config.is_none());
    let ring = cluster(&built, &name("ring"));
    assert_eq!(ring.lb_policy, EnvoyLb::RingHash as i32);
    let Some(LbConfig::RingHashLbConfig(r)) = &ring.lb_config else {
        panic!("ring config expected");
    };
    assert_eq!(r.minimum_ring_size.as_ref().unwrap().value, 1024);
    let maglev = cluster(&built, &name("maglev"));
    assert_eq!(maglev.lb_policy, EnvoyLb::Maglev as i32);
    assert!(
        matches!(&maglev.lb_config, Some(LbConfig::MaglevLbConfig(c)) if c.table_size.as_ref().unwrap().value == 65537)
    );

    // PASSTHROUGH subsets have no endpoints to send.
    let service = m.services.values().next().unwrap();
    let cla = subset::load_assignments(&m, service, port_9080(service), Some(rule(&m)));
    assert!(cla.iter().all(|a| a.cluster_name != name("pass")));
    assert_eq!(cla.len(), 4);
}

#[test]
fn hash_policies_follow_istiods_precedence() {
    let m = model(
        "host: reviews
trafficPolicy:
  loadBalancer: {consistentHash: {httpCookie: {name: user, path: /, ttl: 60s}}}
  portLevelSettings:
  - port: {number: 7070}
    loadBalancer: {consistentHash: {httpQueryParameterName: q}}
subsets:
- name: v1
  labels: {version: v1}
  trafficPolicy:
    loadBalancer: {consistentHash: {httpHeaderName: X-User}}
- name: v2
  labels: {version: v2}
  trafficPolicy:
    loadBalancer: {simple: ROUND_ROBIN}",
    );
    let r = rule(&m);
    let specifier = |subset: &str, port: u16| {
        let mut p = hash_policies_for(r, subset, port);
        assert!(p.len() <= 1);
        p.pop().and_then(|p| p.policy_specifier)
    };
    let Some(PolicySpecifier::Cookie(cookie)) = specifier("", 9080) else {
        panic!("cookie expected");
    };
    assert_eq!((cookie.name.as_str(), cookie.path.as_str()), ("user", "/"));
    assert_eq!(
        cookie.ttl,
        Some(Duration {
            seconds: 60,
            nanos: 0
        })
    );
    assert!(
        matches!(specifier("", 7070), Some(PolicySpecifier::QueryParameter(q)) if q.name == "q")
    );
    assert!(
        matches!(specifier("v1", 7070), Some(PolicySpecifier::Header(h)) if h.header_name == "x-user")
    );
    // A subset without a hash keeps the rule's.
    assert!(matches!(
        specifier("v2", 9080),
        Some(PolicySpecifier::Cookie(_))
    ));
}

fn tls_context(c: &Cluster) -> Option<UpstreamTlsContext> {
    let socket = c.transport_socket.as_ref()?;
    assert_eq!(socket.name, tls::TLS_TRANSPORT_SOCKET);
    let Some(envoy_types::pb::envoy::config::core::v3::transport_socket::ConfigType::TypedConfig(
        any,
    )) = &socket.config_type
    else {
        panic!("typed config expected");
    };
    Some(UpstreamTlsContext::decode(&any.value[..]).unwrap())
}

#[test]
fn client_tls_modes() {
    let m = model(
        "host: reviews
trafficPolicy:
  tls: {mode: SIMPLE}
subsets:
- {name: off, labels: {version: v1}, trafficPolicy: {tls: {mode: DISABLE}}}
- {name: mesh, labels: {version: v1}, trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}}
- {name: secret, labels: {version: v1}, trafficPolicy: {tls: {mode: SIMPLE, credentialName: ext}}}
- name: mutual
  labels: {version: v1}
  trafficPolicy:
    tls:
      mode: MUTUAL
      clientCertificate: /etc/certs/client.pem
      privateKey: /etc/certs/key.pem
      caCertificates: /etc/certs/ca.pem
      subjectAltNames: [reviews.example.com, 'spiffe://example.com/ns/shop/sa/reviews']
      sni: reviews.example.com",
    );
    for port in [9080, 7070] {
        let built = clusters(&m, port);
        let name = |s: &str| format!("outbound|{port}|{s}|reviews.shop.svc.cluster.local");
        let simple = tls_context(&built[0]).expect("SIMPLE has TLS");
        let common = simple.common_tls_context.as_ref().unwrap();
        let Some(ValidationContextType::ValidationContext(v)) = &common.validation_context_type
        else {
            panic!("validation expected");
        };
        assert_eq!(
            format!("{:?}", v.trusted_ca)
                .matches(tls::SYSTEM_CA_BUNDLE)
                .count(),
            1
        );
        assert!(simple.sni.is_empty());
        let upstream = options(&built[0])
            .unwrap()
            .upstream_http_protocol_options
            .unwrap();
        assert!(upstream.auto_sni && upstream.auto_san_validation);
        let h2 = port == 7070;
        assert_eq!(
            common.alpn_protocols,
            if h2 { vec!["h2".to_string()] } else { vec![] }
        );
        for plaintext in ["off", "mesh", "secret"] {
            assert!(
                cluster(&built, &name(plaintext)).transport_socket.is_none(),
                "{plaintext}"
            );
        }
        let mutual = cluster(&built, &name("mutual"));
        let ctx = tls_context(mutual).unwrap();
        assert_eq!(ctx.sni, "reviews.example.com");
        let common = ctx.common_tls_context.unwrap();
        assert_eq!(common.tls_certificates.len(), 1);
        let text = format!("{common:?}");
        for path in [
            "/etc/certs/client.pem",
            "/etc/certs/key.pem",
            "/etc/certs/ca.pem",
        ] {
            assert!(text.contains(path), "{path}");
        }
        let Some(ValidationContextType::ValidationContext(v)) = common.validation_context_type
        else {
            panic!("validation expected");
        };
        assert_eq!(v.match_typed_subject_alt_names.len(), 2);
        // SNI and SANs given: nothing to take from the request.
        assert!(options(mutual)
            .and_then(|o| o.upstream_http_protocol_options)
            .is_none());
    }
}

#[test]
fn tcp_proxy_gets_timeouts_and_source_ip_hashing() {
    use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::TcpProxy;
    let m = model(
        "host: reviews
trafficPolicy:
  loadBalancer: {consistentHash: {useSourceIp: true}}
  connectionPool: {tcp: {idleTimeout: 10m, maxConnectionDuration: 1h}}
subsets:
- {name: v1, labels: {version: v1}, trafficPolicy: {loadBalancer: {simple: RANDOM}}}
- {name: v2, labels: {version: v2}}",
    );
    let r = rule(&m);
    let with = |subset: &str| {
        let mut t = TcpProxy::default();
        super::tcp_proxy::apply(&mut t, r, subset);
        t
    };
    let all = with("");
    assert_eq!(
        all.idle_timeout,
        Some(Duration {
            seconds: 600,
            nanos: 0
        })
    );
    assert_eq!(
        all.max_downstream_connection_duration,
        Some(Duration {
            seconds: 3600,
            nanos: 0
        })
    );
    assert_eq!(all.hash_policy.len(), 1);
    assert!(
        with("v1").hash_policy.is_empty(),
        "the subset balances otherwise"
    );
    assert_eq!(
        with("v2").hash_policy.len(),
        1,
        "the subset keeps the rule's"
    );
}
