//! Translation with Istio traffic rules (issue 6): one sidecar and one ingress gateway in a
//! mesh of 1,000 services, each with a VirtualService (three matches) and a
//! DestinationRule (two subsets), with and without a root-namespace Sidecar that limits
//! proxies to their own namespace. Cold translations (nothing cached), plus the number of
//! resources and encoded bytes each proxy receives (printed once per case).

#[path = "traffic_support/mod.rs"]
mod traffic_support;

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use meshd::mesh::ProxyId;
use meshd::translate::Translator;
use meshd::xds::type_url;

fn size(translator: &Translator, proxy: &ProxyId) -> String {
    let resources = translator.proxy_resources(proxy);
    let mut out = Vec::new();
    for url in type_url::PUSH_ORDER {
        let of_type = resources.of_type(url);
        let bytes: usize = of_type.values().map(|r| r.body.value.len()).sum();
        if !of_type.is_empty() {
            out.push(format!(
                "{} {}/{bytes}B",
                url.rsplit('.').next().unwrap_or(url),
                of_type.len()
            ));
        }
    }
    out.join(", ")
}

fn traffic(c: &mut Criterion) {
    let mut group = c.benchmark_group("translate_traffic");
    group.sample_size(10);
    let services = 1_000;
    for (label, with_sidecar) in [("unscoped", false), ("sidecar_own_namespace", true)] {
        let model = Arc::new(traffic_support::traffic_mesh(services, with_sidecar));
        for (who, proxy) in [
            ("sidecar", traffic_support::sidecar()),
            ("gateway", traffic_support::gateway()),
        ] {
            eprintln!(
                "{label}/{who}/{services}: {}",
                size(&Translator::new(model.clone()), &proxy)
            );
            group.bench_function(format!("{label}/{who}/{services}"), |b| {
                b.iter_batched(
                    || Translator::new(model.clone()),
                    |translator| translator.proxy_resources(&proxy),
                    BatchSize::LargeInput,
                )
            });
        }
    }
    group.finish();
}

criterion_group!(benches, traffic);
criterion_main!(benches);
