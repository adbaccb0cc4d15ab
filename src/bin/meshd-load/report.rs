//! The run's figures: percentiles over the proxies, printed as a table for people and as one
//! JSON line for scripts.

use std::fmt::Write;
use std::time::Duration;

use serde::Serialize;

use crate::groups::BadReport;
use crate::procstat::ProcSample;

/// Figures of a set of durations, in milliseconds.
#[derive(Debug, Serialize, PartialEq)]
pub struct Spread {
    pub count: usize,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// Nearest-rank percentiles of `values`; `None` when empty.
pub fn spread(mut values: Vec<Duration>) -> Option<Spread> {
    if values.is_empty() {
        return None;
    }
    values.sort();
    let rank = |p: f64| {
        let index = ((p / 100.0) * values.len() as f64).ceil() as usize;
        ms(values[index.clamp(1, values.len()) - 1])
    };
    Some(Spread {
        count: values.len(),
        p50_ms: rank(50.0),
        p90_ms: rank(90.0),
        p99_ms: rank(99.0),
        max_ms: ms(*values.last().unwrap()),
    })
}

pub fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// Mean and max of a per-proxy count.
#[derive(Debug, Serialize)]
pub struct PerProxy {
    pub mean: f64,
    pub max: u64,
}

pub fn per_proxy(values: &[u64]) -> PerProxy {
    PerProxy {
        mean: if values.is_empty() {
            0.0
        } else {
            (values.iter().sum::<u64>() as f64 / values.len() as f64 * 10.0).round() / 10.0
        },
        max: values.iter().copied().max().unwrap_or(0),
    }
}

#[derive(Debug, Serialize)]
pub struct ChangeReport {
    pub command: String,
    pub exit_ok: bool,
    pub received: usize,
    pub never: usize,
    pub delay: Option<Spread>,
    pub bytes_per_proxy: PerProxy,
    pub responses_per_proxy: PerProxy,
    pub server_cpu_s: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct ServerReport {
    pub pid: u32,
    pub before: ProcSample,
    pub synced: Option<ProcSample>,
    pub after: Option<ProcSample>,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub proxies: usize,
    pub delta_proxies: usize,
    /// Proxies with no bad behaviour: the figures below (sync, change) are theirs.
    pub healthy_proxies: usize,
    pub synced: usize,
    /// From the start until the last proxy synced; absent unless all did.
    pub cold_start_ms: Option<f64>,
    pub sync: Option<Spread>,
    pub streams_opened: u64,
    pub stream_errors: u64,
    pub cold_bytes_per_proxy: PerProxy,
    pub cold_responses_per_proxy: PerProxy,
    pub server_cpu_s_cold_start: Option<f64>,
    pub change: Option<ChangeReport>,
    /// One entry per kind of bad proxy present (`--nack-fraction` and the like).
    pub bad_clients: Vec<BadReport>,
    pub server: Option<ServerReport>,
}

fn opt(v: Option<f64>, unit: &str) -> String {
    v.map(|v| format!("{v} {unit}"))
        .unwrap_or_else(|| "-".to_string())
}

fn spread_row(out: &mut String, name: &str, s: &Option<Spread>) {
    match s {
        Some(s) => {
            let _ = writeln!(
                out,
                "{name:<28} p50 {} ms, p90 {} ms, p99 {} ms, max {} ms ({} proxies)",
                s.p50_ms, s.p90_ms, s.p99_ms, s.max_ms, s.count
            );
        }
        None => {
            let _ = writeln!(out, "{name:<28} -");
        }
    }
}

impl Report {
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<28} {} ({} Delta, {} SotW)",
            "proxies",
            self.proxies,
            self.delta_proxies,
            self.proxies - self.delta_proxies
        );
        let _ = writeln!(
            out,
            "{:<28} {} of {} healthy proxies",
            "synced", self.synced, self.healthy_proxies
        );
        let _ = writeln!(
            out,
            "{:<28} {}",
            "cold start (all synced)",
            opt(self.cold_start_ms, "ms")
        );
        spread_row(&mut out, "time to sync", &self.sync);
        let _ = writeln!(
            out,
            "{:<28} {} opened, {} ended or refused",
            "streams", self.streams_opened, self.stream_errors
        );
        let _ = writeln!(
            out,
            "{:<28} mean {} B, max {} B; responses mean {}, max {}",
            "cold start per proxy",
            self.cold_bytes_per_proxy.mean,
            self.cold_bytes_per_proxy.max,
            self.cold_responses_per_proxy.mean,
            self.cold_responses_per_proxy.max
        );
        let _ = writeln!(
            out,
            "{:<28} {}",
            "server CPU, cold start",
            opt(self.server_cpu_s_cold_start, "s")
        );
        if let Some(c) = &self.change {
            let _ = writeln!(
                out,
                "{:<28} {:?} ({})",
                "change command",
                c.command,
                if c.exit_ok { "ok" } else { "failed" }
            );
            let _ = writeln!(
                out,
                "{:<28} {} received, {} never",
                "change", c.received, c.never
            );
            spread_row(&mut out, "change delay", &c.delay);
            let _ = writeln!(
                out,
                "{:<28} mean {} B, max {} B; responses mean {}, max {}",
                "change per proxy",
                c.bytes_per_proxy.mean,
                c.bytes_per_proxy.max,
                c.responses_per_proxy.mean,
                c.responses_per_proxy.max
            );
            let _ = writeln!(
                out,
                "{:<28} {}",
                "server CPU, change",
                opt(c.server_cpu_s, "s")
            );
        }
        crate::groups::table(&mut out, &self.bad_clients);
        if let Some(s) = &self.server {
            let rss = |p: &Option<ProcSample>| {
                p.map(|p| format!("{} KiB", p.rss_kib))
                    .unwrap_or_else(|| "-".into())
            };
            let _ = writeln!(
                out,
                "{:<28} before {} KiB, synced {}, after change {}",
                format!("server {} RSS", s.pid),
                s.before.rss_kib,
                rss(&s.synced),
                rss(&s.after)
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let values = (1..=100).map(Duration::from_millis).collect();
        let s = spread(values).unwrap();
        assert_eq!(
            (s.p50_ms, s.p90_ms, s.p99_ms, s.max_ms),
            (50.0, 90.0, 99.0, 100.0)
        );
        let one = spread(vec![Duration::from_millis(7)]).unwrap();
        assert_eq!((one.p50_ms, one.p99_ms), (7.0, 7.0));
        assert!(spread(Vec::new()).is_none());
    }
}
