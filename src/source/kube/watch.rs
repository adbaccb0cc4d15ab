//! The source's task: discovery (retried until the server answers), one kube-runtime watcher
//! per kind feeding one channel, and the loop that applies their events to the stores and
//! publishes the input set once every kind has listed, and after that on each change.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::api::{Api, DynamicObject};
use kube::runtime::watcher::{self, watcher, Event};
use kube::runtime::WatchStreamExt;
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};

use super::discover::discover;
use super::store::KindStore;
use crate::source::InputSet;

/// Longest wait between discovery attempts.
const DISCOVERY_BACKOFF_MAX: Duration = Duration::from_secs(30);

pub async fn run(client: kube::Client, tx: watch::Sender<Option<Arc<InputSet>>>) {
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
    let (events_tx, mut events) = mpsc::channel::<(usize, Event<DynamicObject>)>(1024);
    let mut stores = Vec::new();
    for (index, kind) in watched.into_iter().enumerate() {
        info!(kind = kind.spec.kind, api_version = %kind.resource.api_version, "watching");
        stores.push(KindStore::new(kind.spec, kind.resource.api_version.clone()));
        let api = Api::<DynamicObject>::all_with(client.clone(), &kind.resource);
        tokio::spawn(watch_kind(index, kind.spec.kind, api, events_tx.clone()));
    }
    drop(events_tx);
    while let Some((index, event)) = events.recv().await {
        let mut changed = stores[index].apply(event);
        // Take what else is queued before building one set from it all.
        while let Ok((index, event)) = events.try_recv() {
            changed |= stores[index].apply(event);
        }
        if changed {
            let waiting: Vec<&str> = stores
                .iter()
                .filter(|s| !s.listed())
                .map(KindStore::kind)
                .collect();
            if waiting.is_empty() {
                publish(&tx, &stores);
            } else {
                debug!(?waiting, "kinds not listed yet");
            }
        }
        if tx.is_closed() {
            return;
        }
    }
}

/// Forwards one kind's watcher events; kube-runtime relists with backoff after errors
/// (dropped connections, `410 Gone`), which are only logged here.
async fn watch_kind(
    index: usize,
    kind: &'static str,
    api: Api<DynamicObject>,
    events: mpsc::Sender<(usize, Event<DynamicObject>)>,
) {
    let mut stream = std::pin::pin!(watcher(api, watcher::Config::default()).default_backoff());
    while let Some(item) = stream.next().await {
        match item {
            Ok(event) => {
                if events.send((index, event)).await.is_err() {
                    return;
                }
            }
            Err(error) => warn!(kind, %error, "Kubernetes watch failed; relisting with backoff"),
        }
    }
}

fn publish(tx: &watch::Sender<Option<Arc<InputSet>>>, stores: &[KindStore]) {
    let mut set = InputSet::default();
    for store in stores {
        store.add_to(&mut set);
    }
    tx.send_if_modified(|current| {
        if current.as_deref() == Some(&set) {
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
