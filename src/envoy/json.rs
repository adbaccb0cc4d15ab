//! Envoy's proto3 JSON form of resources (`@type` included), for `meshd translate`,
//! `meshd bootstrap`, the golden files and the admin debug views.

use prost_reflect::{DynamicMessage, SerializeOptions};

use super::descriptors::pool;
use super::resource::{type_url::short_name, ProxyResources, Resource};

#[derive(Debug, thiserror::Error)]
pub enum JsonError {
    #[error("unknown message type {0}")]
    UnknownType(String),
    // The cause is part of the message (and deliberately not a `source`), so it reads
    // well both alone and inside an error chain.
    #[error("decoding {type_name}: {cause}")]
    Decode {
        type_name: String,
        cause: prost::DecodeError,
    },
    #[error("encoding {type_name} as json: {cause}")]
    Encode {
        type_name: String,
        cause: serde_json::Error,
    },
}

/// A resource as Envoy's JSON, with `@type` first.
pub fn resource_to_json(resource: &Resource) -> Result<serde_json::Value, JsonError> {
    any_to_json(&resource.body.type_url, &resource.body.value)
}

/// The resources of the given types, as `{"clusters": [...], "endpoints": [...], ...}`
/// (keys are `type_url::short_name`), each resource with its `@type`.
pub fn resources_to_json(
    resources: &ProxyResources,
    type_urls: &[&str],
) -> Result<serde_json::Map<String, serde_json::Value>, JsonError> {
    let mut out = serde_json::Map::new();
    for url in type_urls {
        let items = resources
            .of_type(url)
            .values()
            .map(|r| resource_to_json(r))
            .collect::<Result<Vec<_>, _>>()?;
        out.insert(short_name(url).into(), serde_json::Value::Array(items));
    }
    Ok(out)
}

/// Encoded message bytes of the given type URL as JSON with `@type`.
pub fn any_to_json(type_url: &str, bytes: &[u8]) -> Result<serde_json::Value, JsonError> {
    let type_name = type_url.rsplit('/').next().unwrap_or(type_url);
    let descriptor = pool()
        .get_message_by_name(type_name)
        .ok_or_else(|| JsonError::UnknownType(type_name.to_string()))?;
    let message = DynamicMessage::decode(descriptor, bytes).map_err(|cause| JsonError::Decode {
        type_name: type_name.to_string(),
        cause,
    })?;
    let options = SerializeOptions::new().skip_default_fields(true);
    let mut serializer = serde_json::Serializer::new(Vec::new());
    message
        .serialize_with_options(&mut serializer, &options)
        .map_err(|cause| JsonError::Encode {
            type_name: type_name.to_string(),
            cause,
        })?;
    let body: serde_json::Value =
        serde_json::from_slice(&serializer.into_inner()).expect("serializer wrote json");
    let mut out = serde_json::Map::new();
    out.insert(
        "@type".into(),
        serde_json::Value::String(type_url.to_string()),
    );
    if let serde_json::Value::Object(fields) = body {
        out.extend(fields);
    }
    Ok(serde_json::Value::Object(out))
}

/// A message of a known type as JSON (without `@type`), for bootstraps and debug views.
pub fn message_to_json(
    type_name: &str,
    message: &impl prost::Message,
) -> Result<serde_json::Value, JsonError> {
    let mut value = any_to_json(
        &format!("type.googleapis.com/{type_name}"),
        &message.encode_to_vec(),
    )?;
    if let serde_json::Value::Object(map) = &mut value {
        map.remove("@type");
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use envoy_types::pb::envoy::config::cluster::v3::Cluster;

    use super::*;
    use crate::envoy::type_url;

    #[test]
    fn renders_a_cluster_with_its_type() {
        let cluster = Cluster {
            name: "outbound|9080||reviews.default.svc.cluster.local".into(),
            ..Default::default()
        };
        let r = Resource::encode(cluster.name.clone(), type_url::CLUSTER, &cluster);
        let json = resource_to_json(&r).unwrap();
        assert_eq!(json["@type"], type_url::CLUSTER);
        assert_eq!(
            json["name"],
            "outbound|9080||reviews.default.svc.cluster.local"
        );
    }
}
