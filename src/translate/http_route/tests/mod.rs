//! Routes built from VirtualServices written as users write them (YAML through the file
//! source and the model builder), checked field by field against istiod's output. Shared
//! helpers here; cases by concern in the submodules.

mod actions;
mod hosts;
mod matching;

use std::collections::BTreeMap;

use envoy_types::pb::envoy::config::core::v3::header_value_option::HeaderAppendAction;
use envoy_types::pb::envoy::config::route::v3::{
    header_matcher::HeaderMatchSpecifier, query_parameter_matcher::QueryParameterMatchSpecifier,
    redirect_action::RedirectResponseCode, route::Action, route_action::ClusterSpecifier,
    route_action::HostRewriteSpecifier, route_match::PathSpecifier, Route, RouteAction,
};
use envoy_types::pb::envoy::extensions::filters::http::cors::v3::CorsPolicy;
use envoy_types::pb::envoy::extensions::filters::http::fault::v3::{fault_abort, HttpFault};
use envoy_types::pb::envoy::r#type::matcher::v3::string_matcher::MatchPattern;
use envoy_types::pb::google::protobuf::{Duration, UInt32Value};
use prost::Message;

use super::*;
use crate::mesh::build::build_model;
use crate::mesh::ObjectKey;
use crate::source::file::load_dir;
use crate::translate::route::DEFAULT_RETRY_ON;

const SERVICES: &str = "
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: default}
spec:
  clusterIP: 10.96.0.20
  selector: {app: reviews}
  ports: [{name: http, port: 9080}, {name: http-admin, port: 9090}]
---
apiVersion: v1
kind: Service
metadata: {name: ratings, namespace: default}
spec:
  clusterIP: 10.96.0.21
  selector: {app: ratings}
  ports: [{name: http, port: 8080}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
  - {name: v3, labels: {version: v3}}
  - {name: v4, labels: {version: v4}}
  - {name: v9, labels: {version: v9}}
  - {name: shadow, labels: {version: shadow}}
";

fn model(yaml: &str) -> MeshModel {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("objects.yaml"),
        format!("{SERVICES}---\n{yaml}"),
    )
    .unwrap();
    let input = load_dir(dir.path()).unwrap();
    assert!(input.problems.is_empty(), "{:?}", input.problems);
    let built = build_model(&input);
    assert!(built.problems.is_empty(), "{:?}", built.problems);
    built.model
}

fn vs_yaml(name: &str, spec: &str) -> String {
    let spec: String = spec.lines().map(|l| format!("  {l}\n")).collect();
    format!(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: {name}, namespace: default}}\nspec:\n{spec}"
    )
}

struct Proxy {
    namespace: &'static str,
    labels: BTreeMap<String, String>,
    gateway: GatewayRef,
}

fn sidecar(labels: &[(&str, &str)]) -> Proxy {
    Proxy {
        namespace: "default",
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        gateway: GatewayRef::Mesh,
    }
}

fn routes_as(proxy: &Proxy, model: &MeshModel, name: &str, port: u16) -> Vec<Route> {
    let ctx = RouteContext {
        model,
        proxy_namespace: proxy.namespace,
        proxy_labels: &proxy.labels,
        gateway: &proxy.gateway,
        hash_policies: &no_hash_policies,
    };
    let vs = &model.virtual_services[&ObjectKey {
        namespace: "default".into(),
        name: name.into(),
    }];
    build_routes(&ctx, vs, port)
}

/// The routes of VirtualService `reviews` (spec given) for a plain sidecar on 9080.
fn routes(spec: &str) -> Vec<Route> {
    let m = model(&vs_yaml("reviews", spec));
    routes_as(&sidecar(&[]), &m, "reviews", 9080)
}

fn action(r: &Route) -> &RouteAction {
    match &r.action {
        Some(Action::Route(a)) => a,
        other => panic!("not a route action: {other:?}"),
    }
}

fn cluster(r: &Route) -> &str {
    match &action(r).cluster_specifier {
        Some(ClusterSpecifier::Cluster(c)) => c,
        other => panic!("not one cluster: {other:?}"),
    }
}

fn per_filter<M: Message + Default>(r: &Route, filter: &str) -> M {
    M::decode(r.typed_per_filter_config[filter].value.as_slice()).unwrap()
}
