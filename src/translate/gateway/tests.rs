//! The gateway pieces on testdata/traffic/gateway (the golden case's input).

use std::path::Path;
use std::sync::Arc;

use envoy_types::pb::envoy::config::listener::v3::Listener;
use envoy_types::pb::envoy::config::route::v3::{virtual_host::TlsRequirementType, Route};
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::secret;

use super::listeners::gateway_listeners;
use super::merge::{merge, ListenerKind};
use super::routes::gateway_route_configs;
use super::secrets::gateway_secrets;
use super::select::listen_port;
use crate::mesh::build::build_model;
use crate::mesh::traffic::{GatewayRef, VirtualService};
use crate::mesh::{MeshModel, ObjectKey, ProxyId};
use crate::source::file::load_dir;
use crate::translate::scope::Scope;
use crate::translate::Translator;

fn model() -> MeshModel {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/traffic/gateway");
    let built = build_model(&load_dir(&dir).unwrap());
    assert!(built.problems.is_empty(), "{:?}", built.problems);
    built.model
}

/// The router of testdata/traffic/gateway, whose Pod the model knows.
const ROUTER: &str =
    "router~10.244.0.50~istio-ingressgateway-7d4f.istio-system~istio-system.svc.cluster.local";

/// Runs `f` with the scope of the router `node_id` (labels from its metadata when given).
fn with_scope<R>(
    model: MeshModel,
    node_id: &str,
    labels: &[(&str, &str)],
    f: impl FnOnce(&Scope) -> R,
) -> R {
    let translator = Translator::new(Arc::new(model));
    let mut proxy = ProxyId::parse(node_id).unwrap();
    for (k, v) in labels {
        proxy.metadata.insert(format!("LABELS.{k}"), v.to_string());
    }
    let (key, labels) = translator.scope_key(&proxy);
    f(&translator.scope(&key, &labels))
}

/// The gateway workload's target ports.
fn resolved(model: &MeshModel) -> impl Fn(u16) -> u16 + '_ {
    let workload = &model.workloads[&ObjectKey {
        namespace: "istio-system".into(),
        name: "istio-ingressgateway-7d4f".into(),
    }];
    move |p| listen_port(model, Some(workload), p)
}

/// Stands in for the VirtualService route builder: one route named after the VS.
fn named_route(vs: &VirtualService, port: u16, gateway: &GatewayRef) -> Vec<Route> {
    assert!(matches!(gateway, GatewayRef::Gateway(k) if k.name == "shop-gateway"));
    vec![Route {
        name: format!("{}:{port}", vs.key.name),
        ..Default::default()
    }]
}

fn gateway_names(scope: &Scope) -> Vec<String> {
    scope.gateways().map(|g| g.key.name.clone()).collect()
}

#[test]
fn pod_or_metadata_labels_pick_gateways() {
    // The Pod's labels.
    assert_eq!(
        with_scope(model(), ROUTER, &[], gateway_names),
        ["shop-gateway"]
    );
    // No Pod: node metadata labels.
    let elsewhere = "router~10.244.9.9~gw-1.istio-system~istio-system.svc.cluster.local";
    assert_eq!(
        with_scope(
            model(),
            elsewhere,
            &[("istio", "egressgateway")],
            gateway_names
        ),
        ["egress"]
    );
    assert!(with_scope(model(), elsewhere, &[], gateway_names).is_empty());
}

#[test]
fn servers_merge_onto_target_ports() {
    let model = model();
    let ports = resolved(&model);
    with_scope(model.clone(), ROUTER, &[], |scope| {
        let merged = merge(scope, &ports);
        let layout: Vec<(u16, ListenerKind, usize)> = merged
            .listeners
            .values()
            .map(|l| (l.port, l.kind, l.servers.len()))
            .collect();
        // 80 -> 8080 and 443 -> 8443 through the gateway's Service; the others as written.
        assert_eq!(
            layout,
            [
                (8080, ListenerKind::Http, 2),
                (8443, ListenerKind::Tls, 2),
                (15443, ListenerKind::Tls, 1),
                (31400, ListenerKind::Tcp, 1)
            ]
        );
        let routes: Vec<&str> = merged.servers_by_route().into_keys().collect();
        assert_eq!(
            routes,
            [
                "http.8080",
                "https.443.https-secure.shop-gateway.istio-system",
                "https.443.https.shop-gateway.istio-system"
            ]
        );
        assert!(merged.skipped.is_empty(), "{:?}", merged.skipped);
        // Without the workload, ports stay as written.
        let bare = merge(scope, |p| p);
        assert!(bare.listeners.values().any(|l| l.port == 80));
    });
}

fn listener<'a>(listeners: &'a [Listener], name: &str) -> &'a Listener {
    listeners
        .iter()
        .find(|l| l.name == name)
        .unwrap_or_else(|| panic!("no listener {name}"))
}

#[test]
fn listeners_bind_and_match_sni() {
    let model = model();
    let ports = resolved(&model);
    with_scope(model.clone(), ROUTER, &[], |scope| {
        let merged = merge(scope, &ports);
        let listeners = gateway_listeners(scope, &merged);
        let names: Vec<&str> = listeners.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "0.0.0.0_15443",
                "0.0.0.0_31400",
                "0.0.0.0_8080",
                "0.0.0.0_8443"
            ]
        );
        let http = listener(&listeners, "0.0.0.0_8080");
        assert!(http.listener_filters.is_empty());
        assert_eq!(http.filter_chains.len(), 1);
        let https = listener(&listeners, "0.0.0.0_8443");
        assert_eq!(
            https.listener_filters[0].name,
            super::listeners::TLS_INSPECTOR
        );
        let snis: Vec<Vec<String>> = https
            .filter_chains
            .iter()
            .map(|c| c.filter_chain_match.clone().unwrap().server_names)
            .collect();
        assert_eq!(
            snis,
            [
                vec!["api.example.com".to_string(), "www.example.com".to_string()],
                vec!["secure.example.com".to_string()]
            ]
        );
        assert!(https
            .filter_chains
            .iter()
            .all(|c| c.transport_socket.is_some()));
        let passthrough = listener(&listeners, "0.0.0.0_15443");
        assert_eq!(
            passthrough.filter_chains[0]
                .filter_chain_match
                .clone()
                .unwrap()
                .server_names,
            ["db.passthrough.example.com"]
        );
        assert!(passthrough.filter_chains[0].transport_socket.is_none());
        assert_eq!(listener(&listeners, "0.0.0.0_31400").filter_chains.len(), 1);
    });
}

#[test]
fn route_configs_hold_the_bound_virtual_services() {
    let model = model();
    let ports = resolved(&model);
    with_scope(model.clone(), ROUTER, &[], |scope| {
        let merged = merge(scope, &ports);
        let configs = gateway_route_configs(scope, &merged, &named_route);
        let http = configs.iter().find(|c| c.name == "http.8080").unwrap();
        let hosts: Vec<(&str, Vec<&str>, i32)> = http
            .virtual_hosts
            .iter()
            .map(|v| {
                (
                    v.name.as_str(),
                    v.routes.iter().map(|r| r.name.as_str()).collect(),
                    v.require_tls,
                )
            })
            .collect();
        assert_eq!(
            hosts,
            [
                ("api.example.com:80", vec!["api:80"], 0),
                (
                    "secure.example.com:80",
                    vec!["secure:80"],
                    TlsRequirementType::All as i32
                ),
                ("www.example.com:80", vec!["www:80"], 0),
            ]
        );
        let https = configs
            .iter()
            .find(|c| c.name == "https.443.https.shop-gateway.istio-system")
            .unwrap();
        let names: Vec<&str> = https
            .virtual_hosts
            .iter()
            .map(|v| v.name.as_str())
            .collect();
        assert_eq!(names, ["api.example.com:443", "www.example.com:443"]);
        assert!(configs.iter().all(|c| c.ignore_port_in_host_matching));
    });
}

#[test]
fn unbound_config_answers_404() {
    let mut model = model();
    model.virtual_services.clear();
    with_scope(model, ROUTER, &[], |scope| {
        let merged = merge(scope, |p| p);
        let configs = gateway_route_configs(scope, &merged, &named_route);
        let http = configs.iter().find(|c| c.name == "http.80").unwrap();
        // The redirect host stays; nothing else is bound.
        assert_eq!(http.virtual_hosts.len(), 1);
        let https = configs
            .iter()
            .find(|c| c.name == "https.443.https.shop-gateway.istio-system")
            .unwrap();
        assert_eq!(https.virtual_hosts[0].name, "blackhole:443");
        assert_eq!(https.virtual_hosts[0].domains, ["*"]);
        assert!(https.virtual_hosts[0].routes.is_empty());
        // TCP and passthrough servers without routes get no listener.
        let listeners = gateway_listeners(scope, &merged);
        let names: Vec<&str> = listeners.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["0.0.0.0_443", "0.0.0.0_80"]);
    });
}

#[test]
fn secrets_for_the_proxys_own_namespace() {
    let secrets = with_scope(model(), ROUTER, &[], |scope| {
        gateway_secrets(scope, &merge(scope, |p| p))
    });
    let names: Vec<&str> = secrets.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "kubernetes://secure-cert",
            "kubernetes://secure-cert-cacert",
            "kubernetes://www-cert"
        ]
    );
    let Some(secret::Type::TlsCertificate(cert)) = &secrets[2].r#type else {
        panic!("expected a certificate");
    };
    assert!(cert.private_key.is_some() && cert.certificate_chain.is_some());
    assert!(matches!(
        secrets[1].r#type,
        Some(secret::Type::ValidationContext(_))
    ));
    // A router in another namespace gets none of them (istiod's same-namespace rule).
    let shop_router = "router~10.244.9.9~gw-1.shop~shop.svc.cluster.local";
    let labels = [("istio", "ingressgateway")];
    assert!(with_scope(model(), shop_router, &labels, |scope| {
        gateway_secrets(scope, &merge(scope, |p| p))
    })
    .is_empty());
}

#[test]
fn a_router_gets_gateway_listeners_and_secrets_only_when_allowed() {
    use crate::envoy::type_url;
    use crate::translate::scope::TranslateOptions;
    let model = Arc::new(model());
    let proxy = ProxyId::parse(ROUTER).unwrap();
    let plain = Translator::new(model.clone()).proxy_resources(&proxy);
    let listeners: Vec<String> = plain.of_type(type_url::LISTENER).keys().cloned().collect();
    assert_eq!(
        listeners,
        [
            "0.0.0.0_15443",
            "0.0.0.0_31400",
            "0.0.0.0_8080",
            "0.0.0.0_8443"
        ]
    );
    let routes: Vec<String> = plain.of_type(type_url::ROUTE).keys().cloned().collect();
    assert_eq!(
        routes,
        [
            "http.8080",
            "https.443.https-secure.shop-gateway.istio-system",
            "https.443.https.shop-gateway.istio-system"
        ]
    );
    let clusters = plain.of_type(type_url::CLUSTER);
    assert!(clusters.contains_key("outbound|8000||web.shop.svc.cluster.local"));
    assert!(!clusters.keys().any(|c| c.starts_with("inbound|")));
    assert!(plain.of_type(type_url::SECRET).is_empty());

    let options = TranslateOptions {
        serve_gateway_secrets: true,
        ..Default::default()
    };
    let allowed = Translator::with_options(model, Arc::new(options)).proxy_resources(&proxy);
    assert_eq!(allowed.of_type(type_url::SECRET).len(), 3);
}
