//! The root certificate published as ConfigMap `istio-ca-root-cert` (key `root-cert.pem`) in
//! every namespace, as istiod's namespace controller does: created with label
//! `istio.io/config: "true"` where missing, its key updated where it differs (other keys
//! kept), created again when deleted. Namespaces `kube-public`, `kube-node-lease` and
//! `local-path-storage` are skipped as istiod skips them.
//!
//! Every replica watches Namespaces and these ConfigMaps; only the leader writes, so a new
//! leader starts from a warm view. A write that fails is retried with backoff.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PostParams};
use kube::runtime::watcher::{self, watcher, Event};
use kube::runtime::WatchStreamExt;
use kube::ResourceExt;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use super::api_error_is;

/// The ConfigMap's name in each namespace (Istio's `PILOT_CA_CERT_CONFIGMAP` default).
pub const ROOT_CONFIGMAP: &str = "istio-ca-root-cert";
/// The key holding the PEM bundle.
pub const ROOT_CERT_KEY: &str = "root-cert.pem";
/// Namespaces istiod never writes the ConfigMap into.
const IGNORED_NAMESPACES: [&str; 3] = ["kube-public", "kube-node-lease", "local-path-storage"];

const RETRY_MIN: Duration = Duration::from_millis(500);
const RETRY_MAX: Duration = Duration::from_secs(30);

/// The running publisher; stops when dropped or when the election ends.
pub struct RootCertPublisher {
    task: JoinHandle<()>,
}

impl RootCertPublisher {
    /// Starts watching on the current tokio runtime. `bundle` is the PEM trust bundle to
    /// publish (nothing is written while it is empty); `leader` gates the writes.
    pub fn start(
        client: kube::Client,
        leader: watch::Receiver<bool>,
        bundle: watch::Receiver<String>,
    ) -> RootCertPublisher {
        RootCertPublisher {
            task: tokio::spawn(run(client, leader, bundle)),
        }
    }
}

impl Drop for RootCertPublisher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A watched kind's objects by key, replaced as a whole after each (re)list.
struct Mirror<K> {
    key: fn(&K) -> String,
    objects: HashMap<String, K>,
    relisting: Option<HashMap<String, K>>,
    listed: bool,
}

impl<K> Mirror<K> {
    fn new(key: fn(&K) -> String) -> Mirror<K> {
        Mirror {
            key,
            objects: HashMap::new(),
            relisting: None,
            listed: false,
        }
    }

    /// Applies one watcher event; returns the keys whose object may have changed.
    fn apply(&mut self, event: Event<K>) -> Vec<String> {
        match event {
            Event::Apply(object) => {
                let key = (self.key)(&object);
                self.objects.insert(key.clone(), object);
                vec![key]
            }
            Event::Delete(object) => {
                let key = (self.key)(&object);
                self.objects.remove(&key);
                vec![key]
            }
            Event::Init => {
                self.relisting = Some(HashMap::new());
                Vec::new()
            }
            Event::InitApply(object) => {
                let key = (self.key)(&object);
                self.relisting
                    .get_or_insert_with(HashMap::new)
                    .insert(key, object);
                Vec::new()
            }
            Event::InitDone => {
                let listed = self.relisting.take().unwrap_or_default();
                let old = std::mem::replace(&mut self.objects, listed);
                self.listed = true;
                let mut keys: BTreeSet<String> = old.into_keys().collect();
                keys.extend(self.objects.keys().cloned());
                keys.into_iter().collect()
            }
        }
    }
}

/// What a namespace needs.
#[derive(Debug, PartialEq)]
enum Action {
    Nothing,
    Create,
    /// Update this ConfigMap (the key set to the bundle).
    Update(Box<ConfigMap>),
}

/// Decides for one namespace from what the watches show.
fn plan(
    namespace: &str,
    ns: Option<&Namespace>,
    existing: Option<&ConfigMap>,
    bundle: &str,
) -> Action {
    let live = ns.is_some_and(|ns| {
        ns.metadata.deletion_timestamp.is_none()
            && ns.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Terminating")
    });
    if !live || IGNORED_NAMESPACES.contains(&namespace) || bundle.is_empty() {
        return Action::Nothing;
    }
    let Some(existing) = existing else {
        return Action::Create;
    };
    let current = existing.data.as_ref().and_then(|d| d.get(ROOT_CERT_KEY));
    if current.map(String::as_str) == Some(bundle) {
        return Action::Nothing;
    }
    let mut updated = existing.clone();
    updated
        .data
        .get_or_insert_with(Default::default)
        .insert(ROOT_CERT_KEY.to_string(), bundle.to_string());
    Action::Update(Box::new(updated))
}

fn desired(namespace: &str, bundle: &str) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(ROOT_CONFIGMAP.to_string()),
            namespace: Some(namespace.to_string()),
            labels: Some([("istio.io/config".to_string(), "true".to_string())].into()),
            ..ObjectMeta::default()
        },
        data: Some([(ROOT_CERT_KEY.to_string(), bundle.to_string())].into()),
        ..ConfigMap::default()
    }
}

fn events<K>(api: Api<K>, config: watcher::Config) -> impl Stream<Item = Event<K>> + Send
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + 'static,
    K::DynamicType: Default,
{
    watcher(api, config)
        .default_backoff()
        .filter_map(|item| async move {
            item.map_err(|error| warn!(%error, "root ConfigMap publisher: watch failed; relisting"))
                .ok()
        })
}

async fn run(
    client: kube::Client,
    mut leader: watch::Receiver<bool>,
    mut bundle: watch::Receiver<String>,
) {
    let mut namespace_events = std::pin::pin!(events(
        Api::<Namespace>::all(client.clone()),
        watcher::Config::default()
    ));
    let mut configmap_events = std::pin::pin!(events(
        Api::<ConfigMap>::all(client.clone()),
        watcher::Config::default().fields(&format!("metadata.name={ROOT_CONFIGMAP}"))
    ));
    let mut namespaces = Mirror::<Namespace>::new(|ns| ns.name_any());
    let mut configmaps = Mirror::<ConfigMap>::new(|cm| cm.namespace().unwrap_or_default());
    let mut queue = BTreeSet::<String>::new();
    let mut failed = BTreeSet::<String>::new();
    let mut retry = RETRY_MIN;
    let mut retry_at: Option<tokio::time::Instant> = None;
    loop {
        tokio::select! {
            Some(event) = namespace_events.next() => queue.extend(namespaces.apply(event)),
            Some(event) = configmap_events.next() => queue.extend(configmaps.apply(event)),
            changed = leader.changed() => {
                if changed.is_err() {
                    return;
                }
                queue.extend(namespaces.objects.keys().cloned());
            }
            changed = bundle.changed() => {
                if changed.is_err() {
                    return;
                }
                queue.extend(namespaces.objects.keys().cloned());
            }
            _ = tokio::time::sleep_until(retry_at.unwrap_or_else(tokio::time::Instant::now)), if retry_at.is_some() => {
                retry_at = None;
                queue.append(&mut failed);
            }
        }
        if !*leader.borrow() || !namespaces.listed || !configmaps.listed {
            continue;
        }
        let bundle_now = bundle.borrow().clone();
        let configmap_api = |ns: &str| Api::<ConfigMap>::namespaced(client.clone(), ns);
        for namespace in std::mem::take(&mut queue) {
            let action = plan(
                &namespace,
                namespaces.objects.get(&namespace),
                configmaps.objects.get(&namespace),
                &bundle_now,
            );
            if let Err(error) =
                write(configmap_api(&namespace), &namespace, action, &bundle_now).await
            {
                warn!(namespace, configmap = ROOT_CONFIGMAP, %error, "root ConfigMap not written; retrying");
                failed.insert(namespace);
            }
        }
        if failed.is_empty() {
            retry = RETRY_MIN;
        } else if retry_at.is_none() {
            retry_at = Some(tokio::time::Instant::now() + retry);
            retry = (retry * 2).min(RETRY_MAX);
        }
    }
}

async fn write(
    api: Api<ConfigMap>,
    namespace: &str,
    action: Action,
    bundle: &str,
) -> kube::Result<()> {
    match action {
        Action::Nothing => Ok(()),
        Action::Create => match api
            .create(&PostParams::default(), &desired(namespace, bundle))
            .await
        {
            Ok(_) => {
                info!(
                    namespace,
                    configmap = ROOT_CONFIGMAP,
                    "root certificate published"
                );
                Ok(())
            }
            // Already there (the watch brings it), or the namespace is going away.
            Err(error)
                if api_error_is(&error, |s| {
                    s.is_already_exists() || s.is_not_found() || is_namespace_terminating(s)
                }) =>
            {
                debug!(namespace, %error, "root ConfigMap not created");
                Ok(())
            }
            Err(error) => Err(error),
        },
        Action::Update(configmap) => {
            api.replace(ROOT_CONFIGMAP, &PostParams::default(), &configmap)
                .await?;
            info!(
                namespace,
                configmap = ROOT_CONFIGMAP,
                "root certificate updated"
            );
            Ok(())
        }
    }
}

fn is_namespace_terminating(status: &kube::core::Status) -> bool {
    status
        .details
        .as_ref()
        .is_some_and(|d| d.causes.iter().any(|c| c.reason == "NamespaceTerminating"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::NamespaceStatus;

    fn namespace(name: &str) -> Namespace {
        Namespace {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        }
    }

    #[test]
    fn missing_configmaps_are_created_with_istios_label() {
        let ns = namespace("shop");
        assert_eq!(plan("shop", Some(&ns), None, "ROOT"), Action::Create);
        let cm = desired("shop", "ROOT");
        assert_eq!(cm.metadata.labels.unwrap()["istio.io/config"], "true");
        assert_eq!(cm.data.unwrap()[ROOT_CERT_KEY], "ROOT");
    }

    #[test]
    fn differing_configmaps_are_updated_keeping_other_keys() {
        let ns = namespace("shop");
        let mut cm = desired("shop", "OLD");
        cm.data
            .as_mut()
            .unwrap()
            .insert("extra".to_string(), "kept".to_string());
        let Action::Update(updated) = plan("shop", Some(&ns), Some(&cm), "NEW") else {
            panic!("expected an update");
        };
        let data = updated.data.unwrap();
        assert_eq!(data[ROOT_CERT_KEY], "NEW");
        assert_eq!(data["extra"], "kept");
        assert_eq!(
            plan("shop", Some(&ns), Some(&desired("shop", "NEW")), "NEW"),
            Action::Nothing
        );
    }

    #[test]
    fn ignored_gone_and_terminating_namespaces_are_left_alone() {
        let public = namespace("kube-public");
        assert_eq!(
            plan("kube-public", Some(&public), None, "R"),
            Action::Nothing
        );
        assert_eq!(plan("gone", None, None, "R"), Action::Nothing);
        let mut terminating = namespace("old");
        terminating.status = Some(NamespaceStatus {
            phase: Some("Terminating".to_string()),
            ..NamespaceStatus::default()
        });
        assert_eq!(plan("old", Some(&terminating), None, "R"), Action::Nothing);
        // kube-system is not skipped (istiod writes there too).
        let system = namespace("kube-system");
        assert_eq!(
            plan("kube-system", Some(&system), None, "R"),
            Action::Create
        );
        assert_eq!(
            plan("kube-system", Some(&system), None, ""),
            Action::Nothing
        );
    }

    #[test]
    fn a_relist_replaces_the_mirror_and_reports_every_key() {
        let mut mirror = Mirror::<Namespace>::new(|ns| ns.name_any());
        assert!(!mirror.listed);
        assert_eq!(mirror.apply(Event::Apply(namespace("a"))), ["a"]);
        assert!(mirror.apply(Event::Init).is_empty());
        assert!(mirror.apply(Event::InitApply(namespace("b"))).is_empty());
        assert_eq!(mirror.apply(Event::InitDone), ["a", "b"]);
        assert!(mirror.listed);
        assert_eq!(mirror.objects.keys().collect::<Vec<_>>(), ["b"]);
        assert_eq!(mirror.apply(Event::Delete(namespace("b"))), ["b"]);
        assert!(mirror.objects.is_empty());
    }
}
