use super::*;
use envoy_types::pb::envoy::config::listener::v3::filter::ConfigType;
use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::{
    tcp_proxy::ClusterSpecifier, TcpProxy,
};
use prost::Message;

use crate::mesh::build::yaml_fixture::build_clean;
use crate::mesh::ProxyType;
use crate::translate::scope::{ScopeIndex, TranslateOptions};

fn model(yaml: &str) -> MeshModel {
    build_clean(yaml).model
}

/// What a sidecar in `namespace` sees.
fn with_scope<T>(model: &MeshModel, namespace: &str, f: impl FnOnce(&Scope) -> T) -> T {
    let options = TranslateOptions::default();
    let index = ScopeIndex::new(model, &options);
    let labels = std::collections::BTreeMap::new();
    f(&Scope {
        model,
        options: &options,
        index: &index,
        namespace,
        proxy_type: ProxyType::Sidecar,
        labels: &labels,
        sidecar: None,
        gateway_keys: &[],
        zone: None,
        identity: false,
    })
}

fn cluster_of(chain: &FilterChain) -> String {
    let Some(ConfigType::TypedConfig(any)) = &chain.filters[0].config_type else {
        panic!("typed config");
    };
    match TcpProxy::decode(&any.value[..]).unwrap().cluster_specifier {
        Some(ClusterSpecifier::Cluster(c)) => c,
        other => panic!("{other:?}"),
    }
}

const ENTRIES: &str = "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: a, namespace: ext}
spec:
  hosts: [a.example.com]
  ports: [{number: 443, name: tls, protocol: TLS}, {number: 5432, name: tcp-pg}]
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: b, namespace: ext}
spec:
  hosts: [b.example.com]
  ports: [{number: 443, name: https, protocol: HTTPS}, {number: 5432, name: tcp-pg}]
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: vip, namespace: ext}
spec:
  hosts: [c.example.com]
  addresses: [240.0.0.3]
  ports: [{number: 443, name: tls, protocol: TLS}]
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: none, namespace: ext}
spec:
  hosts: [d.example.com]
  ports: [{number: 3306, name: tcp-mysql}]
  endpoints: [{address: 10.9.0.1}]
";

#[test]
fn hosts_without_addresses_share_a_port_listener_by_sni_or_whole_port() {
    let model = model(ENTRIES);
    let listeners = with_scope(&model, "ext", |s| listeners_by_name(s, |_| false));
    let names: Vec<&str> = listeners.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["0.0.0.0_443", "0.0.0.0_5432"]);

    let tls = &listeners[0];
    assert_eq!(tls.bind_to_port, Some(BoolValue { value: false }));
    assert_eq!(tls.listener_filters[0].name, TLS_INSPECTOR);
    let sni: Vec<(Vec<String>, String)> = tls
        .filter_chains
        .iter()
        .map(|c| {
            (
                c.filter_chain_match.as_ref().unwrap().server_names.clone(),
                cluster_of(c),
            )
        })
        .collect();
    assert_eq!(
        sni,
        [
            (
                vec!["a.example.com".to_string()],
                "outbound|443||a.example.com".to_string()
            ),
            (
                vec!["b.example.com".to_string()],
                "outbound|443||b.example.com".to_string()
            ),
        ],
        "the host with an address listens on it instead"
    );
    let fallback = tls.default_filter_chain.as_ref().unwrap();
    assert_eq!(fallback.name, naming::PASSTHROUGH_CHAIN);
    assert_eq!(cluster_of(fallback), naming::PASSTHROUGH_CLUSTER);

    let tcp = &listeners[1];
    assert!(tcp.listener_filters.is_empty());
    assert!(tcp.default_filter_chain.is_none());
    assert_eq!(tcp.filter_chains.len(), 1);
    assert_eq!(
        cluster_of(&tcp.filter_chains[0]),
        "outbound|5432||a.example.com",
        "the first entry by key takes the port"
    );
}

#[test]
fn addresses_none_entries_with_endpoints_listen_per_endpoint() {
    let model = model(ENTRIES);
    let svc = model.service_by_hostname("d.example.com").unwrap();
    let TcpAddresses::Exact(ips) = tcp_addresses(&model, svc, 3306) else {
        panic!("by name");
    };
    assert_eq!(ips, ["10.9.0.1"]);
    let vip = model.service_by_hostname("c.example.com").unwrap();
    let TcpAddresses::Exact(ips) = tcp_addresses(&model, vip, 443) else {
        panic!("by name");
    };
    assert_eq!(ips, ["240.0.0.3"]);
    assert!(
        with_scope(&model, "ext", |s| listeners_by_name(s, |p| p == 443
            || p == 5432))
        .is_empty()
    );
}
