//! Debug views: `/debug/config_dump?proxyID=` (what a connected proxy's stream holds, as
//! Envoy JSON) and `/debug/configz` (what the current input holds). `/debug/syncz` is in
//! `syncz`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Json;
use envoy_types::pb::envoy::config::core::v3::{data_source, DataSource};
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{secret, Secret};
use prost::Message;
use serde_json::{json, Map, Value};

use super::AdminState;
use crate::envoy::json::resources_to_json;
use crate::envoy::type_url::{self, short_name};
use crate::envoy::{ProxyResources, Resource};
use crate::mesh::ProxyId;
use crate::xds::status::StreamStatus;

type Failure = (StatusCode, String);

/// What the newest stream of a connected proxy holds: per type, the resources of the
/// generation it holds that the proxy subscribes to (all of a wildcard type), with the
/// versions sent and acked. Secret key material is redacted.
pub async fn config_dump(
    State(state): State<AdminState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>, Failure> {
    let node_id = params.get("proxyID").ok_or((
        StatusCode::BAD_REQUEST,
        "missing query parameter proxyID\n".to_string(),
    ))?;
    ProxyId::parse(node_id).map_err(|e| (StatusCode::BAD_REQUEST, format!("{e}\n")))?;
    let stream = state.xds.proxy(node_id).ok_or_else(|| {
        (
            StatusCode::NOT_FOUND,
            format!(
                "proxy {node_id} has no xDS stream connected to this server: config_dump shows \
                 what a connected proxy's stream holds\n"
            ),
        )
    })?;
    // Decoding and printing a large configuration takes a while: off the async workers,
    // which also run the xDS streams.
    tokio::task::spawn_blocking(move || stream_dump(&stream))
        .await
        .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")))?
        .map(Json)
}

fn stream_dump(stream: &StreamStatus) -> Result<Value, Failure> {
    let view = stream.view();
    let (generation, resources) = stream.resources();
    let mut held = ProxyResources::default();
    let mut versions = Map::new();
    for (url, t) in &view.types {
        versions.insert(
            short_name(url).into(),
            json!({
                "version_sent": t.version_sent,
                "nonce_sent": t.nonce_sent,
                "version_acked": t.version_acked,
                "nonce_acked": t.nonce_acked,
                "nacked": t.nacked,
            }),
        );
        if *url == type_url::SECRET && !stream.secrets_allowed() {
            continue;
        }
        let all = resources.of_type(url);
        let selected: Vec<Arc<Resource>> = if t.wildcard {
            all.values().cloned().collect()
        } else {
            t.names.iter().filter_map(|n| all.get(n).cloned()).collect()
        };
        let selected = if *url == type_url::SECRET {
            selected.iter().map(|r| redact_secret(r)).collect()
        } else {
            selected
        };
        held.set(url, selected);
    }
    let mut out = resources_to_json(&held, &type_url::PUSH_ORDER)
        .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")))?;
    out.insert("generation".into(), json!(generation));
    out.insert("stream".into(), json!(view.stream));
    out.insert("delta".into(), json!(view.delta));
    out.insert("versions".into(), Value::Object(versions));
    Ok(Value::Object(out))
}

/// The secret with its private key (or generic secret values) replaced by `[redacted]`,
/// as istiod's config_dump does; one that does not decode is left out of the values too.
fn redact_secret(resource: &Resource) -> Arc<Resource> {
    let redacted = || {
        Some(DataSource {
            specifier: Some(data_source::Specifier::InlineString("[redacted]".into())),
            ..Default::default()
        })
    };
    let mut secret = Secret::decode(&resource.body.value[..]).unwrap_or_else(|_| Secret {
        name: resource.name.clone(),
        r#type: None,
    });
    match &mut secret.r#type {
        Some(secret::Type::TlsCertificate(c)) => {
            if c.private_key.is_some() {
                c.private_key = redacted();
            }
            if c.pkcs12.is_some() {
                c.pkcs12 = redacted();
            }
        }
        Some(secret::Type::GenericSecret(g)) => {
            if g.secret.is_some() {
                g.secret = redacted();
            }
            for value in g.secrets.values_mut() {
                *value = redacted().unwrap_or_default();
            }
        }
        _ => {}
    }
    Arc::new(Resource::encode(
        resource.name.clone(),
        resource.type_url(),
        &secret,
    ))
}

pub async fn configz(State(state): State<AdminState>) -> Json<Value> {
    let status = state.generator.status();
    let model = state.generator.current().map(|(_, t)| t.model().clone());
    let services: Vec<Value> = model
        .iter()
        .flat_map(|m| m.services.values())
        .map(|s| {
            json!({
                "name": s.key.to_string(),
                "hostname": s.hostname,
                "clusterIP": s.cluster_ip,
                "ports": s.ports.iter().map(|p| json!({"name": p.name, "port": p.port, "protocol": p.protocol.as_str()})).collect::<Vec<_>>(),
            })
        })
        .collect();
    Json(json!({
        "generation": status.generation,
        "problems": status.problem_messages.as_slice(),
        "services": services,
        "istio": model.as_deref().map(istio_objects_in_use),
        "mesh": state.generator.current().map(|(_, t)| mesh_options(t.options())),
    }))
}

/// The mesh-wide options in force (flags, overridden by the mesh config ConfigMap).
fn mesh_options(options: &crate::translate::scope::TranslateOptions) -> Value {
    use crate::mesh::traffic::OutboundPolicy;
    json!({
        "rootNamespace": options.root_namespace,
        "outboundTrafficPolicy": {"mode": match options.outbound_traffic_policy {
            OutboundPolicy::AllowAny => "ALLOW_ANY",
            OutboundPolicy::RegistryOnly => "REGISTRY_ONLY",
        }},
        "enableAutoMtls": options.auto_mtls,
    })
}

/// The Istio objects the current model uses, by kind (namespace/name). Rejected objects
/// are not among them: their reasons are in `problems` (an object whose edit was rejected
/// is listed here with its last valid version, and its problem there).
fn istio_objects_in_use(model: &crate::mesh::MeshModel) -> Value {
    fn keys<V>(map: &std::collections::BTreeMap<crate::mesh::ObjectKey, V>) -> Vec<String> {
        map.keys().map(|k| k.to_string()).collect()
    }
    json!({
        "VirtualService": keys(&model.virtual_services),
        "DestinationRule": keys(&model.destination_rules),
        "ServiceEntry": keys(&model.service_entries),
        "WorkloadEntry": keys(&model.workload_entries),
        "Sidecar": keys(&model.sidecars),
        "Gateway": keys(&model.gateways),
        "AuthorizationPolicy": keys(&model.authorization_policies),
        "RequestAuthentication": keys(&model.request_authentications),
        "PeerAuthentication": keys(&model.peer_authentications),
    })
}
