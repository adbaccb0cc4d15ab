//! What a route tells tracing and config dumps: the decorator's operation
//! (`<host>:<port><path>` for one destination, `<vs name>:<port><path>` otherwise) and the
//! `istio` metadata naming the VirtualService the route came from.

use envoy_types::pb::envoy::config::core::v3::Metadata;
use envoy_types::pb::envoy::config::route::v3::{
    route::Action, route_action::ClusterSpecifier, route_match::PathSpecifier, Decorator, Route,
};
use envoy_types::pb::google::protobuf::{value::Kind, Struct, Value};

use crate::mesh::model::ObjectKey;

/// Filter metadata key of Istio's own annotations on resources.
const ISTIO_METADATA: &str = "istio";

/// `/apis/networking.istio.io/v1/namespaces/<ns>/virtual-service/<name>`, istiod's
/// reference to the object a route came from.
pub(super) fn config_metadata(vs: &ObjectKey) -> Metadata {
    let path = format!(
        "/apis/networking.istio.io/v1/namespaces/{}/virtual-service/{}",
        vs.namespace, vs.name
    );
    let config = Struct {
        fields: [(
            "config".to_string(),
            Value {
                kind: Some(Kind::StringValue(path)),
            },
        )]
        .into_iter()
        .collect(),
    };
    Metadata {
        filter_metadata: [(ISTIO_METADATA.to_string(), config)].into_iter().collect(),
        ..Default::default()
    }
}

/// Host and port of an `outbound|<port>|<subset>|<host>` cluster name.
fn cluster_host_port(cluster: &str) -> Option<(&str, &str)> {
    let mut parts = cluster.split('|');
    let (_, port, _, host) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || port.parse::<u16>().is_err() {
        return None;
    }
    Some((host, port))
}

pub(super) fn decorator(route: &Route, vs_name: &str, port: u16) -> Decorator {
    let path = match route
        .r#match
        .as_ref()
        .and_then(|m| m.path_specifier.as_ref())
    {
        Some(PathSpecifier::Prefix(p)) => format!("{p}*"),
        Some(PathSpecifier::Path(p)) => p.clone(),
        Some(PathSpecifier::SafeRegex(r)) => r.regex.clone(),
        _ => "/*".to_string(),
    };
    let single = match &route.action {
        Some(Action::Route(a)) => match &a.cluster_specifier {
            Some(ClusterSpecifier::Cluster(c)) => cluster_host_port(c),
            _ => None,
        },
        _ => None,
    };
    let operation = match single {
        Some((host, p)) => format!("{host}:{p}{path}"),
        None => format!("{vs_name}:{port}{path}"),
    };
    Decorator {
        operation,
        ..Default::default()
    }
}
