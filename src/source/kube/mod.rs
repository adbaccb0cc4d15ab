//! The Kubernetes source: every kind of the registry (`source::kinds`) listed and watched
//! through the API server with kube-rs, kept in one store per kind, and handed onward as the
//! same `InputSet` the file source produces. Nothing downstream knows which source is in use.
//!
//! Nothing is published until every watched kind has listed once, so the pipeline (and
//! `/ready`) waits for one consistent first view. Watch errors, dropped connections and
//! `410 Gone` are left to kube-runtime's watcher, which relists with backoff; a relist
//! replaces its kind's store as a whole. An Istio kind whose CRD the server does not serve
//! is skipped (logged), not an error; a CRD installed later is picked up and one deleted
//! stops its watcher (`crds`). Objects are stripped to what meshd reads (`strip`) before
//! they are decoded and stored.

mod client;
mod crds;
mod discover;
mod mesh;
pub mod store;
mod strip;
mod watch;

pub use client::client;

use std::sync::Arc;

use tokio::sync::watch as tokio_watch;

use super::InputSet;
use crate::translate::scope::TranslateOptions;

/// Where the mesh config ConfigMap is read and what it overrides.
pub struct MeshWatch {
    /// istiod's namespace, where ConfigMap `istio` is.
    pub namespace: String,
    /// The options the flags give, which the ConfigMap's fields override.
    pub flags: Arc<TranslateOptions>,
    /// Set to the options in force before each input set they apply to is published.
    pub options: tokio_watch::Sender<Arc<TranslateOptions>>,
}

/// Watches the cluster; the receiver holds `None` until every watched kind has listed once.
pub struct KubeSource;

impl KubeSource {
    /// Discovers the served versions, then starts one watcher per kind on the current tokio
    /// runtime. The tasks end when every receiver is dropped.
    pub fn start(
        client: kube::Client,
        mesh: MeshWatch,
    ) -> tokio_watch::Receiver<Option<Arc<InputSet>>> {
        let (tx, rx) = tokio_watch::channel(None);
        tokio::spawn(watch::run(client, tx, mesh));
        rx
    }
}
