//! The source's task: discovery (retried until the server answers), one kube-runtime watcher
//! per served kind feeding one channel, and the loop that applies their events to the stores
//! and publishes the input set once every kind served at start has listed, and after that on
//! each change. When a CRD of the registry's groups changes (`crds`), discovery runs again:
//! a kind newly served gets a watcher (it holds nothing back: readiness waits only for the
//! kinds served at start), a kind no longer served loses its watcher and its objects. The
//! mesh config ConfigMap (`mesh`) is watched beside the kinds and gates the first publish too.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::api::{Api, DynamicObject};
use kube::runtime::watcher::{self, watcher, Event};
use kube::runtime::WatchStreamExt;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use super::crds::watch_crds;
use super::discover::{discover, Watched};
use super::mesh::{self, MeshStore};
use super::store::KindStore;
use super::MeshWatch;
use crate::source::InputSet;

/// Longest wait between discovery attempts.
const DISCOVERY_BACKOFF_MAX: Duration = Duration::from_secs(30);
/// Wait before retrying a rediscovery that failed.
const REDISCOVERY_RETRY: Duration = Duration::from_secs(2);
/// Objects per page of a list (kube-runtime's default); `MESHD_KUBE_LIST_PAGE_SIZE` changes
/// it, for tests of paging.
const PAGE_SIZE: u32 = 500;

/// Tags the events of the mesh config's watcher.
const MESH_ID: u64 = u64::MAX;

/// One watcher's event, tagged with the watcher it came from.
type Tagged = (u64, Event<DynamicObject>);

/// A kind being watched.
struct Kind {
    store: KindStore,
    api_version: String,
    /// Tags this watcher's events; events of a stopped one are dropped.
    id: u64,
    task: JoinHandle<()>,
    /// Served at start: the first publish waits for its list.
    required: bool,
}

/// The kinds being watched, keyed by `group/kind`.
struct Kinds {
    client: kube::Client,
    events: mpsc::Sender<Tagged>,
    kinds: BTreeMap<String, Kind>,
    next_id: u64,
    mesh: MeshStore,
}

impl Kinds {
    /// Starts and stops watchers so that exactly the kinds of `watched` are watched, each at
    /// its served version; returns whether a store that showed objects went away.
    fn reconcile(&mut self, watched: Vec<Watched>, required: bool) -> bool {
        let mut keep = BTreeMap::new();
        for kind in watched {
            let key = format!("{}/{}", kind.spec.group, kind.spec.kind);
            let api_version = kind.resource.api_version.clone();
            match self.kinds.remove(&key) {
                Some(current) if current.api_version == api_version => {
                    keep.insert(key, current);
                }
                previous => {
                    if let Some(previous) = previous {
                        previous.task.abort();
                    }
                    info!(kind = kind.spec.kind, %api_version, "watching");
                    let id = self.next_id;
                    self.next_id += 1;
                    let api = Api::<DynamicObject>::all_with(self.client.clone(), &kind.resource);
                    let task = tokio::spawn(watch_kind(
                        id,
                        kind.spec.kind,
                        api,
                        watcher_config(),
                        self.events.clone(),
                    ));
                    let store = KindStore::new(kind.spec, api_version.clone());
                    keep.insert(
                        key,
                        Kind {
                            store,
                            api_version,
                            id,
                            task,
                            required,
                        },
                    );
                }
            }
        }
        let mut changed = false;
        for (key, gone) in std::mem::replace(&mut self.kinds, keep) {
            info!(kind = %key, "no longer served (CRD deleted?); not watching it");
            gone.task.abort();
            changed |= gone.store.listed();
        }
        changed
    }

    /// Applies an event of watcher `id`; returns whether a store changed.
    fn apply(&mut self, id: u64, event: Event<DynamicObject>) -> bool {
        if id == MESH_ID {
            return self.mesh.apply(event);
        }
        match self.kinds.values_mut().find(|k| k.id == id) {
            Some(kind) => kind.store.apply(event),
            None => false,
        }
    }

    /// The kinds served at start that have not listed yet.
    fn waiting(&self) -> Vec<&'static str> {
        let mut waiting: Vec<&'static str> = self
            .kinds
            .values()
            .filter(|k| k.required && !k.store.listed())
            .map(|k| k.store.kind())
            .collect();
        if !self.mesh.listed() {
            waiting.push("ConfigMap istio");
        }
        waiting
    }
}

impl Drop for Kinds {
    fn drop(&mut self) {
        for kind in self.kinds.values() {
            kind.task.abort();
        }
    }
}

pub async fn run(client: kube::Client, tx: watch::Sender<Option<Arc<InputSet>>>, mesh: MeshWatch) {
    let mut backoff = Duration::from_millis(500);
    let watched = loop {
        match discover(&client).await {
            Ok(watched) => break watched,
            Err(error) => {
                warn!(%error, retry_in = ?backoff, "Kubernetes API discovery failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(DISCOVERY_BACKOFF_MAX);
            }
        }
        if tx.is_closed() {
            return;
        }
    };
    let (events_tx, mut events) = mpsc::channel::<Tagged>(1024);
    let (rediscover_tx, mut rediscover) = mpsc::channel::<()>(1);
    let crds = tokio::spawn(watch_crds(client.clone(), rediscover_tx.clone()));
    let _crds = AbortOnDrop(crds);
    let (mesh_api, mesh_config) = mesh::api(client.clone(), &mesh.namespace);
    let _mesh = AbortOnDrop(tokio::spawn(watch_kind(
        MESH_ID,
        "ConfigMap",
        mesh_api,
        mesh_config,
        events_tx.clone(),
    )));
    let mut kinds = Kinds {
        client: client.clone(),
        events: events_tx,
        kinds: BTreeMap::new(),
        next_id: 0,
        mesh: MeshStore::new(&mesh.namespace),
    };
    kinds.reconcile(watched, true);
    loop {
        let mut changed = tokio::select! {
            Some((id, event)) = events.recv() => kinds.apply(id, event),
            Some(()) = rediscover.recv() => match discover(&client).await {
                Ok(watched) => kinds.reconcile(watched, false),
                Err(error) => {
                    warn!(%error, retry_in = ?REDISCOVERY_RETRY, "Kubernetes API rediscovery failed");
                    let again = rediscover_tx.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(REDISCOVERY_RETRY).await;
                        let _ = again.try_send(());
                    });
                    false
                }
            },
        };
        // Take what else is queued before building one set from it all.
        while let Ok((id, event)) = events.try_recv() {
            changed |= kinds.apply(id, event);
        }
        if changed {
            let waiting = kinds.waiting();
            if waiting.is_empty() {
                publish(&tx, &kinds, &mesh);
            } else {
                debug!(?waiting, "kinds not listed yet");
            }
        }
        if tx.is_closed() {
            return;
        }
    }
}

struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Lists page by page (`MESHD_KUBE_LIST_PAGE_SIZE`, else kube-runtime's 500).
fn watcher_config() -> watcher::Config {
    let page_size = std::env::var("MESHD_KUBE_LIST_PAGE_SIZE")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(PAGE_SIZE);
    watcher::Config::default().page_size(page_size)
}

/// Forwards one kind's watcher events; kube-runtime relists with backoff after errors
/// (dropped connections, `410 Gone`), which are only logged here.
async fn watch_kind(
    id: u64,
    kind: &'static str,
    api: Api<DynamicObject>,
    config: watcher::Config,
    events: mpsc::Sender<Tagged>,
) {
    let mut stream = std::pin::pin!(watcher(api, config).default_backoff());
    while let Some(item) = stream.next().await {
        match item {
            Ok(event) => {
                // Says when a relist (after a 410 or a lost connection) has completed.
                if matches!(event, Event::InitDone) {
                    info!(kind, "Kubernetes list complete");
                }
                if events.send((id, event)).await.is_err() {
                    return;
                }
            }
            Err(error) => warn!(kind, %error, "Kubernetes watch failed; relisting with backoff"),
        }
    }
}

/// Publishes the stores' input set, and first the translation options the mesh config
/// gives; a change of those alone publishes the same set again so the pipeline rebuilds.
fn publish(tx: &watch::Sender<Option<Arc<InputSet>>>, kinds: &Kinds, mesh: &MeshWatch) {
    let mut set = InputSet::default();
    for kind in kinds.kinds.values() {
        kind.store.add_to(&mut set);
    }
    set.problems.extend(kinds.mesh.problem().cloned());
    let options = kinds.mesh.config().overlay(&mesh.flags);
    let options_changed = mesh.options.send_if_modified(|current| {
        if **current == options {
            return false;
        }
        info!(?options, "mesh config changed");
        *current = Arc::new(options);
        true
    });
    tx.send_if_modified(|current| {
        if current.as_deref() == Some(&set) && !options_changed {
            return false;
        }
        debug!(
            objects = set.objects.len(),
            problems = set.problems.len(),
            "input changed"
        );
        *current = Some(Arc::new(set));
        true
    });
}
