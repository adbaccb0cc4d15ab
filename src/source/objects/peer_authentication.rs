//! Wire shape of security.istio.io's PeerAuthentication (v1 and v1beta1 share one schema):
//! which mTLS mode a workload's sidecar accepts, for all ports and per port. Values stay
//! loose (modes as strings, port keys as written) so that `mesh::build` can reject a bad
//! object alone, naming the field.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

use super::null_as_default;

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PeerAuthenticationSpec {
    pub selector: Option<MatchLabels>,
    pub mtls: Option<PeerMtls>,
    /// Target port -> mode. YAML writes the keys as numbers, JSON as strings.
    #[serde(deserialize_with = "null_as_default")]
    pub port_level_mtls: BTreeMap<PortKey, PeerMtls>,
}

/// `selector: {matchLabels: {...}}` (Istio's `type.v1beta1.WorkloadSelector`).
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct MatchLabels {
    #[serde(deserialize_with = "null_as_default")]
    pub match_labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PeerMtls {
    /// `UNSET`, `DISABLE`, `PERMISSIVE` or `STRICT`.
    pub mode: Option<String>,
}

/// A map key written as a number or a string; checked as a port in `mesh::build`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct PortKey(pub String);

impl<'de> Deserialize<'de> for PortKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = PortKey;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a port number")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<PortKey, E> {
                Ok(PortKey(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<PortKey, E> {
                Ok(PortKey(v.to_string()))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<PortKey, E> {
                Ok(PortKey(v.to_string()))
            }
        }
        deserializer.deserialize_any(V)
    }
}
