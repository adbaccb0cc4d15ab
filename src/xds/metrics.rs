//! The xDS server's Prometheus metrics (Istio's `pilot_*` names): counters and histograms
//! by type. Every observation is a few relaxed atomic operations, so stream tasks never
//! wait on each other (or on a scrape) to record one.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::envoy::resource::type_url;

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

pub(crate) fn type_index(type_url: &str) -> Option<usize> {
    type_url::PUSH_ORDER.iter().position(|t| *t == type_url)
}

#[derive(Default)]
pub(crate) struct Metrics {
    pushes: [AtomicU64; 5],
    rejects: [AtomicU64; 5],
    oversized: [AtomicU64; 5],
    pub(crate) refused_not_ready: AtomicU64,
    pub(crate) refused_rate_limited: AtomicU64,
    push_time: ByType,
    config_size: ByType,
    convergence: Histogram,
    fanout: Histogram,
}

impl Metrics {
    pub(crate) fn pushed(&self, type_url: &str, elapsed: Duration, bytes: usize) {
        if let Some(i) = type_index(type_url) {
            self.pushes[i].fetch_add(1, Ordering::Relaxed);
        }
        self.push_time
            .of(type_url)
            .observe(&TIME_BUCKETS, elapsed.as_secs_f64());
        self.config_size
            .of(type_url)
            .observe(&SIZE_BUCKETS, bytes as f64);
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
            .observe(&TIME_BUCKETS, elapsed.as_secs_f64());
    }

    pub(crate) fn fanned_out(&self, elapsed: Duration) {
        self.fanout.observe(&TIME_BUCKETS, elapsed.as_secs_f64());
    }

    /// Prometheus text exposition; `connected` is the `pilot_xds` gauge.
    pub(crate) fn render(&self, connected: usize) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP pilot_xds Number of proxies connected over xDS."
        );
        let _ = writeln!(out, "# TYPE pilot_xds gauge");
        let _ = writeln!(out, "pilot_xds {connected}");
        counter_by_type(
            &mut out,
            "pilot_xds_pushes",
            "xDS responses sent, by type.",
            &self.pushes,
        );
        counter_by_type(
            &mut out,
            "pilot_total_xds_rejects",
            "xDS responses rejected by proxies (NACK), by type.",
            &self.rejects,
        );
        counter_by_type(
            &mut out,
            "meshd_xds_oversized_responses_total",
            "xDS responses not sent because they exceed the message size limit, by type.",
            &self.oversized,
        );
        let _ = writeln!(
            out,
            "# HELP meshd_xds_streams_refused_total xDS streams refused, by reason."
        );
        let _ = writeln!(out, "# TYPE meshd_xds_streams_refused_total counter");
        for (reason, c) in [
            ("not_ready", &self.refused_not_ready),
            ("rate_limited", &self.refused_rate_limited),
        ] {
            let _ = writeln!(
                out,
                "meshd_xds_streams_refused_total{{reason=\"{reason}\"}} {}",
                c.load(Ordering::Relaxed)
            );
        }
        self.push_time.render(
            &mut out,
            "pilot_xds_push_time",
            "Seconds to build and queue one xDS response, by type.",
            &TIME_BUCKETS,
        );
        self.config_size.render(
            &mut out,
            "pilot_xds_config_size_bytes",
            "Size of the resources in one xDS response, by type.",
            &SIZE_BUCKETS,
        );
        header(
            &mut out,
            "pilot_proxy_convergence_time",
            "Seconds from meshd seeing an input change to the proxy acknowledging every \
             response it caused (rejected changes not counted).",
        );
        self.convergence
            .render(&mut out, "pilot_proxy_convergence_time", "", &TIME_BUCKETS);
        header(
            &mut out,
            "meshd_xds_push_fanout_time",
            "Seconds from the first stream pushing a generation to the last proxy \
             acknowledging it.",
        );
        self.fanout
            .render(&mut out, "meshd_xds_push_fanout_time", "", &TIME_BUCKETS);
        out
    }
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

fn header(out: &mut String, name: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} histogram");
}

const TIME_BUCKETS: [f64; 10] = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0];
const SIZE_BUCKETS: [f64; 8] = [1e3, 1e4, 1e5, 1e6, 4e6, 1e7, 4e7, 1e8];
/// The most buckets any histogram here has.
const MAX_BUCKETS: usize = 10;

/// One histogram per served type (in push order), plus one for an unknown type.
#[derive(Default)]
struct ByType {
    series: [Histogram; 6],
}

impl ByType {
    fn of(&self, type_url: &str) -> &Histogram {
        &self.series[type_index(type_url).unwrap_or(5)]
    }

    /// Only types observed at least once are listed, as series appear in Prometheus.
    fn render(&self, out: &mut String, name: &str, help: &str, bounds: &[f64]) {
        header(out, name, help);
        let labels = type_url::PUSH_ORDER
            .iter()
            .map(|t| metric_type(t))
            .chain(["unknown"]);
        for (label, h) in labels.zip(&self.series) {
            h.render(out, name, &format!("type=\"{label}\""), bounds);
        }
    }
}

/// A histogram of atomics: per-bucket counts (not cumulative: an observation increments one
/// bucket, the rendering sums them), the total count, and the sum as the bits of an `f64`.
#[derive(Default)]
struct Histogram {
    /// Observations in (bound[i-1], bound[i]]; the last slot in use counts those above every
    /// bound.
    buckets: [AtomicU64; MAX_BUCKETS + 1],
    count: AtomicU64,
    sum_bits: AtomicU64,
}

impl Histogram {
    fn observe(&self, bounds: &[f64], value: f64) {
        let i = bounds
            .iter()
            .position(|b| value <= *b)
            .unwrap_or(bounds.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        // Lock-free add to an f64: retried only when another observation raced this one.
        let _ = self
            .sum_bits
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some((f64::from_bits(bits) + value).to_bits())
            });
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// The series lines (no header); nothing before the first observation. `labels` is
    /// empty or `key="value"` pairs.
    fn render(&self, out: &mut String, name: &str, labels: &str, bounds: &[f64]) {
        let count = self.count.load(Ordering::Relaxed);
        if count == 0 {
            return;
        }
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0;
        for (b, c) in bounds.iter().zip(&self.buckets) {
            cumulative += c.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{b}\"}} {cumulative}");
        }
        // Counted from the buckets, so a scrape racing an observation stays consistent
        // (+Inf equals _count).
        let total = cumulative + self.buckets[bounds.len()].load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {total}");
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let sum = f64::from_bits(self.sum_bits.load(Ordering::Relaxed));
        let _ = writeln!(out, "{name}_sum{braces} {sum}");
        let _ = writeln!(out, "{name}_count{braces} {total}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histograms() {
        let m = Metrics::default();
        m.pushed(type_url::CLUSTER, Duration::from_millis(2), 2000);
        m.pushed(type_url::CLUSTER, Duration::from_secs(60), 2000);
        m.rejected(type_url::ROUTE);
        m.converged(Duration::from_millis(20));
        m.fanned_out(Duration::from_millis(700));
        let text = m.render(3);
        assert!(text.contains("pilot_xds 3\n"));
        assert!(text.contains("pilot_xds_pushes{type=\"cds\"} 2\n"));
        assert!(text.contains("pilot_total_xds_rejects{type=\"rds\"} 1\n"));
        assert!(text.contains("pilot_xds_push_time_bucket{type=\"cds\",le=\"0.001\"} 0\n"));
        assert!(text.contains("pilot_xds_push_time_bucket{type=\"cds\",le=\"0.005\"} 1\n"));
        assert!(text.contains("pilot_xds_push_time_bucket{type=\"cds\",le=\"30\"} 1\n"));
        assert!(text.contains("pilot_xds_push_time_bucket{type=\"cds\",le=\"+Inf\"} 2\n"));
        assert!(text.contains("pilot_xds_push_time_sum{type=\"cds\"} 60.002\n"));
        assert!(text.contains("pilot_xds_config_size_bytes_count{type=\"cds\"} 2\n"));
        assert!(!text.contains("pilot_xds_push_time_count{type=\"eds\"}"));
        assert!(text.contains("pilot_proxy_convergence_time_bucket{le=\"0.05\"} 1\n"));
        assert!(text.contains("pilot_proxy_convergence_time_count 1\n"));
        assert!(text.contains("meshd_xds_push_fanout_time_bucket{le=\"0.5\"} 0\n"));
        assert!(text.contains("meshd_xds_push_fanout_time_bucket{le=\"1\"} 1\n"));
        assert!(text.contains("meshd_xds_streams_refused_total{reason=\"not_ready\"} 0\n"));
    }

    #[test]
    fn concurrent_observations_are_all_counted() {
        let m = std::sync::Arc::new(Metrics::default());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let m = m.clone();
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        m.pushed(type_url::ENDPOINT, Duration::from_millis(1), 10);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let text = m.render(0);
        assert!(
            text.contains("pilot_xds_pushes{type=\"eds\"} 4000\n"),
            "{text}"
        );
        assert!(text.contains("pilot_xds_config_size_bytes_sum{type=\"eds\"} 40000\n"));
        assert!(text.contains("pilot_xds_push_time_bucket{type=\"eds\",le=\"0.001\"} 4000\n"));
    }
}
