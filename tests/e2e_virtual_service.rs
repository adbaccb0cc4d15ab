//! End-to-end: VirtualService HTTP rules applied by real Envoy 1.40 sidecars in
//! network-namespace pods. A client pod calls the `web` service (two versions, subsets of a
//! DestinationRule) by its ClusterIP; what it gets back (and what the upstreams saw) shows each rule at work: weighted split, header
//! and source routing, retries, timeout, fault delay and abort, mirroring, redirect, rewrite and
//! header changes. Needs root and Envoy; fails (never skips) without them.

#[path = "e2e/mod.rs"]
mod harness;

use std::collections::BTreeMap;
use std::time::Duration;

use harness::envoy;
use harness::meshd::Meshd;
use harness::netns::Lab;
use harness::objects::{self, Port};
use harness::pod::Pod;
use harness::process::{run_timeout, wait_for, Proc};
use harness::traffic::app_command;
use harness::upstream::{self, Response};

const NS: &str = "shop";
const PORT: u16 = 8080;
/// Services and their ClusterIPs.
const SERVICES: [(&str, &str); 2] = [("web", "10.96.0.30"), ("shadow", "10.96.0.32")];
/// (service, pod, `version` label): web has two versions, subsets v1 and v2.
const BACKENDS: [(&str, &str, &str); 3] = [
    ("web", "web-v1", "v1"),
    ("web", "web-v2", "v2"),
    ("shadow", "shadow-0", "v1"),
];
const WEB_VIP: &str = "10.96.0.30";

const DESTINATION_RULE: &str = r#"apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: web, namespace: shop}
spec:
  host: web
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
"#;

const VIRTUAL_SERVICE: &str = r#"apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: web, namespace: shop}
spec:
  hosts: [web]
  http:
  - name: jason
    match: [{headers: {end-user: {exact: jason}}}]
    route: [{destination: {host: web, subset: v2}}]
  - name: from-client
    match: [{uri: {prefix: /by-source}, sourceLabels: {app: client}}]
    route: [{destination: {host: web, subset: v2}}]
  - name: from-others
    match: [{uri: {prefix: /for-others}, sourceLabels: {app: other}}]
    route: [{destination: {host: web, subset: v2}}]
  - name: split
    match: [{uri: {prefix: /split}}]
    route:
    - destination: {host: web, subset: v1}
      weight: 80
    - destination: {host: web, subset: v2}
      weight: 20
  - name: retry
    match: [{uri: {prefix: /retry}}]
    retries: {attempts: 3, retryOn: 5xx}
    route: [{destination: {host: web, subset: v1}}]
  - name: slow
    match: [{uri: {prefix: /slow}}]
    timeout: 500ms
    route: [{destination: {host: web, subset: v1}}]
  - name: delay
    match: [{uri: {prefix: /delay}}]
    fault: {delay: {fixedDelay: 1500ms, percentage: {value: 100}}}
    route: [{destination: {host: web, subset: v1}}]
  - name: abort
    match: [{uri: {prefix: /abort}}]
    fault: {abort: {httpStatus: 418, percentage: {value: 100}}}
    route: [{destination: {host: web, subset: v1}}]
  - name: mirror
    match: [{uri: {prefix: /mirror}}]
    mirror: {host: shadow}
    mirrorPercentage: {value: 100}
    route: [{destination: {host: web, subset: v1}}]
  - name: old
    match: [{uri: {prefix: /old}}]
    redirect: {uri: /new, authority: moved.example, redirectCode: 302}
  - name: rewrite
    match: [{uri: {prefix: /v1/}}]
    rewrite: {uri: /v2/, authority: rewritten.example}
    headers:
      request:
        set: {x-set: "yes"}
        add: {x-added: a}
        remove: [x-drop]
      response:
        set: {x-resp: from-mesh}
        remove: [content-type]
    route: [{destination: {host: web, subset: v1}}]
  - route: [{destination: {host: web, subset: v1}}]
"#;

/// meshd, the backend pods (upstream + sidecar each) and the client pod (sidecar only).
/// The upstreams stop first.
struct World {
    upstreams: BTreeMap<String, Proc>,
    mesh: harness::world::World,
}

impl std::ops::Deref for World {
    type Target = harness::world::World;
    fn deref(&self) -> &Self::Target {
        &self.mesh
    }
}

impl World {
    fn new() -> World {
        let mut lab = Lab::new();
        let meshd = Meshd::new(&mut lab);
        meshd.write("namespace.yaml", &objects::namespace(NS));
        let port = Port {
            name: "http-web",
            port: PORT,
            target: PORT,
        };
        let mut backends = Vec::new();
        let mut upstreams = BTreeMap::new();
        for (svc, vip) in SERVICES {
            meshd.write(
                &format!("service-{svc}.yaml"),
                &objects::service(svc, NS, vip, svc, std::slice::from_ref(&port)),
            );
        }
        for (svc, pod_name, version) in BACKENDS {
            let pod = Pod::new(&mut lab, pod_name, NS);
            upstreams.insert(
                pod_name.to_string(),
                upstream::start(&lab, &pod.ns, pod_name, PORT),
            );
            meshd.write(
                &format!("pod-{pod_name}.yaml"),
                &upstream::pod_yaml(
                    pod_name,
                    NS,
                    &pod.ip,
                    &[("app", svc), ("version", version)],
                    PORT,
                ),
            );
            backends.push(pod);
        }
        meshd.write("destination-rule-web.yaml", DESTINATION_RULE);
        meshd.write("virtual-service-web.yaml", VIRTUAL_SERVICE);
        let world = World {
            upstreams,
            mesh: harness::world::World::start(lab, meshd, backends, NS),
        };
        for (svc, subset) in [("web", "v1"), ("web", "v2"), ("shadow", "")] {
            let cluster = format!("outbound|{PORT}|{subset}|{svc}.{NS}.svc.cluster.local");
            wait_for(
                &format!("the client to have endpoints for {cluster}"),
                Duration::from_secs(30),
                || (!envoy::cluster_endpoints(&world.client.ns, &cluster).is_empty()).then_some(()),
            );
        }
        world
    }

    fn get(&self, path: &str, headers: &[(&str, &str)]) -> Response {
        upstream::request(
            &self.client.ns,
            &format!("http://{WEB_VIP}:{PORT}{path}"),
            headers,
        )
    }

    /// The request lines upstream `pod` logged whose path starts with `path`.
    fn seen_by(&self, pod: &str, path: &str) -> Vec<String> {
        upstream::requests_seen(&self.upstreams[pod])
            .into_iter()
            .filter(|l| l.contains(&format!(" path={path}")))
            .collect()
    }

    /// `count` GETs of `path` from the client in one shell loop; successful answers by pod,
    /// others by status and body.
    fn tally(&self, path: &str, count: u32) -> BTreeMap<String, u32> {
        let url = format!("http://{WEB_VIP}:{PORT}{path}");
        // Each answer: the body, then a line `STATUS <code>`.
        let script = format!(
            "i=0; while [ $i -lt {count} ]; do curl -s --max-time 5 -w '\\nSTATUS %{{http_code}}\\n' {url}; i=$((i+1)); done"
        );
        let mut cmd = app_command(&self.client.ns);
        cmd.args(["sh", "-c", &script]);
        let out = run_timeout(cmd, Duration::from_secs(10 + u64::from(count)));
        assert!(out.success(), "request loop failed: {}", out.stderr);
        let mut by = BTreeMap::new();
        let mut body = String::new();
        for line in out.stdout.lines() {
            let Some(status) = line.strip_prefix("STATUS ") else {
                body.push_str(line);
                continue;
            };
            let pod = serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["pod"].as_str().map(str::to_string));
            let key = match pod {
                Some(pod) if status == "200" => pod,
                _ => format!("status {status}: {body}"),
            };
            *by.entry(key).or_insert(0) += 1;
            body.clear();
        }
        by
    }
}

impl Drop for World {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for (name, p) in &self.upstreams {
                eprintln!("--- upstream {name}\n{}", p.log_tail(30));
            }
        }
    }
}

#[test]
fn virtual_service_rules_through_real_sidecars() {
    let _guard = harness::lock();
    let world = World::new();

    // No rule matches: the last route, to web's subset v1.
    let plain = world.get("/", &[]);
    assert_eq!(
        (plain.status, plain.pod()),
        (200, Some("web-v1".into())),
        "{plain:?}"
    );

    // Header-based routing: the marked user goes to subset v2, on any path.
    let jason = world.get("/", &[("end-user", "jason")]);
    assert_eq!(
        (jason.status, jason.pod()),
        (200, Some("web-v2".into())),
        "{jason:?}"
    );

    // Source matching: a rule for the client's labels applies, one for other labels not.
    let mine = world.get("/by-source", &[]);
    assert_eq!(
        (mine.status, mine.pod()),
        (200, Some("web-v2".into())),
        "{mine:?}"
    );
    let theirs = world.get("/for-others", &[]);
    assert_eq!(
        (theirs.status, theirs.pod()),
        (200, Some("web-v1".into())),
        "{theirs:?}"
    );

    // Weighted split 80/20 over 400 requests, within 10 points.
    let split = world.tally("/split", 400);
    eprintln!("weighted split 80/20 over 400 requests: {split:?}");
    let v1 = split.get("web-v1").copied().unwrap_or(0);
    let v2 = split.get("web-v2").copied().unwrap_or(0);
    assert_eq!(
        v1 + v2,
        400,
        "every request answered by subset v1 or v2: {split:?}"
    );
    assert!(
        (280..=360).contains(&v1),
        "80% ± 10 points to v1: {split:?}"
    );

    // Retries: an upstream failing its first two calls is hidden by 3 attempts on 5xx.
    let retried = world.get("/retry?fail=2&key=r1", &[]);
    assert_eq!(retried.status, 200, "{retried:?}");
    assert_eq!(
        retried.json()["seen"],
        3,
        "answered on the third try: {retried:?}"
    );
    assert_eq!(world.seen_by("web-v1", "/retry?fail=2&key=r1").len(), 3);
    // Without retries of 5xx (Istio's default policy leaves 503 alone) the failure shows.
    let not_retried = world.get("/?fail=1&key=r2", &[]);
    assert_eq!(not_retried.status, 503, "{not_retried:?}");

    // Timeout: an upstream slower than the route's 500ms timeout becomes a 504.
    let slow = world.get("/slow?sleep_ms=3000", &[]);
    assert_eq!(slow.status, 504, "{slow:?}");
    assert!(slow.body.contains("upstream request timeout"), "{slow:?}");

    // Fault delay: the request still succeeds, at least 1.5s later, and Envoy counts it.
    let delayed = world.get("/delay", &[]);
    assert_eq!(
        (delayed.status, delayed.pod()),
        (200, Some("web-v1".into())),
        "{delayed:?}"
    );
    assert!(
        delayed.elapsed >= Duration::from_millis(1500),
        "a fixed delay of 1.5s cannot answer sooner: {delayed:?}"
    );
    assert_eq!(
        fault_stat(&world.client, "delays_injected"),
        1,
        "one delay injected by the client's sidecar"
    );

    // Fault abort: the client's sidecar answers 418 itself; web never sees the request.
    let aborted = world.get("/abort", &[]);
    assert_eq!(aborted.status, 418, "{aborted:?}");
    assert!(world.seen_by("web-v1", "/abort").is_empty());
    assert_eq!(fault_stat(&world.client, "aborts_injected"), 1);

    // Mirroring: web answers; the shadow service gets a copy, its host marked `-shadow`.
    let mirrored = world.get("/mirror?key=m1", &[]);
    assert_eq!(
        (mirrored.status, mirrored.pod()),
        (200, Some("web-v1".into())),
        "{mirrored:?}"
    );
    let shadow_lines = wait_for(
        "the shadow service to receive the mirrored request",
        Duration::from_secs(10),
        || {
            let lines = world.seen_by("shadow-0", "/mirror?key=m1");
            (!lines.is_empty()).then_some(lines)
        },
    );
    assert!(
        shadow_lines[0].contains("-shadow"),
        "mirrored requests carry the shadow host: {shadow_lines:?}"
    );

    // Redirect: answered by the client's sidecar.
    let redirect = world.get("/old", &[]);
    assert_eq!(redirect.status, 302, "{redirect:?}");
    assert_eq!(
        redirect.headers.get("location").map(String::as_str),
        Some("http://moved.example/new")
    );

    // Rewrite and header changes, as the upstream and the client see them.
    let rewritten = world.get("/v1/items", &[("x-drop", "1"), ("x-added", "mine")]);
    assert_eq!(rewritten.status, 200, "{rewritten:?}");
    let seen = rewritten.json();
    assert_eq!(seen["path"], "/v2/items", "{seen}");
    let h = &seen["headers"];
    assert_eq!(h["host"], "rewritten.example", "{seen}");
    assert_eq!(h["x-set"], "yes", "{seen}");
    assert!(h.get("x-drop").is_none(), "{seen}");
    assert_eq!(
        h["x-added"], "mine,a",
        "added to the client's own value: {seen}"
    );
    assert_eq!(
        rewritten.headers.get("x-resp").map(String::as_str),
        Some("from-mesh")
    );
    assert!(
        !rewritten.headers.contains_key("content-type"),
        "removed from the response: {rewritten:?}"
    );

    for pod in world.servers.iter().chain([&world.client]) {
        let rejected = envoy::rejected_updates(&pod.ns);
        assert!(
            rejected.is_empty(),
            "{} rejected config: {rejected:?}",
            pod.name
        );
    }
}

/// A counter of the fault filter on the client's outbound connection manager.
fn fault_stat(pod: &Pod, counter: &str) -> u64 {
    let suffix = format!(".fault.{counter}");
    envoy::admin(&pod.ns, "/stats")
        .lines()
        .filter_map(|l| l.split_once(": "))
        .filter(|(k, _)| {
            k.starts_with(&format!("http.outbound_0.0.0.0_{PORT}")) && k.ends_with(&suffix)
        })
        .filter_map(|(_, v)| v.trim().parse::<u64>().ok())
        .sum()
}
