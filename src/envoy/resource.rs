//! An xDS resource as served: encoded once when built, in canonical form (`canonical`: map
//! entries sorted, so equal content is equal bytes in every process), versioned by a hash
//! of its bytes, and shared (behind `Arc`) by every stream that receives it. The encoded
//! bytes are `Bytes`, so that `wire` writes them into each response without an owned copy.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use envoy_types::pb::google::protobuf::Any;
use prost::Message;

use super::canonical;

/// Type URLs of the resource kinds meshd serves, in push order.
pub mod type_url {
    pub const CLUSTER: &str = "type.googleapis.com/envoy.config.cluster.v3.Cluster";
    pub const ENDPOINT: &str = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment";
    pub const LISTENER: &str = "type.googleapis.com/envoy.config.listener.v3.Listener";
    pub const ROUTE: &str = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration";
    pub const SECRET: &str = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret";

    /// The order in which a push sends types, so that nothing refers to a resource the
    /// proxy does not have yet.
    pub const PUSH_ORDER: [&str; 5] = [CLUSTER, ENDPOINT, LISTENER, ROUTE, SECRET];

    /// Listeners and clusters are wildcard types: each response is the full set.
    pub fn is_wildcard(type_url: &str) -> bool {
        type_url == CLUSTER || type_url == LISTENER
    }

    /// A short name for logs, metrics and debug views (`clusters`, `endpoints`, ...).
    pub fn short_name(type_url: &str) -> &'static str {
        match type_url {
            CLUSTER => "clusters",
            ENDPOINT => "endpoints",
            LISTENER => "listeners",
            ROUTE => "routes",
            SECRET => "secrets",
            _ => "unknown",
        }
    }
}

/// One encoded resource.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    pub name: String,
    /// Hex of a 64-bit hash of the encoded bytes (and the name): equal content, equal version,
    /// on every replica and every restart.
    pub version: String,
    pub body: EncodedAny,
}

/// A `google.protobuf.Any` whose value is shared bytes: cloning it is a refcount, and the
/// response encoder (`wire`) writes it as the `Any` message it stands for.
#[derive(Debug, Clone, PartialEq)]
pub struct EncodedAny {
    pub type_url: String,
    pub value: Bytes,
}

impl EncodedAny {
    /// The prost `Any` (a copy of the bytes), for code that needs the generated type.
    pub fn to_any(&self) -> Any {
        Any {
            type_url: self.type_url.clone(),
            value: self.value.to_vec(),
        }
    }
}

/// Lets a decoded response's `Any` be compared with the resource that was sent.
impl PartialEq<EncodedAny> for Any {
    fn eq(&self, other: &EncodedAny) -> bool {
        self.type_url == other.type_url && self.value[..] == other.value[..]
    }
}

impl Resource {
    /// Encodes `message` once, in canonical form (map entries sorted by key, see
    /// `canonical`), and versions it by content.
    pub fn encode(name: impl Into<String>, type_url: &str, message: &impl Message) -> Self {
        let value = canonical::encode(type_url, message);
        Self::versioned(name.into(), type_url, value.into())
    }

    /// A resource from bytes already encoded, versioned as `encode` would: bytes that are
    /// not canonical are sorted into a copy first, canonical ones (and bytes that are not
    /// the type's encoding at all) are kept as they are.
    pub fn from_encoded(name: impl Into<String>, type_url: &str, value: impl Into<Bytes>) -> Self {
        let value = canonical::canonical_or_keep(type_url, value.into());
        Self::versioned(name.into(), type_url, value)
    }

    /// A resource from bytes put together from pieces that are each canonical, in field
    /// order (the route configs `translate` assembles per namespace): already canonical, so
    /// they are versioned without being walked again. `from_encoded` for anything else.
    pub fn from_canonical_parts(
        name: impl Into<String>,
        type_url: &str,
        value: impl Into<Bytes>,
    ) -> Self {
        Self::versioned(name.into(), type_url, value.into())
    }

    fn versioned(name: String, type_url: &str, value: Bytes) -> Self {
        let version = content_version(&name, &value);
        Resource {
            name,
            version,
            body: EncodedAny {
                type_url: type_url.to_string(),
                value,
            },
        }
    }

    pub fn type_url(&self) -> &str {
        &self.body.type_url
    }
}

/// The content hash used as a resource version.
pub fn content_version(name: &str, bytes: &[u8]) -> String {
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    hasher.update(name.as_bytes());
    hasher.update(&[0]);
    hasher.update(bytes);
    format!("{:016x}", hasher.digest())
}

/// Resources of one type, by name (sorted, so output is deterministic).
pub type ResourceMap = BTreeMap<String, Arc<Resource>>;

/// Everything one proxy should have, by type URL. Types absent from the map are empty.
#[derive(Debug, Clone, Default)]
pub struct ProxyResources {
    pub by_type: BTreeMap<&'static str, Arc<ResourceMap>>,
}

impl ProxyResources {
    /// The resources of one type (empty when the proxy has none).
    pub fn of_type(&self, type_url: &str) -> Arc<ResourceMap> {
        self.by_type.get(type_url).cloned().unwrap_or_default()
    }

    /// Adds resources of one type, replacing a previous set of that type.
    pub fn set(
        &mut self,
        type_url: &'static str,
        resources: impl IntoIterator<Item = Arc<Resource>>,
    ) {
        let map: ResourceMap = resources.into_iter().map(|r| (r.name.clone(), r)).collect();
        self.by_type.insert(type_url, Arc::new(map));
    }
}

/// A SotW `version_info`: derived from the sorted (name, version) pairs sent.
pub fn set_version<'a>(resources: impl IntoIterator<Item = &'a Resource>) -> String {
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    for r in resources {
        hasher.update(r.name.as_bytes());
        hasher.update(&[0]);
        hasher.update(r.version.as_bytes());
        hasher.update(&[0]);
    }
    format!("{:016x}", hasher.digest())
}
