//! What the xDS server exposes about itself: the sync state of every connected stream (for
//! /debug/syncz) and its Prometheus metrics (for /metrics). Stream tasks write here; the
//! admin server reads through a cheap clone of `XdsStatus`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::envoy::resource::type_url;

/// Sync state of one type on one stream, as shown by /debug/syncz.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TypeView {
    pub wildcard: bool,
    /// Names explicitly subscribed (sorted). Shared, and replaced only when the
    /// subscription changes, so publishing a view after each request copies no names.
    pub names: Arc<Vec<String>>,
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

/// One connected stream.
#[derive(Debug, Clone, Serialize)]
pub struct StreamView {
    pub stream: u64,
    pub delta: bool,
    /// Seconds since the Unix epoch.
    pub connected_at: u64,
    pub generation: u64,
    pub types: BTreeMap<&'static str, TypeView>,
}

/// A cheap handle on the server's shared state for debug views and metrics.
#[derive(Clone, Default)]
pub struct XdsStatus {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Stream id -> (node id, state).
    streams: Mutex<BTreeMap<u64, (String, StreamView)>>,
    metrics: Metrics,
}

impl XdsStatus {
    /// Number of streams past their first request (they have a node).
    pub fn connected(&self) -> usize {
        self.inner.streams.lock().expect("status lock").len()
    }

    /// Each connected proxy by node id, per type (short names). When a proxy has several
    /// streams (a reconnect overlapping the old stream), the newest is shown.
    pub fn syncz_json(&self) -> serde_json::Value {
        let streams = self.inner.streams.lock().expect("status lock");
        let mut out = serde_json::Map::new();
        for (node_id, view) in streams.values() {
            let mut entry = serde_json::Map::new();
            entry.insert("stream".into(), view.stream.into());
            entry.insert("delta".into(), view.delta.into());
            entry.insert("connected_at".into(), view.connected_at.into());
            entry.insert("generation".into(), view.generation.into());
            for (type_url, t) in &view.types {
                let value = serde_json::to_value(t).expect("type view serializes");
                entry.insert(type_url::short_name(type_url).into(), value);
            }
            // Streams iterate by id, so a later (newer) stream replaces an older one.
            out.insert(node_id.clone(), serde_json::Value::Object(entry));
        }
        serde_json::Value::Object(out)
    }

    pub(crate) fn register(&self, id: u64, node_id: &str, delta: bool) {
        let connected_at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let view = StreamView {
            stream: id,
            delta,
            connected_at,
            generation: 0,
            types: BTreeMap::new(),
        };
        let mut streams = self.inner.streams.lock().expect("status lock");
        streams.insert(id, (node_id.to_string(), view));
    }

    pub(crate) fn unregister(&self, id: u64) {
        self.inner.streams.lock().expect("status lock").remove(&id);
    }

    pub(crate) fn set_type(&self, id: u64, type_url: &'static str, view: TypeView) {
        let mut streams = self.inner.streams.lock().expect("status lock");
        if let Some((_, s)) = streams.get_mut(&id) {
            s.types.insert(type_url, view);
        }
    }

    pub(crate) fn set_generation(&self, id: u64, generation: u64) {
        let mut streams = self.inner.streams.lock().expect("status lock");
        if let Some((_, s)) = streams.get_mut(&id) {
            s.generation = generation;
        }
    }

    pub(crate) fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Prometheus text exposition of the server's metrics.
    pub fn render_metrics(&self) -> String {
        let m = &self.inner.metrics;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP pilot_xds Number of proxies connected over xDS."
        );
        let _ = writeln!(out, "# TYPE pilot_xds gauge");
        let _ = writeln!(out, "pilot_xds {}", self.connected());
        counter_by_type(
            &mut out,
            "pilot_xds_pushes",
            "xDS responses sent, by type.",
            &m.pushes,
        );
        counter_by_type(
            &mut out,
            "pilot_total_xds_rejects",
            "xDS responses rejected by proxies (NACK), by type.",
            &m.rejects,
        );
        counter_by_type(
            &mut out,
            "meshd_xds_oversized_responses_total",
            "xDS responses not sent because they exceed the message size limit, by type.",
            &m.oversized,
        );
        let _ = writeln!(
            out,
            "# HELP meshd_xds_streams_refused_total xDS streams refused, by reason."
        );
        let _ = writeln!(out, "# TYPE meshd_xds_streams_refused_total counter");
        for (reason, c) in [
            ("not_ready", &m.refused_not_ready),
            ("rate_limited", &m.refused_rate_limited),
        ] {
            let _ = writeln!(
                out,
                "meshd_xds_streams_refused_total{{reason=\"{reason}\"}} {}",
                c.load(Ordering::Relaxed)
            );
        }
        m.push_time.render(
            &mut out,
            "pilot_xds_push_time",
            "Seconds to build and queue one xDS response, by type.",
        );
        m.config_size.render(
            &mut out,
            "pilot_xds_config_size_bytes",
            "Size of the resources in one xDS response, by type.",
        );
        m.convergence.render(
            &mut out,
            "pilot_proxy_convergence_time",
            "Seconds from a new configuration generation to its last response on a stream.",
        );
        out
    }
}

/// The metric label of a type URL.
pub fn metric_type(type_url: &str) -> &'static str {
    match type_url {
        type_url::CLUSTER => "cds",
        type_url::ENDPOINT => "eds",
        type_url::LISTENER => "lds",
        type_url::ROUTE => "rds",
        type_url::SECRET => "sds",
        _ => "unknown",
    }
}

fn type_index(type_url: &str) -> Option<usize> {
    type_url::PUSH_ORDER.iter().position(|t| *t == type_url)
}

fn counter_by_type(out: &mut String, name: &str, help: &str, values: &[AtomicU64; 5]) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} counter");
    for (t, v) in type_url::PUSH_ORDER.iter().zip(values) {
        let _ = writeln!(
            out,
            "{name}{{type=\"{}\"}} {}",
            metric_type(t),
            v.load(Ordering::Relaxed)
        );
    }
}

#[derive(Default)]
pub(crate) struct Metrics {
    pushes: [AtomicU64; 5],
    rejects: [AtomicU64; 5],
    oversized: [AtomicU64; 5],
    pub(crate) refused_not_ready: AtomicU64,
    pub(crate) refused_rate_limited: AtomicU64,
    push_time: Histograms,
    config_size: Histograms,
    convergence: Histograms,
}

impl Metrics {
    pub(crate) fn pushed(&self, type_url: &str, elapsed: Duration, bytes: usize) {
        if let Some(i) = type_index(type_url) {
            self.pushes[i].fetch_add(1, Ordering::Relaxed);
        }
        let label = metric_type(type_url);
        self.push_time
            .observe(label, &TIME_BUCKETS, elapsed.as_secs_f64());
        self.config_size.observe(label, &SIZE_BUCKETS, bytes as f64);
    }

    pub(crate) fn rejected(&self, type_url: &str) {
        if let Some(i) = type_index(type_url) {
            self.rejects[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn oversized(&self, type_url: &str) {
        if let Some(i) = type_index(type_url) {
            self.oversized[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn converged(&self, elapsed: Duration) {
        self.convergence
            .observe("", &TIME_BUCKETS, elapsed.as_secs_f64());
    }
}

const TIME_BUCKETS: [f64; 10] = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0];
const SIZE_BUCKETS: [f64; 8] = [1e3, 1e4, 1e5, 1e6, 4e6, 1e7, 4e7, 1e8];

/// Histograms keyed by a `type` label ("" for none).
#[derive(Default)]
struct Histograms {
    series: Mutex<BTreeMap<&'static str, Histogram>>,
}

struct Histogram {
    bounds: &'static [f64],
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histograms {
    fn observe(&self, label: &'static str, bounds: &'static [f64], value: f64) {
        let mut series = self.series.lock().expect("metrics lock");
        let h = series.entry(label).or_insert_with(|| Histogram {
            bounds,
            counts: vec![0; bounds.len()],
            sum: 0.0,
            count: 0,
        });
        for (i, b) in h.bounds.iter().enumerate() {
            if value <= *b {
                h.counts[i] += 1;
            }
        }
        h.sum += value;
        h.count += 1;
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} histogram");
        let series = self.series.lock().expect("metrics lock");
        for (label, h) in series.iter() {
            let (open, sep) = if label.is_empty() {
                (String::new(), "")
            } else {
                (format!("type=\"{label}\""), ",")
            };
            for (b, c) in h.bounds.iter().zip(&h.counts) {
                let _ = writeln!(out, "{name}_bucket{{{open}{sep}le=\"{b}\"}} {c}");
            }
            let _ = writeln!(out, "{name}_bucket{{{open}{sep}le=\"+Inf\"}} {}", h.count);
            let braces = if open.is_empty() {
                String::new()
            } else {
                format!("{{{open}}}")
            };
            let _ = writeln!(out, "{name}_sum{braces} {}", h.sum);
            let _ = writeln!(out, "{name}_count{braces} {}", h.count);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histograms() {
        let status = XdsStatus::default();
        status
            .metrics()
            .pushed(type_url::CLUSTER, Duration::from_millis(2), 2000);
        status.metrics().rejected(type_url::ROUTE);
        status.metrics().converged(Duration::from_millis(20));
        let text = status.render_metrics();
        assert!(text.contains("pilot_xds 0\n"));
        assert!(text.contains("pilot_xds_pushes{type=\"cds\"} 1\n"));
        assert!(text.contains("pilot_total_xds_rejects{type=\"rds\"} 1\n"));
        assert!(text.contains("pilot_xds_push_time_bucket{type=\"cds\",le=\"0.005\"} 1\n"));
        assert!(text.contains("pilot_xds_config_size_bytes_count{type=\"cds\"} 1\n"));
        assert!(text.contains("pilot_proxy_convergence_time_bucket{le=\"0.05\"} 1\n"));
        assert!(text.contains("meshd_xds_streams_refused_total{reason=\"not_ready\"} 0\n"));
    }

    #[test]
    fn syncz_lists_proxies_by_node_id() {
        let status = XdsStatus::default();
        status.register(
            1,
            "sidecar~10.0.0.1~a.default~default.svc.cluster.local",
            true,
        );
        let view = TypeView {
            version_sent: "v1".into(),
            ..Default::default()
        };
        status.set_type(1, type_url::CLUSTER, view);
        let json = status.syncz_json();
        let proxy = &json["sidecar~10.0.0.1~a.default~default.svc.cluster.local"];
        assert_eq!(proxy["delta"], true);
        assert_eq!(proxy["clusters"]["version_sent"], "v1");
        assert_eq!(status.connected(), 1);
        status.unregister(1);
        assert_eq!(status.connected(), 0);
    }
}
