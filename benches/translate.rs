//! Translation cost for one sidecar in meshes of 10 to 10,000 services (3 pods each):
//! time for a fresh model generation (nothing cached) and for a second proxy in the same
//! namespace (shared parts reused), for the next generation after an endpoint-only change
//! (unchanged parts carried over), plus the encoded size of what the proxy receives, and
//! the canonical-encoding walk (`xds::canonical`) over those resources alone.

mod support;

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use meshd::envoy::canonical;
use meshd::mesh::ProxyId;
use meshd::translate::Translator;
use meshd::xds::type_url;

fn encoded_bytes(translator: &Translator, proxy: &ProxyId) -> (usize, usize) {
    let resources = translator.proxy_resources(proxy);
    let mut bytes = 0;
    let mut count = 0;
    for url in type_url::PUSH_ORDER {
        for r in resources.of_type(url).values() {
            bytes += r.body.value.len();
            count += 1;
        }
    }
    (count, bytes)
}

fn translation(c: &mut Criterion) {
    let mut group = c.benchmark_group("translate_one_sidecar");
    group.sample_size(10);
    for services in [10usize, 100, 1_000, 10_000] {
        let model = Arc::new(support::synthetic_mesh(services));
        let proxy = ProxyId::parse(&support::node_id_of(0)).expect("node id");
        let (count, bytes) = encoded_bytes(&Translator::new(model.clone()), &proxy);
        eprintln!(
            "services={services}: one sidecar receives {count} resources, {bytes} encoded bytes"
        );
        group.bench_function(format!("cold/{services}"), |b| {
            b.iter_batched(
                || Translator::new(model.clone()),
                |translator| translator.proxy_resources(&proxy),
                BatchSize::LargeInput,
            )
        });
        let warm = Translator::new(model.clone());
        warm.proxy_resources(&proxy);
        let neighbour = ProxyId::parse(&support::node_id_of(support::NAMESPACES)).expect("node id");
        group.bench_function(format!("warm_same_namespace/{services}"), |b| {
            b.iter(|| warm.proxy_resources(&neighbour))
        });
        // The next generation after an endpoint-only change: only endpoints are re-encoded.
        let mut moved = support::synthetic_mesh(services);
        support::move_one_endpoint(&mut moved);
        let moved = Arc::new(moved);
        group.bench_function(format!("next_after_endpoint_change/{services}"), |b| {
            b.iter(|| Translator::next(&warm, moved.clone()).proxy_resources(&proxy))
        });
        // The canonical-encoding walk alone over everything the sidecar receives (already
        // canonical, so nothing is copied): the share of `cold` spent on map ordering.
        let resources = warm.proxy_resources(&proxy);
        group.bench_function(format!("canonical_check/{services}"), |b| {
            b.iter(|| {
                for url in type_url::PUSH_ORDER {
                    for r in resources.of_type(url).values() {
                        let out = canonical::canonical(url, r.body.value.clone()).expect("known");
                        debug_assert_eq!(out.as_ptr(), r.body.value.as_ptr());
                    }
                }
            })
        });
    }
    group.finish();
}

criterion_group!(benches, translation);
criterion_main!(benches);
