//! What the xDS server exposes about itself: the sync state of every connected stream (for
//! /debug/syncz and /debug/config_dump) and its metrics (for /metrics, see `metrics`).
//!
//! Each stream owns an `Arc<StreamStatus>` and is its only writer: per type, a small lock
//! that only that stream and a debug view reading it ever take. The registry of streams is
//! sharded, and a stream touches it twice (register, unregister), so streams never wait on
//! each other to record a request or a push, and a debug view holds a shard only while it
//! collects a page of `Arc`s. Readers snapshot one stream at a time and serialize outside
//! every lock. The admin server reads through a cheap clone of `XdsStatus`.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

pub use super::metrics::metric_type;
use super::metrics::{type_index, Metrics};
use crate::envoy::resource::{type_url, ProxyResources};

/// Sync state of one type on one stream, as shown by /debug/syncz.
#[derive(Debug, Clone, Default)]
pub struct TypeView {
    pub wildcard: bool,
    /// Names explicitly subscribed (sorted). The protocol state keeps its subscription in
    /// this same `Arc`, replaced only when the subscription changes, so the names exist
    /// once and publishing a view copies none.
    pub names: Arc<BTreeSet<String>>,
    pub version_sent: String,
    pub nonce_sent: String,
    pub version_acked: String,
    pub nonce_acked: String,
    /// Message of the last rejection on this stream, if any.
    pub last_nack: Option<String>,
    /// Whether the latest response we sent was rejected (and not superseded since).
    pub nacked: bool,
    pub responses: u64,
}

impl TypeView {
    /// Copies `from` reusing this view's string buffers: publishing after each request
    /// allocates nothing once the strings have their usual length.
    fn copy_from(&mut self, from: &TypeView) {
        self.wildcard = from.wildcard;
        if !Arc::ptr_eq(&self.names, &from.names) {
            self.names = Arc::clone(&from.names);
        }
        self.version_sent.clone_from(&from.version_sent);
        self.nonce_sent.clone_from(&from.nonce_sent);
        self.version_acked.clone_from(&from.version_acked);
        self.nonce_acked.clone_from(&from.nonce_acked);
        self.last_nack.clone_from(&from.last_nack);
        self.nacked = from.nacked;
        self.responses = from.responses;
    }

    /// The syncz JSON of this type; `names` lists the subscribed names, otherwise only
    /// their count is given.
    pub fn to_json(&self, names: bool) -> Value {
        let mut out = json!({
            "wildcard": self.wildcard,
            "name_count": self.names.len(),
            "version_sent": self.version_sent,
            "nonce_sent": self.nonce_sent,
            "version_acked": self.version_acked,
            "nonce_acked": self.nonce_acked,
            "last_nack": self.last_nack,
            "nacked": self.nacked,
            "responses": self.responses,
        });
        if names {
            out["names"] = json!(self.names.as_ref());
        }
        out
    }
}

/// Locks a mutex that only guards telemetry, recovering it when a thread panicked while
/// holding it: the data is at worst one update behind, which must not take down every
/// stream and debug view after it.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The status of one connected stream, written only by its own task.
#[derive(Debug)]
pub struct StreamStatus {
    node_id: Arc<str>,
    stream: u64,
    delta: bool,
    /// Seconds since the Unix epoch.
    connected_at: u64,
    generation: AtomicU64,
    /// Per type, in push order; `None` until the proxy asks for the type.
    types: [Mutex<Option<TypeView>>; 5],
    /// The resources of the generation the stream holds (the same `Arc`s as the stream's).
    resources: Mutex<ProxyResources>,
    /// Whether secrets go to this stream (otherwise they are withheld from it).
    secrets_allowed: bool,
}

/// A copy of one stream's status taken at one moment (per type), to serialize unlocked.
#[derive(Debug, Clone)]
pub struct StreamView {
    pub node_id: Arc<str>,
    pub stream: u64,
    pub delta: bool,
    pub connected_at: u64,
    pub generation: u64,
    /// By type URL, in push order; only the types the proxy asked for.
    pub types: Vec<(&'static str, TypeView)>,
}

impl StreamView {
    /// The syncz JSON of one proxy: stream fields, then one object per type (short names).
    pub fn to_json(&self, names: bool) -> Value {
        let mut entry = Map::new();
        entry.insert("stream".into(), self.stream.into());
        entry.insert("delta".into(), self.delta.into());
        entry.insert("connected_at".into(), self.connected_at.into());
        entry.insert("generation".into(), self.generation.into());
        for (url, t) in &self.types {
            entry.insert(type_url::short_name(url).into(), t.to_json(names));
        }
        Value::Object(entry)
    }
}

impl StreamStatus {
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    pub fn stream(&self) -> u64 {
        self.stream
    }

    pub fn delta(&self) -> bool {
        self.delta
    }

    pub fn secrets_allowed(&self) -> bool {
        self.secrets_allowed
    }

    pub(crate) fn set_type(&self, type_url: &str, view: &TypeView) {
        if let Some(i) = type_index(type_url) {
            lock(&self.types[i])
                .get_or_insert_with(TypeView::default)
                .copy_from(view);
        }
    }

    pub(crate) fn set_resources(&self, generation: u64, resources: ProxyResources) {
        *lock(&self.resources) = resources;
        self.generation.store(generation, Ordering::Relaxed);
    }

    /// The stream's state now, each type read under its own lock for a moment.
    pub fn view(&self) -> StreamView {
        let types = type_url::PUSH_ORDER
            .iter()
            .zip(&self.types)
            .filter_map(|(url, slot)| lock(slot).clone().map(|v| (*url, v)))
            .collect();
        StreamView {
            node_id: self.node_id.clone(),
            stream: self.stream,
            delta: self.delta,
            connected_at: self.connected_at,
            generation: self.generation.load(Ordering::Relaxed),
            types,
        }
    }

    /// The resources of the generation the stream holds, and that generation.
    pub fn resources(&self) -> (u64, ProxyResources) {
        let resources = lock(&self.resources).clone();
        (self.generation.load(Ordering::Relaxed), resources)
    }
}

/// Shards of the registry: streams are spread by id, so connects and disconnects rarely
/// meet on one lock.
const SHARDS: usize = 16;

/// Streams by (node id, stream id): sorted by node, so pages follow node ids.
type Shard = BTreeMap<(Arc<str>, u64), Arc<StreamStatus>>;

/// A cheap handle on the server's status for debug views and metrics.
#[derive(Clone, Default)]
pub struct XdsStatus {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    shards: [Mutex<Shard>; SHARDS],
    connected: AtomicUsize,
    metrics: Metrics,
}

impl XdsStatus {
    /// Number of streams past their first request (they have a node).
    pub fn connected(&self) -> usize {
        self.inner.connected.load(Ordering::Relaxed)
    }

    fn shard(&self, stream: u64) -> &Mutex<Shard> {
        &self.inner.shards[(stream % SHARDS as u64) as usize]
    }

    /// Adds a stream; the returned status is the stream's to write.
    pub(crate) fn register(
        &self,
        stream: u64,
        node_id: &str,
        delta: bool,
        secrets_allowed: bool,
    ) -> Arc<StreamStatus> {
        let connected_at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let node_id: Arc<str> = node_id.into();
        let status = Arc::new(StreamStatus {
            node_id: node_id.clone(),
            stream,
            delta,
            connected_at,
            generation: AtomicU64::new(0),
            types: Default::default(),
            resources: Mutex::default(),
            secrets_allowed,
        });
        lock(self.shard(stream)).insert((node_id, stream), status.clone());
        self.inner.connected.fetch_add(1, Ordering::Relaxed);
        status
    }

    pub(crate) fn unregister(&self, status: &StreamStatus) {
        let key = (status.node_id.clone(), status.stream);
        if lock(self.shard(status.stream)).remove(&key).is_some() {
            self.inner.connected.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Up to `limit` connected proxies whose node id sorts after `after`, in node id order,
    /// each with its newest stream (a reconnect may overlap the old stream for a while).
    /// Each shard is locked only to collect `Arc`s.
    pub fn page(&self, after: Option<&str>, limit: usize) -> Vec<Arc<StreamStatus>> {
        let start = match after {
            Some(node) => Bound::Excluded((Arc::<str>::from(node), u64::MAX)),
            None => Bound::Unbounded,
        };
        let mut found: Vec<Arc<StreamStatus>> = Vec::new();
        for shard in &self.inner.shards {
            let shard = lock(shard);
            // The first `limit` proxies of the whole registry are among the first `limit`
            // of each shard: stop a shard after its `limit`-th distinct node.
            let mut nodes = 0;
            let mut last: Option<&str> = None;
            for ((node, _), status) in shard.range((start.clone(), Bound::Unbounded)) {
                if last != Some(node.as_ref()) {
                    if nodes == limit {
                        break;
                    }
                    nodes += 1;
                    last = Some(node.as_ref());
                }
                found.push(status.clone());
            }
        }
        // Newest stream first within a node, then one per node.
        found.sort_by(|a, b| {
            a.node_id
                .cmp(&b.node_id)
                .then_with(|| b.stream.cmp(&a.stream))
        });
        found.dedup_by(|later, first| later.node_id == first.node_id);
        found.truncate(limit);
        found
    }

    /// The newest connected stream of one proxy.
    pub fn proxy(&self, node_id: &str) -> Option<Arc<StreamStatus>> {
        let node: Arc<str> = node_id.into();
        let range = (node.clone(), 0)..=(node, u64::MAX);
        self.inner
            .shards
            .iter()
            .filter_map(|shard| {
                lock(shard)
                    .range(range.clone())
                    .next_back()
                    .map(|(_, s)| s.clone())
            })
            .max_by_key(|s| s.stream)
    }

    /// Every connected proxy by node id with its subscribed names, built page by page
    /// (for tests and tools in the process; the admin view streams pages instead).
    pub fn syncz_json(&self) -> Value {
        const PAGE: usize = 256;
        let mut out = Map::new();
        let mut after: Option<String> = None;
        loop {
            let page = self.page(after.as_deref(), PAGE);
            for status in &page {
                out.insert(status.node_id().to_string(), status.view().to_json(true));
            }
            match page.last() {
                Some(last) if page.len() == PAGE => after = Some(last.node_id().to_string()),
                _ => return Value::Object(out),
            }
        }
    }

    pub(crate) fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Prometheus text exposition of the server's metrics.
    pub fn render_metrics(&self) -> String {
        self.inner.metrics.render(self.connected())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NODE: &str = "sidecar~10.0.0.1~a.default~default.svc.cluster.local";

    #[test]
    fn syncz_lists_proxies_by_node_id() {
        let status = XdsStatus::default();
        let stream = status.register(1, NODE, true, false);
        let names: BTreeSet<String> = ["a".to_string()].into();
        let view = TypeView {
            version_sent: "v1".into(),
            names: Arc::new(names),
            ..Default::default()
        };
        stream.set_type(type_url::ENDPOINT, &view);
        let json = status.syncz_json();
        let proxy = &json[NODE];
        assert_eq!(proxy["delta"], true);
        assert_eq!(proxy["endpoints"]["version_sent"], "v1");
        assert_eq!(proxy["endpoints"]["names"], json!(["a"]));
        assert_eq!(proxy["endpoints"]["name_count"], 1);
        assert!(proxy.get("clusters").is_none());
        assert_eq!(status.connected(), 1);
        status.unregister(&stream);
        assert_eq!(status.connected(), 0);
        assert_eq!(status.syncz_json(), json!({}));
        // Unregistering twice does not miscount.
        status.unregister(&stream);
        assert_eq!(status.connected(), 0);
    }

    #[test]
    fn published_views_share_the_names() {
        let status = XdsStatus::default();
        let stream = status.register(1, NODE, false, false);
        let mut view = TypeView {
            names: Arc::new(["x".to_string()].into()),
            ..Default::default()
        };
        stream.set_type(type_url::ROUTE, &view);
        view.nonce_sent = "n1".into();
        stream.set_type(type_url::ROUTE, &view);
        let snapshot = stream.view();
        let (url, published) = &snapshot.types[0];
        assert_eq!(*url, type_url::ROUTE);
        assert_eq!(published.nonce_sent, "n1");
        assert!(Arc::ptr_eq(&published.names, &view.names));
    }

    #[test]
    fn pages_follow_node_ids_with_the_newest_stream_per_proxy() {
        let status = XdsStatus::default();
        // 40 proxies over every shard; proxy 7 has reconnected (streams 7 and 107).
        let mut streams: Vec<_> = (0..40u64)
            .map(|i| status.register(i, &format!("node-{i:02}"), false, false))
            .collect();
        streams.push(status.register(107, "node-07", true, false));
        assert_eq!(status.connected(), 41);

        let mut seen = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = status.page(after.as_deref(), 6);
            assert!(page.len() <= 6);
            seen.extend(page.iter().map(|s| (s.node_id().to_string(), s.stream())));
            match page.last() {
                Some(last) if page.len() == 6 => after = Some(last.node_id().to_string()),
                _ => break,
            }
        }
        let expected: Vec<(String, u64)> = (0..40u64)
            .map(|i| (format!("node-{i:02}"), if i == 7 { 107 } else { i }))
            .collect();
        assert_eq!(seen, expected);

        assert_eq!(status.proxy("node-07").unwrap().stream(), 107);
        assert!(status.proxy("node-99").is_none());
        status.unregister(&streams.pop().unwrap());
        assert_eq!(status.proxy("node-07").unwrap().stream(), 7);
    }

    #[test]
    fn concurrent_streams_update_and_leave_without_losing_entries() {
        let status = XdsStatus::default();
        let threads: Vec<_> = (0..4u64)
            .map(|t| {
                let status = status.clone();
                std::thread::spawn(move || {
                    for i in 0..200u64 {
                        let id = t * 1000 + i;
                        let stream = status.register(id, &format!("node-{id}"), false, false);
                        for n in 0..5 {
                            let view = TypeView {
                                responses: n,
                                ..Default::default()
                            };
                            stream.set_type(type_url::CLUSTER, &view);
                        }
                        stream.set_resources(3, ProxyResources::default());
                        // Every other stream leaves again.
                        if i % 2 == 1 {
                            status.unregister(&stream);
                        }
                    }
                })
            })
            .collect();
        // A reader pages through while the writers run.
        for _ in 0..20 {
            let page = status.page(None, 50);
            assert!(page.windows(2).all(|w| w[0].node_id() < w[1].node_id()));
        }
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(status.connected(), 400);
        let json = status.syncz_json();
        let proxies = json.as_object().unwrap();
        assert_eq!(proxies.len(), 400);
        assert_eq!(proxies["node-2000"]["clusters"]["responses"], 4);
        assert_eq!(proxies["node-2000"]["generation"], 3);
        assert!(proxies.get("node-2001").is_none());
    }

    #[test]
    fn a_panic_while_holding_a_stream_lock_does_not_poison_the_views() {
        let status = XdsStatus::default();
        let stream = status.register(1, NODE, false, false);
        let s = stream.clone();
        let _ = std::thread::spawn(move || {
            let _guard = s.types[0].lock().unwrap();
            panic!("telemetry writer failed");
        })
        .join();
        assert!(stream.types[0].is_poisoned());
        stream.set_type(type_url::CLUSTER, &TypeView::default());
        assert_eq!(status.syncz_json()[NODE]["clusters"]["responses"], 0);
    }
}
