//! The one registry of the kinds meshd reads: API group, the versions accepted, kind,
//! whether it is namespaced, and its decoder. Every source takes its list of kinds from
//! here (the file source through `lookup`; a Kubernetes source would watch `KINDS`), so
//! adding a kind is one entry.

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::objects::{networking::IstioObject, KubeObject};
use super::parse::json_error;
use crate::yaml::DecodeError;

/// Where a typed object is decoded from; text sources report positions.
#[derive(Clone, Copy)]
pub enum Source<'a> {
    Yaml(&'a str),
    Json(&'a str),
    Value(&'a Value),
}

/// Decodes `source` as `T` with the field path (and, for text, position) of a type error.
pub fn decode<T: DeserializeOwned>(source: Source<'_>) -> Result<T, DecodeError> {
    match source {
        Source::Yaml(text) => crate::yaml::from_str_with_path(text),
        Source::Json(text) => {
            let mut de = serde_json::Deserializer::from_str(text);
            serde_path_to_error::deserialize(&mut de).map_err(|e| json_error(e.path(), e.inner()))
        }
        Source::Value(value) => {
            serde_path_to_error::deserialize(value).map_err(|e| json_error(e.path(), e.inner()))
        }
    }
}

/// One kind meshd reads.
pub struct KindSpec {
    /// API group; empty for the core group (`apiVersion: v1`).
    pub group: &'static str,
    /// Versions accepted, preferred first.
    pub versions: &'static [&'static str],
    pub kind: &'static str,
    pub namespaced: bool,
    pub decode: fn(Source<'_>) -> Result<KubeObject, DecodeError>,
}

impl KindSpec {
    /// Whether `api_version` (`group/version`, or `version` for the core group) is one of
    /// this kind's.
    pub fn accepts(&self, api_version: &str) -> bool {
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        group == self.group && self.versions.contains(&version)
    }
}

/// Versions of Istio's networking kinds: one schema under three names.
const ISTIO_NETWORKING_VERSIONS: &[&str] = &["v1", "v1beta1", "v1alpha3"];
const ISTIO_NETWORKING: &str = "networking.istio.io";
/// Versions of Istio's security kinds: one schema under two names.
const ISTIO_SECURITY_VERSIONS: &[&str] = &["v1", "v1beta1"];
const ISTIO_SECURITY: &str = "security.istio.io";

/// Every kind meshd reads.
pub static KINDS: &[KindSpec] = &[
    KindSpec {
        group: "",
        versions: &["v1"],
        kind: "Namespace",
        namespaced: false,
        decode: |s| Ok(KubeObject::Namespace(decode(s)?)),
    },
    KindSpec {
        group: "",
        versions: &["v1"],
        kind: "Service",
        namespaced: true,
        decode: |s| Ok(KubeObject::Service(decode(s)?)),
    },
    KindSpec {
        group: "",
        versions: &["v1"],
        kind: "Pod",
        namespaced: true,
        decode: |s| Ok(KubeObject::Pod(decode(s)?)),
    },
    KindSpec {
        group: "",
        versions: &["v1"],
        kind: "Secret",
        namespaced: true,
        decode: |s| Ok(KubeObject::Secret(decode(s)?)),
    },
    KindSpec {
        group: "discovery.k8s.io",
        versions: &["v1"],
        kind: "EndpointSlice",
        namespaced: true,
        decode: |s| Ok(KubeObject::EndpointSlice(decode(s)?)),
    },
    KindSpec {
        group: ISTIO_NETWORKING,
        versions: ISTIO_NETWORKING_VERSIONS,
        kind: "VirtualService",
        namespaced: true,
        decode: |s| Ok(KubeObject::VirtualService(decode::<IstioObject<_>>(s)?)),
    },
    KindSpec {
        group: ISTIO_NETWORKING,
        versions: ISTIO_NETWORKING_VERSIONS,
        kind: "DestinationRule",
        namespaced: true,
        decode: |s| Ok(KubeObject::DestinationRule(decode::<IstioObject<_>>(s)?)),
    },
    KindSpec {
        group: ISTIO_NETWORKING,
        versions: ISTIO_NETWORKING_VERSIONS,
        kind: "ServiceEntry",
        namespaced: true,
        decode: |s| Ok(KubeObject::ServiceEntry(decode::<IstioObject<_>>(s)?)),
    },
    KindSpec {
        group: ISTIO_NETWORKING,
        versions: ISTIO_NETWORKING_VERSIONS,
        kind: "WorkloadEntry",
        namespaced: true,
        decode: |s| Ok(KubeObject::WorkloadEntry(decode::<IstioObject<_>>(s)?)),
    },
    KindSpec {
        group: ISTIO_NETWORKING,
        versions: ISTIO_NETWORKING_VERSIONS,
        kind: "Sidecar",
        namespaced: true,
        decode: |s| Ok(KubeObject::Sidecar(decode::<IstioObject<_>>(s)?)),
    },
    KindSpec {
        group: ISTIO_NETWORKING,
        versions: ISTIO_NETWORKING_VERSIONS,
        kind: "Gateway",
        namespaced: true,
        decode: |s| Ok(KubeObject::Gateway(decode::<IstioObject<_>>(s)?)),
    },
    KindSpec {
        group: ISTIO_SECURITY,
        versions: ISTIO_SECURITY_VERSIONS,
        kind: "AuthorizationPolicy",
        namespaced: true,
        decode: |s| {
            Ok(KubeObject::AuthorizationPolicy(decode::<IstioObject<_>>(
                s,
            )?))
        },
    },
    KindSpec {
        group: ISTIO_SECURITY,
        versions: ISTIO_SECURITY_VERSIONS,
        kind: "RequestAuthentication",
        namespaced: true,
        decode: |s| {
            Ok(KubeObject::RequestAuthentication(decode::<IstioObject<_>>(
                s,
            )?))
        },
    },
    KindSpec {
        group: ISTIO_SECURITY,
        versions: ISTIO_SECURITY_VERSIONS,
        kind: "PeerAuthentication",
        namespaced: true,
        decode: |s| Ok(KubeObject::PeerAuthentication(decode::<IstioObject<_>>(s)?)),
    },
];

/// The kind an object's `apiVersion` and `kind` name, when meshd reads it.
pub fn lookup(api_version: &str, kind: &str) -> Option<&'static KindSpec> {
    KINDS
        .iter()
        .find(|k| k.kind == kind && k.accepts(api_version))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_declared_once() {
        let mut seen = std::collections::BTreeSet::new();
        for k in KINDS {
            assert!(
                seen.insert((k.group, k.kind)),
                "{}/{} twice",
                k.group,
                k.kind
            );
        }
    }

    #[test]
    fn looks_up_by_group_version_and_kind() {
        assert_eq!(lookup("v1", "Service").unwrap().kind, "Service");
        assert!(lookup("v2", "Service").is_none());
        assert!(lookup("apps/v1", "Deployment").is_none());
        for version in ["v1", "v1beta1", "v1alpha3"] {
            let api = format!("networking.istio.io/{version}");
            assert_eq!(
                lookup(&api, "VirtualService").unwrap().kind,
                "VirtualService"
            );
        }
        // Gateway API's Gateway is a different kind of the same name.
        assert!(lookup("gateway.networking.k8s.io/v1", "Gateway").is_none());
        assert!(!lookup("v1", "Namespace").unwrap().namespaced);
    }
}
