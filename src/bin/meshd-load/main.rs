//! `meshd-load`: a load generator for ADS servers (meshd, istiod, any other). It runs N
//! simulated Envoy sidecars, each a tokio task on its own HTTP/2 connection, measures how
//! long they take to sync from cold and how long a change takes to reach each of them, and
//! reads the server's memory and CPU from /proc.
//!
//! It is a binary of its own (not part of the library) because it only speaks the xDS
//! protocol: nothing in it depends on how meshd builds configuration.

mod backoff;
mod behaviour;
mod groups;
mod grpc;
mod nodes;
mod procstat;
mod proxy;
mod report;
mod stats;
mod subscriptions;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use tonic::transport::Endpoint;

use crate::behaviour::{Behaviour, Mix};
use crate::groups::Member;
use crate::procstat::ProcSample;
use crate::proxy::{Protocol, Proxy};
use crate::report::{per_proxy, spread, ChangeReport, Report, ServerReport};
use crate::stats::{ProxyStats, Run};

#[derive(Parser, Debug)]
#[command(
    name = "meshd-load",
    about = "Simulate many Envoy sidecars against an ADS server and measure sync and change delays"
)]
struct Args {
    /// The ADS server's plaintext gRPC address (host:port).
    #[arg(long, default_value = "127.0.0.1:15010")]
    xds_addr: String,
    /// Simulated proxies, each on its own connection.
    #[arg(long, default_value_t = 100)]
    proxies: usize,
    /// Namespaces the synthetic pods are spread over (ns-0, ns-1, ...).
    #[arg(long, default_value_t = 10)]
    namespaces: usize,
    /// Fraction of the proxies (0 to 1) that speak Delta xDS; the rest speak SotW.
    #[arg(long, default_value_t = 0.0, value_parser = fraction)]
    delta_fraction: f64,
    /// Longest wait for all proxies to sync.
    #[arg(long, default_value = "60s", value_parser = meshd::duration::parse_duration)]
    sync_timeout: Duration,
    /// Shell command run once all proxies synced (e.g. one that edits a watched file);
    /// the delay until each proxy receives a new version is measured from its start.
    #[arg(long)]
    change_cmd: Option<String>,
    /// Longest wait, after the change command started, for every proxy to receive it.
    #[arg(long, default_value = "30s", value_parser = meshd::duration::parse_duration)]
    change_timeout: Duration,
    /// The server's process id: its RSS and CPU time are read from /proc/<pid>.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Bind proxy i's connection to this IPv4 address plus i (e.g. 127.1.0.0 on loopback),
    /// so that the server sees one peer address per proxy as it would in a cluster.
    #[arg(long)]
    source_ip_base: Option<std::net::Ipv4Addr>,
    /// Fraction of the proxies that reject (NACK) every response.
    #[arg(long, default_value_t = 0.0, value_parser = fraction)]
    nack_fraction: f64,
    /// Fraction of the proxies that read slowly: a 64 KiB HTTP/2 window and a pause of
    /// `--slow-delay` before reading each response.
    #[arg(long, default_value_t = 0.0, value_parser = fraction)]
    slow_fraction: f64,
    /// A slow proxy's pause before reading each response.
    #[arg(long, default_value = "1s", value_parser = meshd::duration::parse_duration)]
    slow_delay: Duration,
    /// Fraction of the proxies that read every response and never ACK one.
    #[arg(long, default_value_t = 0.0, value_parser = fraction)]
    never_ack_fraction: f64,
    /// Print only the JSON line, not the table.
    #[arg(long)]
    json_only: bool,
}

fn fraction(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(f) if (0.0..=1.0).contains(&f) => Ok(f),
        _ => Err(format!("{text:?} is not a fraction between 0 and 1")),
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // Two worker threads at most: the generator shares the machine with the server and
    // must not take more of it than a couple of busy Envoys would.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let report = runtime.block_on(run(&args))?;
    if !args.json_only {
        print!("{}", report.table());
    }
    println!("{}", serde_json::to_string(&report)?);
    // Proxy tasks are still connected; dropping the runtime closes them.
    runtime.shutdown_background();
    Ok(())
}

fn server_sample(pid: Option<u32>) -> anyhow::Result<Option<ProcSample>> {
    pid.map(|pid| procstat::sample(pid).map_err(anyhow::Error::msg))
        .transpose()
}

/// Waits until `done()` or the deadline; true if done.
async fn wait_until(run: &Run, deadline: Instant, done: impl Fn() -> bool) -> bool {
    loop {
        let woken = run.progress.notified();
        if done() {
            return true;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return done();
        }
        // The timeout also covers a wake-up lost between the check and the wait.
        let _ = tokio::time::timeout(left.min(Duration::from_millis(200)), woken).await;
    }
}

async fn run(args: &Args) -> anyhow::Result<Report> {
    if args.proxies == 0 {
        bail!("--proxies must be at least 1");
    }
    let endpoint = Endpoint::from_shared(format!("http://{}", args.xds_addr))
        .with_context(|| format!("--xds-addr {:?}", args.xds_addr))?
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(5));
    let mix = Mix {
        nack: args.nack_fraction,
        slow: args.slow_fraction,
        never_ack: args.never_ack_fraction,
    };
    mix.check().map_err(anyhow::Error::msg)?;
    let behaviours = mix.assign(args.proxies);
    // Only proxies that ACK can be synced; the run waits for those.
    let acking = behaviours.iter().filter(|b| b.acks()).count();
    let healthy: Vec<usize> = (0..args.proxies)
        .filter(|&i| behaviours[i] == Behaviour::Healthy)
        .collect();
    let before = server_sample(args.server_pid)?;
    let pods = nodes::synthetic_pods(args.proxies, args.namespaces);
    let delta_count = (args.proxies as f64 * args.delta_fraction).round() as usize;
    let run = Arc::new(Run::new());
    let mut stats = Vec::with_capacity(args.proxies);
    let mut protocols = Vec::with_capacity(args.proxies);
    let mut tasks = Vec::with_capacity(args.proxies);
    for (index, pod) in pods.iter().enumerate() {
        // Delta proxies spread evenly among the SotW ones.
        let is_delta =
            (index + 1) * delta_count / args.proxies > index * delta_count / args.proxies;
        let proxy_stats = Arc::new(ProxyStats::default());
        stats.push(proxy_stats.clone());
        let protocol = if is_delta {
            Protocol::Delta
        } else {
            Protocol::Sotw
        };
        protocols.push(protocol);
        let proxy = Proxy {
            index,
            node: nodes::node_for(pod),
            protocol,
            stats: proxy_stats,
            behaviour: behaviours[index],
            slow_delay: args.slow_delay,
        };
        tasks.push(tokio::spawn(proxy::run(
            proxy,
            match args.source_ip_base {
                Some(base) => endpoint
                    .clone()
                    .local_address(Some(nth_address(base, index)?.into())),
                None => endpoint.clone(),
            },
            run.clone(),
        )));
    }
    let n = args.proxies;
    wait_until(&run, run.start + args.sync_timeout, || {
        run.synced.load(Ordering::SeqCst) == acking
    })
    .await;
    let synced_sample = server_sample(args.server_pid)?;
    let all_cold_bytes: Vec<u64> = stats
        .iter()
        .map(|s| s.bytes.load(Ordering::SeqCst))
        .collect();
    let all_cold_responses: Vec<u64> = stats
        .iter()
        .map(|s| s.responses.load(Ordering::SeqCst))
        .collect();
    let all_stats = stats.clone();
    // The figures of the healthy proxies; the bad ones are reported per kind (`groups`).
    let stats: Vec<Arc<ProxyStats>> = healthy.iter().map(|&i| stats[i].clone()).collect();
    let cold_bytes: Vec<u64> = healthy.iter().map(|&i| all_cold_bytes[i]).collect();
    let cold_responses: Vec<u64> = healthy.iter().map(|&i| all_cold_responses[i]).collect();
    let sync_times: Vec<Duration> = stats.iter().filter_map(|s| s.synced_at()).collect();
    let all_synced = sync_times.len() == healthy.len();
    let mut report = Report {
        proxies: n,
        delta_proxies: delta_count,
        healthy_proxies: healthy.len(),
        synced: sync_times.len(),
        cold_start_ms: all_synced
            .then(|| sync_times.iter().max().copied().map(report::ms))
            .flatten(),
        sync: spread(sync_times),
        streams_opened: stats.iter().map(|s| s.streams.load(Ordering::SeqCst)).sum(),
        stream_errors: stats
            .iter()
            .map(|s| s.stream_errors.load(Ordering::SeqCst))
            .sum(),
        cold_bytes_per_proxy: per_proxy(&cold_bytes),
        cold_responses_per_proxy: per_proxy(&cold_responses),
        server_cpu_s_cold_start: before
            .zip(synced_sample)
            .map(|(b, s)| round3(s.cpu_s - b.cpu_s)),
        change: None,
        bad_clients: Vec::new(),
        server: None,
    };
    let mut after = None;
    if let Some(command) = &args.change_cmd {
        run.arm_change();
        let armed = Instant::now();
        let status = tokio::process::Command::new("sh")
            .args(["-c", command])
            .status()
            .await
            .with_context(|| format!("running --change-cmd {command:?}"))?;
        wait_until(&run, armed + args.change_timeout, || {
            run.changed.load(Ordering::SeqCst) == n
        })
        .await;
        after = server_sample(args.server_pid)?;
        let delays: Vec<Duration> = stats.iter().filter_map(|s| s.change_delay()).collect();
        let delta_of = |now: Vec<u64>, then: &[u64]| -> Vec<u64> {
            now.iter().zip(then).map(|(a, b)| a - b).collect()
        };
        let bytes = delta_of(
            stats
                .iter()
                .map(|s| s.bytes.load(Ordering::SeqCst))
                .collect(),
            &cold_bytes,
        );
        let responses = delta_of(
            stats
                .iter()
                .map(|s| s.responses.load(Ordering::SeqCst))
                .collect(),
            &cold_responses,
        );
        report.change = Some(ChangeReport {
            command: command.clone(),
            exit_ok: status.success(),
            received: delays.len(),
            never: healthy.len() - delays.len(),
            delay: spread(delays),
            bytes_per_proxy: per_proxy(&bytes),
            responses_per_proxy: per_proxy(&responses),
            server_cpu_s: synced_sample
                .zip(after)
                .map(|(s, a)| round3(a.cpu_s - s.cpu_s)),
        });
    }
    let members: Vec<Member> = all_stats
        .iter()
        .enumerate()
        .map(|(i, s)| Member {
            behaviour: behaviours[i],
            protocol: protocols[i],
            stats: s.clone(),
            cold: (all_cold_bytes[i], all_cold_responses[i]),
        })
        .collect();
    report.bad_clients = groups::bad_reports(&members, args.change_cmd.is_some());
    report.server = args
        .server_pid
        .zip(before)
        .map(|(pid, before)| ServerReport {
            pid,
            before,
            synced: synced_sample,
            after,
        });
    for task in tasks {
        task.abort();
    }
    Ok(report)
}

/// `base` plus `index`, as long as it stays in the same /8 (loopback's, for example).
fn nth_address(base: std::net::Ipv4Addr, index: usize) -> anyhow::Result<std::net::Ipv4Addr> {
    let address = u32::from(base)
        .checked_add(u32::try_from(index)?)
        .map(std::net::Ipv4Addr::from)
        .filter(|a| a.octets()[0] == base.octets()[0]);
    address.with_context(|| format!("--source-ip-base {base} plus {index} leaves {base}/8"))
}

fn round3(v: f64) -> f64 {
    (v * 1e3).round() / 1e3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_addresses_count_up_within_the_slash_8() {
        let base = "127.1.0.0".parse().unwrap();
        assert_eq!(nth_address(base, 257).unwrap().to_string(), "127.1.1.1");
        let edge = "127.255.255.255".parse().unwrap();
        assert!(nth_address(edge, 1).is_err());
    }
}
