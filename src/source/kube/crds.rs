//! Notice of CustomResourceDefinitions coming and going: a metadata-only watch of
//! `apiextensions.k8s.io/v1` CRDs (Istio's carry large schemas; only the name is read) that
//! says when a CRD of one of the registry's groups changed, so the source rediscovers what
//! the server serves. A CRD's status update (it becoming Established) is such a change too,
//! which is when its kind starts being served.

use futures::StreamExt;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, PartialObjectMeta};
use kube::runtime::watcher::{self, watcher, Event};
use kube::runtime::WatchStreamExt;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tracing::{debug, warn};

use crate::source::kinds::KINDS;

/// Signals `changed` (a channel of capacity 1: a burst of events while a rediscovery is
/// pending asks for no more) when a CRD of the registry's groups changes, not for the
/// initial list (discovery at start saw those). Ends when the receiver is dropped.
pub async fn watch_crds(client: kube::Client, changed: mpsc::Sender<()>) {
    // `PartialObjectMeta` makes the requests metadata-only.
    let api = Api::<PartialObjectMeta<CustomResourceDefinition>>::all(client);
    let mut stream = std::pin::pin!(watcher(api, watcher::Config::default()).default_backoff());
    let mut listed = false;
    loop {
        let item = match stream.next().await {
            Some(item) => item,
            None => return,
        };
        let relevant = match item {
            Ok(Event::Init | Event::InitApply(_)) => false,
            // After the first list a relist may hide a CRD added or deleted meanwhile.
            Ok(Event::InitDone) => std::mem::replace(&mut listed, true),
            Ok(Event::Apply(crd) | Event::Delete(crd)) => of_registry_group(&crd),
            Err(error) => {
                warn!(%error, "watch of CustomResourceDefinitions failed; relisting with backoff");
                false
            }
        };
        if !relevant {
            continue;
        }
        debug!("CustomResourceDefinitions changed; rediscovering");
        if let Err(TrySendError::Closed(())) = changed.try_send(()) {
            return;
        }
    }
}

/// Whether the CRD (named `<plural>.<group>`) is of a group some registry kind is in.
fn of_registry_group(crd: &PartialObjectMeta<CustomResourceDefinition>) -> bool {
    let name = crd.metadata.name.as_deref().unwrap_or_default();
    name.split_once('.').is_some_and(|(_, group)| {
        KINDS
            .iter()
            .any(|k| !k.group.is_empty() && k.group == group)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crd(name: &str) -> PartialObjectMeta<CustomResourceDefinition> {
        let mut crd = PartialObjectMeta::<CustomResourceDefinition>::default();
        crd.metadata.name = Some(name.into());
        crd
    }

    #[test]
    fn only_crds_of_the_registry_groups_count() {
        assert!(of_registry_group(&crd(
            "virtualservices.networking.istio.io"
        )));
        assert!(!of_registry_group(&crd("widgets.example.com")));
        assert!(!of_registry_group(&crd(
            "gateways.gateway.networking.k8s.io"
        )));
        assert!(!of_registry_group(&crd("nodot")));
    }
}
