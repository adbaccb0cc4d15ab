//! Serving cost of one push to 100 connected SotW proxies, with the real `XdsServer` and
//! 100 tonic ADS clients in this process (one HTTP/2 connection each) over loopback.
//!
//! The mesh: 1,000 clusters, 1,000 endpoint sets of 3 pods, 50 listeners and 50 route
//! tables, encoded once and shared by every proxy. Each iteration publishes a new
//! generation and measures until every client has received and ACKed the new versions:
//! - `full/100`: every resource changed; done when all four types are ACKed everywhere.
//! - `endpoints_only/100`: one service's endpoints changed (a pod replaced); SotW still
//!   sends every subscribed endpoint set; done when the new endpoint version is ACKed.
//!
//! Building the new generation (encoding) is outside the measured time; the clients'
//! work (decoding responses, sending ACKs) shares the 2 cores and is inside it.

mod xds_support;

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode};
use meshd::xds::type_url;
use xds_support::{connect_clients, wait_for_acks, MeshConfig, Server};

const CLIENTS: usize = 100;

fn push(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut config = MeshConfig::full(1);
    for t in type_url::PUSH_ORDER {
        let (count, bytes) = config.size(t);
        if count > 0 {
            eprintln!(
                "{}: {count} resources, {bytes} encoded bytes",
                type_url::short_name(t)
            );
        }
    }
    let (server, mut acks) = runtime.block_on(async {
        let server = Server::start(&config).await;
        let mut acks = connect_clients(server.addr, &config, 0, CLIENTS).await;
        let all: Vec<(&str, String)> = [
            type_url::CLUSTER,
            type_url::ENDPOINT,
            type_url::LISTENER,
            type_url::ROUTE,
        ]
        .into_iter()
        .map(|t| (t, config.version(t)))
        .collect();
        wait_for_acks(&mut acks, CLIENTS, &all).await;
        (server, acks)
    });
    eprintln!("{CLIENTS} clients connected and in sync");

    let mut group = c.benchmark_group("push");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));

    let mut rev = 1;
    group.bench_function(format!("full/{CLIENTS}"), |b| {
        b.iter_custom(|iterations| {
            let mut total = Duration::ZERO;
            for _ in 0..iterations {
                rev += 1;
                config = MeshConfig::full(rev);
                let wanted: Vec<(&str, String)> = [
                    type_url::CLUSTER,
                    type_url::ENDPOINT,
                    type_url::LISTENER,
                    type_url::ROUTE,
                ]
                .into_iter()
                .map(|t| (t, config.version(t)))
                .collect();
                total += runtime.block_on(async {
                    let start = Instant::now();
                    server.publish(&config);
                    wait_for_acks(&mut acks, CLIENTS, &wanted).await;
                    start.elapsed()
                });
            }
            total
        })
    });

    group.bench_function(format!("endpoints_only/{CLIENTS}"), |b| {
        b.iter_custom(|iterations| {
            let mut total = Duration::ZERO;
            for _ in 0..iterations {
                rev += 1;
                config = config.with_endpoint_change(rev as usize % xds_support::SERVICES, rev);
                let wanted = [(type_url::ENDPOINT, config.version(type_url::ENDPOINT))];
                total += runtime.block_on(async {
                    let start = Instant::now();
                    server.publish(&config);
                    wait_for_acks(&mut acks, CLIENTS, &wanted).await;
                    start.elapsed()
                });
            }
            total
        })
    });
    group.finish();
}

criterion_group!(benches, push);
criterion_main!(benches);
