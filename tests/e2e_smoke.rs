//! Proves the e2e harness itself with hand-written static Envoy configs, independent of
//! meshd: app -> iptables -> Envoy(15001) -> Envoy(15006) -> app, for HTTP and TCP.

#[path = "e2e/mod.rs"]
mod harness;

use harness::envoy;
use harness::netns::Lab;
use harness::pod::Pod;
use harness::traffic;

const VIP: &str = "10.96.0.10";
const FQDN: &str = "echo.demo.svc.cluster.local";

#[test]
fn static_sidecars_capture_http_and_tcp() {
    let _guard = harness::lock();
    let mut lab = Lab::new();
    let mut server = Pod::new(&mut lab, "echo-1", "demo");
    let mut client = Pod::new(&mut lab, "client", "demo");
    server.start_app(&lab, &[9080], &[9000]);
    client.start_app(&lab, &[9080], &[]);
    let config = static_bootstrap(&[server.ip.as_str()]);
    server.start_envoy(&lab, &config);
    client.start_envoy(&lab, &config);

    let tally = traffic::http_requests(&lab, &client.ns, &format!("{VIP}:9080"), FQDN, 10);
    assert!(
        tally.failures.is_empty() && tally.by_pod.get("echo-1") == Some(&10),
        "{tally:?}\n{}{}",
        client.logs(),
        server.logs()
    );
    let outbound = envoy::stat(
        &client.ns,
        &format!("cluster.outbound|9080||{FQDN}.upstream_rq_total"),
    );
    // The static routes have no retry policy: each request went upstream once.
    assert_eq!(outbound, Some(10), "client outbound rq");
    let inbound = envoy::stat(&server.ns, "cluster.inbound|9080||.upstream_rq_total");
    assert_eq!(inbound, Some(10), "server inbound rq");

    let reply = traffic::tcp_line(&lab, &client.ns, &format!("{VIP}:9000"), "hello");
    assert_eq!(reply.as_deref(), Ok("echo-1: hello"));
    let tcp = envoy::stat(
        &client.ns,
        &format!("cluster.outbound|9000||{FQDN}.upstream_cx_total"),
    );
    assert_eq!(tcp, Some(1), "client outbound tcp cx");
    let tcp_in = envoy::stat(&server.ns, "cluster.inbound|9000||.upstream_cx_total");
    assert_eq!(tcp_in, Some(1), "server inbound tcp cx");

    // Without a sidecar nothing answers on the ClusterIP: the capture did the work.
    client.envoy.take();
    let direct = traffic::http_requests(&lab, &client.ns, &format!("{VIP}:9080"), FQDN, 1);
    assert_eq!(direct.ok(), 0, "request without sidecar: {direct:?}");
}

/// One config for both sides: the outbound half serves the client, the inbound half the
/// server, laid out with Istio's listener and cluster names.
fn static_bootstrap(endpoints: &[&str]) -> String {
    let lb = |port: u16| {
        endpoints
            .iter()
            .map(|ip| {
                format!(
                    "{{endpoint: {{address: {{socket_address: {{address: {ip}, port_value: {port}}}}}}}}}"
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let (http_lb, tcp_lb) = (lb(9080), lb(9000));
    format!(
        r#"
admin:
  address: {{socket_address: {{address: 127.0.0.1, port_value: 15000}}}}
static_resources:
  listeners:
  - name: virtualOutbound
    address: {{socket_address: {{address: 0.0.0.0, port_value: 15001}}}}
    use_original_dst: true
    filter_chains:
    - filters:
      - name: envoy.filters.network.tcp_proxy
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
          stat_prefix: PassthroughCluster
          cluster: PassthroughCluster
  - name: 0.0.0.0_9080
    address: {{socket_address: {{address: 0.0.0.0, port_value: 9080}}}}
    bind_to_port: false
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: outbound_0.0.0.0_9080
          route_config:
            name: "9080"
            virtual_hosts:
            - name: {FQDN}:9080
              domains: ["*"]
              routes: [{{match: {{prefix: /}}, route: {{cluster: "outbound|9080||{FQDN}"}}}}]
          http_filters:
          - name: envoy.filters.http.router
            typed_config: {{"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}}
  - name: {VIP}_9000
    address: {{socket_address: {{address: {VIP}, port_value: 9000}}}}
    bind_to_port: false
    filter_chains:
    - filters:
      - name: envoy.filters.network.tcp_proxy
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
          stat_prefix: outbound|9000||{FQDN}
          cluster: outbound|9000||{FQDN}
  - name: virtualInbound
    address: {{socket_address: {{address: 0.0.0.0, port_value: 15006}}}}
    listener_filters:
    - name: envoy.filters.listener.original_dst
      typed_config: {{"@type": type.googleapis.com/envoy.extensions.filters.listener.original_dst.v3.OriginalDst}}
    filter_chains:
    - filter_chain_match: {{destination_port: 9080}}
      filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: inbound_0.0.0.0_9080
          route_config:
            name: inbound|9080||
            virtual_hosts:
            - name: inbound|http|9080
              domains: ["*"]
              routes: [{{match: {{prefix: /}}, route: {{cluster: "inbound|9080||"}}}}]
          http_filters:
          - name: envoy.filters.http.router
            typed_config: {{"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}}
    - filter_chain_match: {{destination_port: 9000}}
      filters:
      - name: envoy.filters.network.tcp_proxy
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
          stat_prefix: inbound|9000||
          cluster: inbound|9000||
  clusters:
  - name: PassthroughCluster
    type: ORIGINAL_DST
    lb_policy: CLUSTER_PROVIDED
    connect_timeout: 1s
  - name: outbound|9080||{FQDN}
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: outbound|9080||{FQDN}
      endpoints: [{{lb_endpoints: [{http_lb}]}}]
  - name: outbound|9000||{FQDN}
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: outbound|9000||{FQDN}
      endpoints: [{{lb_endpoints: [{tcp_lb}]}}]
  - name: inbound|9080||
    type: ORIGINAL_DST
    lb_policy: CLUSTER_PROVIDED
    connect_timeout: 1s
    upstream_bind_config: {{source_address: {{address: 127.0.0.6, port_value: 0}}}}
  - name: inbound|9000||
    type: ORIGINAL_DST
    lb_policy: CLUSTER_PROVIDED
    connect_timeout: 1s
    upstream_bind_config: {{source_address: {{address: 127.0.0.6, port_value: 0}}}}
"#
    )
}
