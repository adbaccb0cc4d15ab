//! Convergence against a real kube-apiserver: after a random sequence of changes (Services,
//! EndpointSlices, a VirtualService created, updated and deleted through kubectl) and
//! faults (every connection dropped, `410 Gone` after etcd compaction, meshd restarted),
//! what meshd serves a proxy equals what a meshd cold-started on the final state serves.
//!
//! A few cases only (each runs real processes); one API server for all, a namespace per case.

mod common;
mod kube;

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

use common::Meshd;
use kube::ads::AdsProbe;
use kube::faults::compact_while_cut_off;
use kube::meshd::{self as km, wait_until};
use kube::objects;
use kube::proxy::DropProxy;
use kube::ApiServer;

const PROBE: &str = "sidecar~10.244.0.99~probe.default~default.svc.cluster.local";
const SERVICES: u8 = 3;

#[derive(Debug, Clone)]
enum Op {
    ApplyService {
        svc: u8,
        port: u16,
    },
    DeleteService {
        svc: u8,
    },
    ApplySlice {
        svc: u8,
        ip: u8,
    },
    DeleteSlice {
        svc: u8,
    },
    ApplyVirtualService {
        svc: u8,
        tag: u8,
    },
    DeleteVirtualService {
        svc: u8,
    },
    /// The proxy between meshd and the API server drops every connection.
    DropConnections,
    /// Resumed watches get `410 Gone` and relist.
    Gone,
    RestartMeshd,
}

fn op() -> impl Strategy<Value = Op> {
    let svc = 0..SERVICES;
    prop_oneof![
        3 => (svc.clone(), prop_oneof![Just(9080u16), Just(9090)])
            .prop_map(|(svc, port)| Op::ApplyService { svc, port }),
        1 => svc.clone().prop_map(|svc| Op::DeleteService { svc }),
        3 => (svc.clone(), 1..4u8).prop_map(|(svc, ip)| Op::ApplySlice { svc, ip }),
        1 => svc.clone().prop_map(|svc| Op::DeleteSlice { svc }),
        2 => (svc.clone(), 0..3u8).prop_map(|(svc, tag)| Op::ApplyVirtualService { svc, tag }),
        1 => svc.prop_map(|svc| Op::DeleteVirtualService { svc }),
        1 => Just(Op::DropConnections),
        1 => Just(Op::Gone),
        1 => Just(Op::RestartMeshd),
    ]
}

/// The API server, the proxy in front of it, and the long-running meshd behind the proxy.
struct Fixture {
    dir: PathBuf,
    server: ApiServer,
    proxy: DropProxy,
    via_proxy: PathBuf,
    meshd: RefCell<Option<(Meshd, PathBuf)>>,
    starts: Cell<u32>,
}

impl Fixture {
    /// Starts (or restarts) the long-running meshd, with a new log, and waits until ready.
    fn restart_meshd(&self) {
        self.meshd.borrow_mut().take();
        self.starts.set(self.starts.get() + 1);
        let log = self.dir.join(format!("meshd-{}.log", self.starts.get()));
        let meshd = km::spawn(&self.via_proxy, &log, &[]);
        km::wait_ready(&meshd, &log);
        *self.meshd.borrow_mut() = Some((meshd, log));
    }

    fn log(&self) -> PathBuf {
        self.meshd.borrow().as_ref().unwrap().1.clone()
    }

    fn apply(&self, op: &Op, ns: &str, round: usize) {
        let svc = |i: &u8| format!("svc-{i}");
        let delete = |what: String| {
            self.server
                .kubectl(&["delete", "-n", ns, &what, "--ignore-not-found"], "");
        };
        match op {
            Op::ApplyService { svc: i, port } => {
                self.server.apply(&objects::service(&svc(i), ns, *port))
            }
            Op::DeleteService { svc: i } => delete(format!("service/{}", svc(i))),
            Op::ApplySlice { svc: i, ip } => self.server.apply(&objects::endpoint_slice(
                &format!("{}-1", svc(i)),
                ns,
                &svc(i),
                9080,
                &format!("10.1.{i}.{ip}"),
            )),
            Op::DeleteSlice { svc: i } => delete(format!("endpointslice/{}-1", svc(i))),
            Op::ApplyVirtualService { svc: i, tag } => self.server.apply(
                &objects::virtual_service(&svc(i), ns, &svc(i), &format!("tag-{tag}")),
            ),
            Op::DeleteVirtualService { svc: i } => delete(format!("virtualservice/{}", svc(i))),
            Op::DropConnections => self.proxy.drop_connections(),
            Op::Gone => compact_while_cut_off(
                &self.server,
                &self.proxy,
                &self.log(),
                ns,
                &format!("gone-{round}"),
            ),
            Op::RestartMeshd => self.restart_meshd(),
        }
    }
}

/// Waits until both probes hold every type at the same versions.
fn converged(long: &AdsProbe, cold: &AdsProbe, log: &Path) -> BTreeMap<String, String> {
    wait_until(
        log,
        "the long-running meshd to serve what a cold start serves",
        || {
            let (a, b) = (long.versions(), cold.versions());
            a.len() == 4 && a == b
        },
    );
    long.versions()
}

#[test]
fn after_changes_and_faults_meshd_serves_what_a_cold_start_serves() {
    let tmp = tempfile::tempdir().unwrap();
    let server = ApiServer::start_with(&tmp.path().join("kube"), "--watch-cache=false", None);
    server.apply_crd(
        objects::VIRTUAL_SERVICE_CRD,
        "virtualservices.networking.istio.io",
    );
    let proxy = DropProxy::start(server.apiserver_port());
    let via_proxy = tmp.path().join("via-proxy");
    server.kubeconfig_with(&via_proxy, Some(proxy.port), None);
    let fixture = Fixture {
        dir: tmp.path().to_path_buf(),
        server,
        proxy,
        via_proxy,
        meshd: RefCell::new(None),
        starts: Cell::new(0),
    };
    fixture.restart_meshd();

    let cases = Cell::new(0u32);
    let mut runner = TestRunner::new(Config {
        cases: 4,
        // Each case takes seconds of real processes: report the failing sequence as found.
        max_shrink_iters: 0,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&prop::collection::vec(op(), 4..10), |ops| {
        cases.set(cases.get() + 1);
        let ns = format!("conv-{}", cases.get());
        fixture.server.apply(&objects::namespace(&ns));
        for (round, op) in ops.iter().enumerate() {
            fixture.apply(op, &ns, round);
        }
        let log = fixture.log();
        let cold_log = tmp.path().join(format!("cold-{}.log", cases.get()));
        let cold = km::spawn(&fixture.server.kubeconfig(), &cold_log, &[]);
        km::wait_ready(&cold, &cold_log);
        let meshd = fixture.meshd.borrow();
        let long = &meshd.as_ref().unwrap().0;
        let long_probe = AdsProbe::connect(long.xds, PROBE);
        let cold_probe = AdsProbe::connect(cold.xds, PROBE);
        // The same input first (a change xDS does not show, such as a VirtualService for a
        // host that is not a service, would otherwise go unchecked), then the same versions.
        let input = |c: &serde_json::Value| (c["services"].clone(), c["istio"].clone());
        wait_until(
            &log,
            "the long-running meshd to hold the final objects",
            || input(&km::configz(long)) == input(&km::configz(&cold)),
        );
        let versions = converged(&long_probe, &cold_probe, &log);
        let (a, b) = (km::configz(long), km::configz(&cold));
        if input(&a) != input(&b) {
            return Err(TestCaseError::fail(format!(
                "same versions {versions:?} but different input:\n{a}\n{b}"
            )));
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!(
            "{e}\nlong-running meshd's log:\n{}",
            km::log_text(&fixture.log())
        );
    }
    assert_eq!(cases.get(), 4, "every case ran");
}
