//! Debug views: `/debug/syncz` (per proxy and type: sent, acked, rejected),
//! `/debug/config_dump?proxyID=` (what a proxy would receive now, as Envoy JSON) and
//! `/debug/configz` (what the current input holds).

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use super::AdminState;
use crate::envoy::json::resources_to_json;
use crate::envoy::type_url;
use crate::mesh::ProxyId;

pub async fn syncz(State(state): State<AdminState>) -> Json<Value> {
    Json(state.xds.syncz_json())
}

pub async fn config_dump(
    State(state): State<AdminState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>, (StatusCode, String)> {
    let node_id = params.get("proxyID").ok_or((
        StatusCode::BAD_REQUEST,
        "missing query parameter proxyID\n".to_string(),
    ))?;
    let proxy = ProxyId::parse(node_id).map_err(|e| (StatusCode::BAD_REQUEST, format!("{e}\n")))?;
    let (generation, translator) = state.generator.current().ok_or((
        StatusCode::SERVICE_UNAVAILABLE,
        "configuration not loaded yet\n".to_string(),
    ))?;
    let resources = translator.proxy_resources(&proxy);
    let mut out = resources_to_json(&resources, &type_url::PUSH_ORDER)
        .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")))?;
    out.insert("generation".into(), json!(generation));
    Ok(Json(Value::Object(out)))
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
    }))
}
