//! The Kubernetes source's stores without an API server: synthetic watcher events fed to
//! `KindStore`s as kube-runtime would hand them over. Prints figures; not criterion.
//!
//! - memory held for 10,000 Pods and 2,000 Services (live heap from a counting allocator,
//!   per object, beside the size of the objects as received);
//! - a relist of 10,000 unchanged Pods: its time, and that it changes nothing (so the
//!   source publishes nothing);
//! - one watch event to an input set leaving the source (apply + the set built from every
//!   store, as the source publishes it), and on through the real build pipeline (model,
//!   translator, generation installed: the moment pushes start), debounce set to zero.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::api::DynamicObject;
use kube::runtime::watcher::Event;
use meshd::pipeline::generator::MeshGenerator;
use meshd::pipeline::{self, Debounce};
use meshd::source::kinds::lookup;
use meshd::source::kube::store::KindStore;
use meshd::source::InputSet;
use meshd::translate::scope::TranslateOptions;
use serde_json::json;

static LIVE: AtomicUsize = AtomicUsize::new(0);

/// The system allocator, counting live bytes.
struct Counting;

// SAFETY: every call is forwarded unchanged to the system allocator; only a counter changes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            LIVE.fetch_add(layout.size(), Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        LIVE.fetch_sub(layout.size(), Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            LIVE.fetch_sub(layout.size(), Relaxed);
            LIVE.fetch_add(new_size, Relaxed);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// A Pod as a Deployment's ReplicaSet makes it and the kubelet reports it: managed fields,
/// kubectl's annotations, a typical spec and status.
fn pod(i: usize, services: usize) -> DynamicObject {
    let app = format!("svc-{}", i % services);
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": format!("{app}-7d4b9c8f6d-{i:05}"),
            "generateName": format!("{app}-7d4b9c8f6d-"),
            "namespace": "shop",
            "uid": format!("5f1c2d3e-0000-4000-8000-{i:012}"),
            "resourceVersion": format!("{}", 100_000 + i),
            "creationTimestamp": "2026-12-01T10:00:00Z",
            "labels": {"app": app, "version": "v1", "pod-template-hash": "7d4b9c8f6d"},
            "annotations": {
                "kubectl.kubernetes.io/restartedAt": "2026-12-01T09:59:00Z",
                "prometheus.io/scrape": "true",
                "prometheus.io/port": "15020",
            },
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                "name": format!("{app}-7d4b9c8f6d"), "uid": "9a8b7c6d", "controller": true,
                "blockOwnerDeletion": true}],
            "managedFields": [
                {"manager": "kube-controller-manager", "operation": "Update", "apiVersion": "v1",
                 "time": "2026-12-01T10:00:00Z", "fieldsType": "FieldsV1",
                 "fieldsV1": {"f:metadata": {"f:generateName": {}, "f:labels": {".": {},
                    "f:app": {}, "f:pod-template-hash": {}, "f:version": {}},
                    "f:ownerReferences": {".": {}}}, "f:spec": {"f:containers": {}}}},
                {"manager": "kubelet", "operation": "Update", "apiVersion": "v1",
                 "time": "2026-12-01T10:00:05Z", "fieldsType": "FieldsV1", "subresource": "status",
                 "fieldsV1": {"f:status": {"f:conditions": {}, "f:containerStatuses": {},
                    "f:hostIP": {}, "f:phase": {}, "f:podIP": {}, "f:podIPs": {}, "f:startTime": {}}}},
            ],
        },
        "spec": {
            "serviceAccountName": app,
            "nodeName": format!("node-{}", i % 50),
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst",
            "schedulerName": "default-scheduler",
            "volumes": [{"name": "kube-api-access", "projected": {"sources": [
                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}}]}}],
            "containers": [{
                "name": "app",
                "image": format!("registry.example.com/shop/{app}:1.4.2"),
                "imagePullPolicy": "IfNotPresent",
                "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
                "env": [{"name": "LOG_LEVEL", "value": "info"}, {"name": "PORT", "value": "8080"}],
                "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
                "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 5},
                "volumeMounts": [{"name": "kube-api-access", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": true}],
                "terminationMessagePath": "/dev/termination-log",
            }],
            "tolerations": [
                {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
                {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}],
        },
        "status": {
            "phase": "Running",
            "hostIP": format!("192.168.{}.{}", i % 50 / 250, i % 50),
            "podIP": format!("10.{}.{}.{}", 1 + i / 65_536, i / 256 % 256, i % 256),
            "podIPs": [{"ip": format!("10.{}.{}.{}", 1 + i / 65_536, i / 256 % 256, i % 256)}],
            "startTime": "2026-12-01T10:00:01Z",
            "qosClass": "Burstable",
            "conditions": [
                {"type": "PodReadyToStartContainers", "status": "True", "lastTransitionTime": "2026-12-01T10:00:02Z"},
                {"type": "Initialized", "status": "True", "lastTransitionTime": "2026-12-01T10:00:01Z"},
                {"type": "Ready", "status": "True", "lastTransitionTime": "2026-12-01T10:00:05Z"},
                {"type": "ContainersReady", "status": "True", "lastTransitionTime": "2026-12-01T10:00:05Z"},
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": "2026-12-01T10:00:00Z"}],
            "containerStatuses": [{"name": "app", "ready": true, "started": true, "restartCount": 0,
                "image": format!("registry.example.com/shop/{app}:1.4.2"),
                "imageID": "registry.example.com/shop/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                "containerID": format!("containerd://{i:064}"),
                "state": {"running": {"startedAt": "2026-12-01T10:00:04Z"}}}],
        },
    }))
    .unwrap()
}

fn service(i: usize) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": format!("svc-{i}"), "namespace": "shop",
            "uid": format!("0a1b2c3d-0000-4000-8000-{i:012}"),
            "resourceVersion": format!("{}", 50_000 + i),
            "labels": {"app": format!("svc-{i}")},
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration":
                format!(r#"{{"apiVersion":"v1","kind":"Service","metadata":{{"labels":{{"app":"svc-{i}"}},"name":"svc-{i}","namespace":"shop"}},"spec":{{"ports":[{{"name":"http","port":80,"targetPort":8080}}],"selector":{{"app":"svc-{i}"}}}}}}"#)},
            "managedFields": [{"manager": "kubectl-client-side-apply", "operation": "Update",
                "apiVersion": "v1", "time": "2026-12-01T09:00:00Z", "fieldsType": "FieldsV1",
                "fieldsV1": {"f:metadata": {"f:annotations": {}, "f:labels": {}},
                    "f:spec": {"f:ports": {}, "f:selector": {}}}}],
        },
        "spec": {
            "type": "ClusterIP",
            "clusterIP": format!("10.96.{}.{}", i / 256, i % 256),
            "clusterIPs": [format!("10.96.{}.{}", i / 256, i % 256)],
            "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack",
            "internalTrafficPolicy": "Cluster", "sessionAffinity": "None",
            "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}],
            "selector": {"app": format!("svc-{i}")},
        },
        "status": {"loadBalancer": {}},
    }))
    .unwrap()
}

/// Lists `objects` into `store` as one complete list; returns whether it changed the store.
fn list(store: &mut KindStore, objects: impl Iterator<Item = DynamicObject>) -> bool {
    store.apply(Event::Init);
    for object in objects {
        store.apply(Event::InitApply(object));
    }
    store.apply(Event::InitDone)
}

fn input_set(stores: &[&KindStore]) -> InputSet {
    let mut set = InputSet::default();
    for store in stores {
        store.add_to(&mut set);
    }
    set
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (pods, services, rounds) = if full {
        (10_000, 2_000, 11)
    } else {
        (100, 20, 1)
    };
    let kind = |api: &str, kind: &str| lookup(api, kind).unwrap();

    // Memory: what the stores hold once listed (each object is built just before it is
    // applied and dropped by the store, so only what the store keeps stays live).
    let raw_pod = serde_json::to_vec(&pod(0, services)).unwrap().len();
    let raw_service = serde_json::to_vec(&service(0)).unwrap().len();
    let before = LIVE.load(Relaxed);
    let mut pod_store = KindStore::new(kind("v1", "Pod"), "v1".into());
    assert!(list(&mut pod_store, (0..pods).map(|i| pod(i, services))));
    let after_pods = LIVE.load(Relaxed);
    let mut service_store = KindStore::new(kind("v1", "Service"), "v1".into());
    assert!(list(&mut service_store, (0..services).map(service)));
    let after_services = LIVE.load(Relaxed);
    let held_raw_pods: Vec<DynamicObject> = (0..pods).map(|i| pod(i, services)).collect();
    let raw_pods_live = LIVE.load(Relaxed) - after_services;
    drop(held_raw_pods);
    println!(
        "memory: {pods} Pods held in {} KiB ({} B/Pod; as received: {raw_pod} B of JSON, {} B/Pod as DynamicObject)",
        (after_pods - before) / 1024,
        (after_pods - before) / pods,
        raw_pods_live / pods,
    );
    println!(
        "memory: {services} Services held in {} KiB ({} B/Service; as received: {raw_service} B of JSON)",
        (after_services - after_pods) / 1024,
        (after_services - after_pods) / services,
    );

    // A relist of unchanged Pods (after a 410, say): changes nothing, so nothing is published.
    let mut relists = Vec::new();
    for _ in 0..rounds {
        let objects: Vec<DynamicObject> = (0..pods).map(|i| pod(i, services)).collect();
        let start = Instant::now();
        let changed = list(&mut pod_store, objects.into_iter());
        relists.push(start.elapsed());
        assert!(!changed, "an unchanged relist changed the store");
    }
    println!(
        "relist: {pods} unchanged Pods in {:?} (median of {rounds}); changed: false, published: 0",
        median(relists)
    );

    // One watch event to the input set leaving the source, then through the pipeline.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut namespace_store = KindStore::new(kind("v1", "Namespace"), "v1".into());
    list(
        &mut namespace_store,
        std::iter::once(serde_json::from_value(json!({"metadata": {"name": "shop"}})).unwrap()),
    );
    let (inputs_tx, inputs_rx) = tokio::sync::watch::channel(None);
    let generator = Arc::new(MeshGenerator::default());
    let (generations_tx, mut generations) = tokio::sync::watch::channel(0u64);
    let (_options_tx, options_rx) =
        tokio::sync::watch::channel(Arc::new(TranslateOptions::default()));
    let debounce = Debounce {
        quiet: Duration::ZERO,
        max: Duration::ZERO,
    };
    runtime.spawn(pipeline::run(
        inputs_rx,
        generator,
        generations_tx,
        debounce,
        false,
        options_rx,
        // No RequestAuthentication here: no JWKS to fetch.
        tokio::sync::watch::channel(Default::default()).1,
    ));
    // The first generation (a full build) before the timed updates.
    inputs_tx.send_replace(Some(Arc::new(input_set(&[
        &namespace_store,
        &service_store,
        &pod_store,
    ]))));
    runtime.block_on(async {
        generations.changed().await.unwrap();
    });
    let mut to_set = Vec::new();
    let mut to_generation = Vec::new();
    for round in 0..rounds {
        let mut moved = pod(round % pods, services);
        moved.data["status"]["podIP"] = json!(format!("10.200.0.{}", round + 1));
        moved.data["status"]["podIPs"] = json!([{"ip": format!("10.200.0.{}", round + 1)}]);
        let start = Instant::now();
        assert!(pod_store.apply(Event::Apply(moved)));
        let set = input_set(&[&namespace_store, &service_store, &pod_store]);
        inputs_tx.send_replace(Some(Arc::new(set)));
        to_set.push(start.elapsed());
        runtime.block_on(async {
            generations.changed().await.unwrap();
        });
        to_generation.push(start.elapsed());
    }
    println!(
        "event: one Pod update to the input set leaving the source in {:?}, to the generation \
         installed (pushes start) in {:?} (medians of {rounds}; {pods} Pods, {services} Services)",
        median(to_set),
        median(to_generation)
    );
}
