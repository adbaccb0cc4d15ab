//! Wire shapes of the Kubernetes kinds meshd reads, as `kubectl get -o yaml` prints them.
//! Only the fields meshd uses are declared; every other field is ignored. Values are kept as
//! loose as the wire allows (ports as `i64`, optional everything) so that range and presence
//! checks happen in `mesh::build`, where a bad object is rejected alone with a clear reason.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

use crate::problem::ObjectRef;

mod core;
pub mod networking;
mod peer_authentication;
mod secret;
pub mod security;

pub use self::core::*;
pub use self::peer_authentication::*;
pub use self::secret::Secret;

/// Declares `KubeObject` with one variant per kind, and the accessors every variant shares.
macro_rules! kube_objects {
    ($($variant:ident($ty:ty)),* $(,)?) => {
        /// A typed Kubernetes object. Kept behind an `Arc` once parsed, so variant sizes
        /// differing matters little.
        #[derive(Debug, Clone, PartialEq)]
        #[allow(clippy::large_enum_variant)]
        pub enum KubeObject {
            $($variant($ty),)*
        }

        impl KubeObject {
            pub fn kind(&self) -> &'static str {
                match self {
                    $(KubeObject::$variant(_) => stringify!($variant),)*
                }
            }

            pub fn metadata(&self) -> &ObjectMeta {
                match self {
                    $(KubeObject::$variant(o) => &o.metadata,)*
                }
            }

            pub fn metadata_mut(&mut self) -> &mut ObjectMeta {
                match self {
                    $(KubeObject::$variant(o) => &mut o.metadata,)*
                }
            }
        }
    };
}

kube_objects! {
    Namespace(Namespace),
    Service(Service),
    EndpointSlice(EndpointSlice),
    Pod(Pod),
    Secret(Secret),
    VirtualService(networking::IstioObject<networking::VirtualServiceSpec>),
    DestinationRule(networking::IstioObject<networking::DestinationRuleSpec>),
    ServiceEntry(networking::IstioObject<networking::ServiceEntrySpec>),
    WorkloadEntry(networking::IstioObject<networking::WorkloadEntrySpec>),
    Sidecar(networking::IstioObject<networking::SidecarSpec>),
    Gateway(networking::IstioObject<networking::GatewaySpec>),
    AuthorizationPolicy(networking::IstioObject<security::AuthorizationPolicySpec>),
    RequestAuthentication(networking::IstioObject<security::RequestAuthenticationSpec>),
    PeerAuthentication(networking::IstioObject<PeerAuthenticationSpec>),
}

impl KubeObject {
    /// Whether the kind lives in a namespace (everything but Namespace).
    pub fn is_namespaced(&self) -> bool {
        !matches!(self, KubeObject::Namespace(_))
    }

    /// `Kind namespace/name` for problem reports (name may be empty when missing).
    pub fn object_ref(&self) -> ObjectRef {
        let meta = self.metadata();
        ObjectRef {
            kind: self.kind().to_string(),
            namespace: meta.namespace.clone(),
            name: meta.name.clone().unwrap_or_default(),
        }
    }
}

/// Treats an explicit `null` like an absent field (kubectl prints `labels: null` at times).
pub(crate) fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ObjectMeta {
    pub name: Option<String>,
    pub namespace: Option<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub labels: BTreeMap<String, String>,
    #[serde(deserialize_with = "null_as_default")]
    pub annotations: BTreeMap<String, String>,
    /// RFC 3339, when the API server set it: istiod prefers the oldest of competing
    /// PeerAuthentications.
    pub creation_timestamp: Option<String>,
    /// Set while the object is being deleted (a terminating pod).
    pub deletion_timestamp: Option<String>,
}

/// Kubernetes' int-or-string (`targetPort: 8080` or `targetPort: http`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IntOrString {
    Int(i64),
    String(String),
}

impl<'de> Deserialize<'de> for IntOrString {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = IntOrString;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an integer or a string")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<IntOrString, E> {
                Ok(IntOrString::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<IntOrString, E> {
                i64::try_from(v)
                    .map(IntOrString::Int)
                    .map_err(|_| E::custom("integer too large"))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<IntOrString, E> {
                Ok(IntOrString::String(v.to_string()))
            }
        }
        deserializer.deserialize_any(V)
    }
}
