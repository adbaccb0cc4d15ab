//! Cost of the CA: one workload certificate (a fresh P-256 key, signed by meshd's root)
//! and a rotation wave, 1,000 proxies renewed at once (keys are per proxy, so one
//! issuance each), each certificate also encoded into its `default` and `ROOTCA` SDS
//! secrets as the renewal task does. Both run on one
//! thread, as one `spawn_blocking` issuance does; renewals of different identities run
//! in parallel on the blocking pool, so a wave's wall time is about this divided by the
//! cores free for it.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use meshd::ca::{sds, Authority};

const WAVE: usize = 1_000;

fn ca(c: &mut Criterion) {
    let authority = Authority::in_memory().expect("a root");
    let ttl = Duration::from_secs(24 * 3600);
    let mut group = c.benchmark_group("ca");
    group.throughput(Throughput::Elements(1));
    group.bench_function("issue/p256", |b| {
        b.iter(|| {
            authority
                .issue("spiffe://cluster.local/ns/default/sa/bench", ttl)
                .expect("issued")
        })
    });
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .measurement_time(Duration::from_secs(20))
        .throughput(Throughput::Elements(WAVE as u64));
    group.bench_function("rotation_wave/1000", |b| {
        b.iter(|| {
            for i in 0..WAVE {
                let uri = format!("spiffe://cluster.local/ns/ns-{}/sa/sa-{i}", i % 50);
                let issued = authority.issue(&uri, ttl).expect("issued");
                std::hint::black_box(sds::secrets(&issued, authority.trust_bundle()));
            }
        })
    });
    group.finish();
}

criterion_group!(benches, ca);
criterion_main!(benches);
