//! Which API resource each kind of the registry is watched at: the first of its versions
//! (preferred first: v1, v1beta1, v1alpha3 for Istio's kinds) the server serves, found
//! through discovery. A kind whose group or version the server does not serve (an Istio CRD
//! not installed) is left out, not an error.

use std::collections::BTreeMap;

use kube::api::ApiResource;
use kube::discovery::ApiGroup;
use kube::error::DiscoveryError;
use tracing::info;

use crate::source::kinds::{KindSpec, KINDS};

/// One kind to watch, at the resource the server serves it as.
pub struct Watched {
    pub spec: &'static KindSpec,
    pub resource: ApiResource,
}

/// Every kind of the registry the server serves. Fails only when discovery itself fails
/// (the caller retries).
pub async fn discover(client: &kube::Client) -> Result<Vec<Watched>, kube::Error> {
    let mut groups: BTreeMap<&str, Option<ApiGroup>> = BTreeMap::new();
    for spec in KINDS {
        if groups.contains_key(spec.group) {
            continue;
        }
        let group = match kube::discovery::group(client, spec.group).await {
            Ok(group) => Some(group),
            Err(kube::Error::Discovery(DiscoveryError::MissingApiGroup(_))) => None,
            Err(error) => return Err(error),
        };
        groups.insert(spec.group, group);
    }
    let mut watched = Vec::new();
    for spec in KINDS {
        let served = |version: &str| {
            groups.get(spec.group)?.as_ref().and_then(|group| {
                group
                    .versioned_resources(version)
                    .into_iter()
                    .map(|(resource, _)| resource)
                    .find(|resource| resource.kind == spec.kind)
            })
        };
        match choose(spec, served) {
            Some(resource) => watched.push(Watched { spec, resource }),
            None => info!(
                group = spec.group,
                kind = spec.kind,
                "the API server does not serve this kind (CRD not installed?); not watching it"
            ),
        }
    }
    Ok(watched)
}

/// The resource of the first of `spec`'s versions that `served` knows.
fn choose(spec: &KindSpec, served: impl Fn(&str) -> Option<ApiResource>) -> Option<ApiResource> {
    spec.versions.iter().find_map(|version| served(version))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::kinds::lookup;

    fn resource(version: &str) -> ApiResource {
        ApiResource {
            group: "networking.istio.io".into(),
            version: version.into(),
            api_version: format!("networking.istio.io/{version}"),
            kind: "VirtualService".into(),
            plural: "virtualservices".into(),
        }
    }

    #[test]
    fn prefers_v1_then_v1beta1_then_v1alpha3() {
        let spec = lookup("networking.istio.io/v1", "VirtualService").unwrap();
        let serving = |versions: &'static [&'static str]| {
            move |v: &str| versions.contains(&v).then(|| resource(v))
        };
        let pick = |versions| choose(spec, serving(versions)).map(|r| r.version);
        assert_eq!(pick(&["v1alpha3", "v1beta1", "v1"]).as_deref(), Some("v1"));
        assert_eq!(pick(&["v1alpha3", "v1beta1"]).as_deref(), Some("v1beta1"));
        assert_eq!(pick(&["v1alpha3"]).as_deref(), Some("v1alpha3"));
        assert_eq!(pick(&["v2"]), None);
        assert_eq!(pick(&[]), None);
    }
}
