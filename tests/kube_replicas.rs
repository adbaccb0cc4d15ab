//! Two `meshd serve --kubernetes` replicas on one real API server serve one mesh: a proxy
//! gets the same version of every type from either (versions are content hashes), before
//! and after a change, so a proxy moving between replicas gets no spurious push.

mod common;
mod kube;

use std::collections::BTreeMap;

use kube::ads::AdsProbe;
use kube::meshd::{self as km, serves, wait_configz, wait_until};
use kube::objects;
use kube::ApiServer;

const NS: &str = "shop";
const PROBE: &str = "sidecar~10.244.0.99~probe.shop~shop.svc.cluster.local";

/// Waits until both probes hold every type at the same versions and `done` holds for them;
/// returns them.
fn same_versions(
    a: &AdsProbe,
    b: &AdsProbe,
    log: &std::path::Path,
    done: impl Fn(&BTreeMap<String, String>) -> bool,
) -> BTreeMap<String, String> {
    wait_until(log, "both replicas to serve the same versions", || {
        let (va, vb) = (a.versions(), b.versions());
        va.len() == 4 && va == vb && done(&va)
    });
    a.versions()
}

#[test]
fn two_replicas_serve_a_proxy_identical_versions() {
    let tmp = tempfile::tempdir().unwrap();
    let server = ApiServer::start(&tmp.path().join("kube"));
    server.apply_crd(
        objects::VIRTUAL_SERVICE_CRD,
        "virtualservices.networking.istio.io",
    );
    server.apply(&objects::namespace(NS));
    server.apply(&objects::service("reviews", NS, 9080));
    server.apply(&objects::endpoint_slice(
        "reviews-1",
        NS,
        "reviews",
        9080,
        "10.1.0.5",
    ));
    server.apply(&objects::virtual_service("reviews", NS, "reviews", "one"));

    let logs = [
        tmp.path().join("meshd-a.log"),
        tmp.path().join("meshd-b.log"),
    ];
    let replicas: Vec<_> = logs
        .iter()
        .map(|log| km::spawn(&server.kubeconfig(), log, &[]))
        .collect();
    for (meshd, log) in replicas.iter().zip(&logs) {
        km::wait_ready(meshd, log);
        wait_configz(meshd, log, "reviews and its VirtualService", |c| {
            serves(c, "reviews.shop.svc.cluster.local")
                && c["istio"]["VirtualService"] == serde_json::json!(["shop/reviews"])
        });
    }
    let a = AdsProbe::connect(replicas[0].xds, PROBE);
    let b = AdsProbe::connect(replicas[1].xds, PROBE);
    let first = same_versions(&a, &b, &logs[0], |_| true);
    // What each replica itself says it sent is what the probes hold.
    for meshd in &replicas {
        assert_eq!(km::sent_versions(meshd, PROBE).as_ref(), Some(&first));
    }

    // A change to every type's content: a new service and endpoint, a new route header.
    server.apply(&objects::service("ratings", NS, 9080));
    server.apply(&objects::endpoint_slice(
        "ratings-1",
        NS,
        "ratings",
        9080,
        "10.1.0.6",
    ));
    server.apply(&objects::virtual_service("reviews", NS, "reviews", "two"));
    let changed = ["clusters", "endpoints", "routes"];
    let second = same_versions(&a, &b, &logs[0], |v| {
        changed.iter().all(|t| v[*t] != first[*t])
    });
    for meshd in &replicas {
        assert_eq!(km::sent_versions(meshd, PROBE).as_ref(), Some(&second));
    }
}
