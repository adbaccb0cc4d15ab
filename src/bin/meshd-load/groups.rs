//! The figures of each kind of bad proxy (`behaviour`), kept apart from the healthy ones so
//! that the healthy proxies' delays show whether the bad ones slow them down.

use std::fmt::Write;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use serde::Serialize;

use crate::behaviour::Behaviour;
use crate::proxy::Protocol;
use crate::report::{per_proxy, spread, PerProxy, Spread};
use crate::stats::ProxyStats;

/// One simulated proxy as the report sees it.
pub struct Member {
    pub behaviour: Behaviour,
    pub protocol: Protocol,
    pub stats: Arc<ProxyStats>,
    /// Bytes and responses when all proxies had synced (the change's starting point).
    pub cold: (u64, u64),
}

/// Figures of the proxies of one bad kind.
#[derive(Debug, Serialize)]
pub struct BadReport {
    pub kind: Behaviour,
    pub proxies: usize,
    pub delta_proxies: usize,
    /// Proxies that ACKed every type they asked for (only slow ones can).
    pub synced: usize,
    pub sync: Option<Spread>,
    pub streams_opened: u64,
    pub stream_errors: u64,
    pub cold_bytes_per_proxy: PerProxy,
    pub cold_responses_per_proxy: PerProxy,
    /// Proxies that received a new version after the change, and its delay.
    pub change_received: Option<usize>,
    pub change_delay: Option<Spread>,
    pub change_responses_per_proxy: Option<PerProxy>,
}

/// The report of every bad kind present among `members`; `changed` when a change was made.
pub fn bad_reports(members: &[Member], changed: bool) -> Vec<BadReport> {
    [Behaviour::Nack, Behaviour::Slow, Behaviour::NeverAck]
        .into_iter()
        .filter_map(|kind| {
            let of: Vec<&Member> = members.iter().filter(|m| m.behaviour == kind).collect();
            (!of.is_empty()).then(|| report_of(kind, &of, changed))
        })
        .collect()
}

fn report_of(kind: Behaviour, of: &[&Member], changed: bool) -> BadReport {
    let load = |f: fn(&ProxyStats) -> u64| -> u64 { of.iter().map(|m| f(&m.stats)).sum() };
    let syncs: Vec<_> = of.iter().filter_map(|m| m.stats.synced_at()).collect();
    let cold_bytes: Vec<u64> = of.iter().map(|m| m.cold.0).collect();
    let cold_responses: Vec<u64> = of.iter().map(|m| m.cold.1).collect();
    let delays: Vec<_> = of.iter().filter_map(|m| m.stats.change_delay()).collect();
    let change_responses: Vec<u64> = of
        .iter()
        .map(|m| m.stats.responses.load(Ordering::SeqCst) - m.cold.1)
        .collect();
    BadReport {
        kind,
        proxies: of.len(),
        delta_proxies: of.iter().filter(|m| m.protocol == Protocol::Delta).count(),
        synced: syncs.len(),
        sync: spread(syncs),
        streams_opened: load(|s| s.streams.load(Ordering::SeqCst)),
        stream_errors: load(|s| s.stream_errors.load(Ordering::SeqCst)),
        cold_bytes_per_proxy: per_proxy(&cold_bytes),
        cold_responses_per_proxy: per_proxy(&cold_responses),
        change_received: changed.then_some(delays.len()),
        change_delay: if changed { spread(delays) } else { None },
        change_responses_per_proxy: changed.then(|| per_proxy(&change_responses)),
    }
}

/// Table lines for the bad kinds.
pub fn table(out: &mut String, reports: &[BadReport]) {
    for r in reports {
        let name = format!("{} proxies", r.kind.name());
        let _ = writeln!(
            out,
            "{name:<28} {} ({} Delta); {} synced; streams {} opened, {} ended",
            r.proxies, r.delta_proxies, r.synced, r.streams_opened, r.stream_errors
        );
        let _ = writeln!(
            out,
            "{:<28} mean {} B, max {} B; responses mean {}, max {}",
            "  cold start per proxy",
            r.cold_bytes_per_proxy.mean,
            r.cold_bytes_per_proxy.max,
            r.cold_responses_per_proxy.mean,
            r.cold_responses_per_proxy.max
        );
        if let Some(received) = r.change_received {
            let delay = r
                .change_delay
                .as_ref()
                .map(|s| {
                    format!(
                        "p50 {} ms, p90 {} ms, p99 {} ms, max {} ms",
                        s.p50_ms, s.p90_ms, s.p99_ms, s.max_ms
                    )
                })
                .unwrap_or_else(|| "-".into());
            let _ = writeln!(
                out,
                "{:<28} {received} received ({delay}); responses mean {}",
                "  change",
                r.change_responses_per_proxy
                    .as_ref()
                    .map(|p| p.mean)
                    .unwrap_or(0.0)
            );
        }
    }
}
