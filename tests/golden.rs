//! Golden tests of sidecar translation. Inputs go through the same pipeline as
//! `meshd serve` (`load_dir` + `build_model` + `Translator`); the expected output per proxy
//! and type lives in testdata/golden/<case>/<proxy>/{clusters,endpoints,listeners,routes}.json.
//! Regenerate with `MESHD_UPDATE_GOLDEN=1 cargo test --test golden`.
//!
//! Every golden set is also loaded by the real Envoy (`envoy --mode validate`): a bootstrap
//! holds the clusters, STATIC copies of the EDS clusters carrying the endpoints, the
//! listeners, and one dummy listener per route config with the config inline. The static
//! listeners of meshd's own sidecar bootstrap (readiness 15021, Prometheus 15090) are loaded
//! alongside. Envoy's validate mode accepts two listeners of one name (at run time it keeps
//! the static one and drops the dynamic one without a word), so names are compared here.
//! Envoy is found through `MESHD_ENVOY` or `PATH`; without it the test fails.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use meshd::envoy::json::resource_to_json;
use meshd::mesh::build::build_model;
use meshd::mesh::{
    Endpoint, MeshModel, ObjectKey, PortEndpoints, Protocol, ProxyId, Service, ServicePort,
    TargetPort, Workload,
};
use meshd::source::file::load_dir;
use meshd::translate::bootstrap::{render_bootstrap, BootstrapOptions};
use meshd::translate::scope::TranslateOptions;
use meshd::translate::Translator;
use meshd::xds::type_url;
use serde_json::{json, Value};

const TYPES: [(&str, &str); 4] = [
    ("clusters", type_url::CLUSTER),
    ("endpoints", type_url::ENDPOINT),
    ("listeners", type_url::LISTENER),
    ("routes", type_url::ROUTE),
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn envoy() -> PathBuf {
    common::envoy::envoy_binary()
}

type GoldenSet = BTreeMap<&'static str, Vec<Value>>;

/// A golden proxy's node id, and the identity its stream proved when the entry carries one
/// after a space (`<node id> spiffe://...`). Without one the proxy is translated as one on
/// the plaintext xDS port: no workload certificate, no mesh mTLS.
fn split_identity(entry: &str) -> (&str, Option<&str>) {
    match entry.split_once(' ') {
        Some((node_id, identity)) => (node_id, Some(identity)),
        None => (entry, None),
    }
}

/// The translated resources of one proxy as JSON arrays by type key.
fn translate(translator: &Translator, entry: &str) -> GoldenSet {
    let (node_id, identity) = split_identity(entry);
    let mut proxy = ProxyId::parse(node_id).expect("golden node ids parse");
    proxy.identity = identity.map(str::to_string);
    let resources = translator.proxy_resources(&proxy);
    TYPES
        .iter()
        .map(|(key, url)| {
            let items = resources
                .of_type(url)
                .values()
                .map(|r| resource_to_json(r).expect("resource renders as json"))
                .collect();
            (*key, items)
        })
        .collect()
}

/// Compares (or, when updating, writes) one golden file; returns a problem description.
fn check_file(path: &Path, actual: &str, update: bool) -> Option<String> {
    if update {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, actual).unwrap();
        return None;
    }
    let expected = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => return Some(format!("{}: cannot read ({e})", path.display())),
    };
    if expected == actual {
        return None;
    }
    let (line, (want, got)) = expected
        .lines()
        .chain(std::iter::repeat("<end of file>"))
        .zip(actual.lines().chain(std::iter::repeat("<end of file>")))
        .enumerate()
        .find(|(_, (a, b))| a != b)
        .map(|(i, pair)| (i + 1, pair))
        .expect("texts differ somewhere");
    Some(format!(
        "{}: differs first at line {line}\n  expected: {want}\n  actual:   {got}",
        path.display()
    ))
}

fn without_type(mut value: Value) -> Value {
    if let Value::Object(map) = &mut value {
        map.remove("@type");
    }
    value
}

/// The static cluster the ADS config source of the validation bootstrap points at.
fn xds_cluster() -> Value {
    json!({
        "name": "xds-grpc",
        "type": "STATIC",
        "connectTimeout": "1s",
        "typedExtensionProtocolOptions": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicitHttpConfig": {"http2ProtocolOptions": {}}
            }
        },
        "loadAssignment": {"clusterName": "xds-grpc", "endpoints": [{"lbEndpoints": [
            {"endpoint": {"address": {"socketAddress": {"address": "127.0.0.1", "portValue": 15010}}}}
        ]}]}
    })
}

/// A STATIC copy of the EDS cluster `cla` belongs to, with `cla` as its load assignment.
fn static_copy(set: &GoldenSet, cla: &Value) -> Value {
    let name = cla["clusterName"]
        .as_str()
        .expect("assignment has a cluster name");
    let mut copy = set["clusters"]
        .iter()
        .find(|c| c["name"] == name)
        .cloned()
        .map(without_type)
        .unwrap_or_else(|| panic!("endpoints {name} have no cluster"));
    let static_name = format!("static-copy|{name}");
    let mut assignment = without_type(cla.clone());
    assignment["clusterName"] = json!(static_name);
    let map = copy.as_object_mut().unwrap();
    map.remove("edsClusterConfig");
    map.insert("name".into(), json!(static_name));
    map.insert("type".into(), json!("STATIC"));
    map.insert("loadAssignment".into(), assignment);
    copy
}

/// A listener whose connection manager holds `route` inline.
fn route_listener(route: &Value, port: usize) -> Value {
    let name = route["name"].as_str().unwrap_or_default();
    json!({
        "name": format!("route-check|{name}"),
        "address": {"socketAddress": {"address": "127.0.0.1", "portValue": port}},
        "filterChains": [{"filters": [{
            "name": "envoy.filters.network.http_connection_manager",
            "typedConfig": {
                "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                "statPrefix": "route_check",
                "routeConfig": without_type(route.clone()),
                "httpFilters": [{
                    "name": "envoy.filters.http.router",
                    "typedConfig": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}
                }]
            }
        }]}]
    })
}

/// The static listeners and their clusters (all but `xds-grpc`) of the bootstrap
/// `meshd bootstrap` gives the sidecar `node_id`.
fn sidecar_static_resources(node_id: &str) -> (Vec<Value>, Vec<Value>) {
    let options = BootstrapOptions {
        node_id: node_id.to_string(),
        xds_address: "127.0.0.1:15010".into(),
        delta: false,
        admin_port: 15000,
        labels: BTreeMap::new(),
        service_account: None,
        workload_name: None,
        cluster_id: "Kubernetes".into(),
        secure: None,
    };
    let bootstrap = render_bootstrap(&options).expect("golden node ids make a bootstrap");
    let statics = &bootstrap["staticResources"];
    let clusters = statics["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["name"] != "xds-grpc")
        .cloned()
        .collect();
    (clusters, statics["listeners"].as_array().unwrap().clone())
}

/// Points the SDS config sources of a cluster at `xds-grpc` directly instead of ADS: the
/// bootstrap loads the clusters statically, before the ADS stream exists, and Envoy 1.40
/// crashes validating a static cluster whose secrets come over ADS (over CDS, as meshd
/// sends them, they are fine).
fn sds_over_grpc(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                if key == "sdsConfig" {
                    *v = json!({
                        "apiConfigSource": {
                            "apiType": "GRPC",
                            "transportApiVersion": "V3",
                            "grpcServices": [{"envoyGrpc": {"clusterName": "xds-grpc"}}]
                        },
                        "resourceApiVersion": "V3"
                    });
                } else {
                    sds_over_grpc(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(sds_over_grpc),
        _ => {}
    }
}

/// A bootstrap that makes Envoy load every resource of one golden set.
fn validation_bootstrap(node_id: &str, set: &GoldenSet) -> Value {
    let (static_clusters, static_listeners) = sidecar_static_resources(node_id);
    let mut clusters: Vec<Value> = set["clusters"].iter().cloned().map(without_type).collect();
    // The EDS clusters keep their ADS eds_config, which needs an ADS config source.
    clusters.push(xds_cluster());
    clusters.extend(set["endpoints"].iter().map(|cla| static_copy(set, cla)));
    for cluster in &mut clusters {
        sds_over_grpc(cluster);
    }
    clusters.extend(static_clusters);
    let mut listeners: Vec<Value> = set["listeners"].iter().cloned().map(without_type).collect();
    listeners.extend(static_listeners);
    listeners.extend(
        set["routes"]
            .iter()
            .enumerate()
            .map(|(i, route)| route_listener(route, 19000 + i)),
    );
    json!({
        "node": {"id": node_id, "cluster": "golden"},
        "dynamicResources": {
            "adsConfig": {
                "apiType": "GRPC",
                "transportApiVersion": "V3",
                "grpcServices": [{"envoyGrpc": {"clusterName": "xds-grpc"}}]
            },
            "cdsConfig": {"ads": {}, "resourceApiVersion": "V3"},
            "ldsConfig": {"ads": {}, "resourceApiVersion": "V3"}
        },
        "staticResources": {"clusters": clusters, "listeners": listeners}
    })
}

/// Runs `envoy --mode validate` on `bootstrap`; returns Envoy's output on failure.
fn envoy_validate(envoy: &Path, bootstrap: &Value, label: &str) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bootstrap.json");
    std::fs::write(&path, serde_json::to_string_pretty(bootstrap).unwrap()).unwrap();
    common::envoy::validate_file(envoy, &path).map_err(|e| format!("envoy rejected {label}: {e}"))
}

/// Checks every proxy of one case against its golden files and against Envoy.
fn run_case(case: &str, model: MeshModel, proxies: &[(&str, &str)]) {
    run_case_with(case, model, TranslateOptions::default(), proxies);
}

/// `run_case` with translation options other than the defaults.
fn run_case_with(
    case: &str,
    model: MeshModel,
    options: TranslateOptions,
    proxies: &[(&str, &str)],
) {
    let envoy = envoy();
    let update = std::env::var_os("MESHD_UPDATE_GOLDEN").is_some();
    let translator = Translator::with_options(Arc::new(model), Arc::new(options));
    let mut problems = Vec::new();
    for (proxy, entry) in proxies {
        let set = translate(&translator, entry);
        let (node_id, _) = split_identity(entry);
        let dir = root().join("testdata/golden").join(case).join(proxy);
        for (key, items) in &set {
            let text = serde_json::to_string_pretty(&Value::Array(items.clone())).unwrap() + "\n";
            problems.extend(check_file(&dir.join(format!("{key}.json")), &text, update));
        }
        let (_, static_listeners) = sidecar_static_resources(node_id);
        for listener in &set["listeners"] {
            if static_listeners
                .iter()
                .any(|s| s["name"] == listener["name"])
            {
                problems.push(format!(
                    "{case}/{proxy}: listener {} has the name of a bootstrap listener",
                    listener["name"]
                ));
            }
        }
        let bootstrap = validation_bootstrap(node_id, &set);
        if let Err(e) = envoy_validate(&envoy, &bootstrap, &format!("{case}/{proxy}")) {
            problems.push(e);
        }
    }
    assert!(
        problems.is_empty(),
        "{}\n\nIf the change is intended, regenerate with: \
         MESHD_UPDATE_GOLDEN=1 cargo test --test golden",
        problems.join("\n\n")
    );
}

/// The model built from the input directory testdata/`input`, which must load and build
/// without problems.
fn load_model(input: &str) -> MeshModel {
    let loaded = load_dir(&root().join("testdata").join(input))
        .unwrap_or_else(|e| panic!("testdata/{input} loads: {e:?}"));
    assert!(
        loaded.problems.is_empty(),
        "input problems: {:?}",
        loaded.problems
    );
    let built = build_model(&loaded);
    assert!(
        built.problems.is_empty(),
        "model problems: {:?}",
        built.problems
    );
    built.model
}

/// A golden case whose model comes from the input directory testdata/`input`.
fn dir_case(case: &str, input: &str, proxies: &[(&str, &str)]) {
    run_case(case, load_model(input), proxies);
}

#[test]
fn bookinfo() {
    dir_case(
        "bookinfo",
        "bookinfo",
        &[
            (
                "productpage",
                "sidecar~10.244.1.10~productpage-v1.default~default.svc.cluster.local",
            ),
            (
                "reviews-v1",
                "sidecar~10.244.1.12~reviews-v1.default~default.svc.cluster.local",
            ),
            (
                "shop-db",
                "sidecar~10.244.2.10~db-0.shop~shop.svc.cluster.local",
            ),
            (
                "no-workload",
                "sidecar~10.244.9.9~unknown.default~default.svc.cluster.local",
            ),
        ],
    );
}

fn key(namespace: &str, name: &str) -> ObjectKey {
    ObjectKey {
        namespace: namespace.into(),
        name: name.into(),
    }
}

fn service(ns: &str, name: &str, ip: Option<&str>, port: ServicePort) -> Arc<Service> {
    Arc::new(Service {
        key: key(ns, name),
        hostname: format!("{name}.{ns}.svc.cluster.local"),
        cluster_ip: ip.map(str::to_string),
        ports: vec![port],
        selector: Some(BTreeMap::from([("app".into(), name.into())])),
        labels: BTreeMap::new(),
        origin: meshd::mesh::ServiceOrigin::Kubernetes,
    })
}

fn port(name: &str, number: u16, protocol: Protocol) -> ServicePort {
    ServicePort {
        name: name.into(),
        port: number,
        target_port: TargetPort::Number(number),
        protocol,
    }
}

fn endpoints(ips: &[&str], port: u16) -> Arc<PortEndpoints> {
    Arc::new(PortEndpoints {
        endpoints: ips
            .iter()
            .map(|ip| Endpoint {
                address: ip.to_string(),
                port,
                ready: true,
                workload: None,
                labels: BTreeMap::new(),
                service_account: None,
                mtls_ready: false,
                zone: Some("zone-a".into()),
            })
            .collect(),
    })
}

/// What bookinfo lacks: gRPC (HTTP/2 upstream), a headless TCP service, a TCP service
/// sharing its port number with an HTTP service, an HTTP service on the sidecar's readiness
/// port 15021 (as every istio-ingressgateway has) and a TCP service on its Prometheus port.
fn synthetic_model() -> MeshModel {
    let mut model = MeshModel::default();
    for s in [
        service(
            "apps",
            "web",
            Some("10.96.5.1"),
            port("http", 8080, Protocol::Http),
        ),
        service(
            "apps",
            "api",
            Some("10.96.5.2"),
            port("grpc", 7070, Protocol::Grpc),
        ),
        service(
            "apps",
            "legacy",
            Some("10.96.5.3"),
            port("tcp", 8080, Protocol::Tcp),
        ),
        service(
            "apps",
            "cache",
            None,
            port("tcp-redis", 6379, Protocol::Tcp),
        ),
        service(
            "apps",
            "gateway",
            Some("10.96.5.4"),
            port("http-status", 15021, Protocol::Http),
        ),
        service(
            "apps",
            "stats",
            Some("10.96.5.5"),
            port("tcp-metrics", 15090, Protocol::Tcp),
        ),
    ] {
        model.namespaces.insert(s.key.namespace.clone());
        model.services.insert(s.key.clone(), s);
    }
    for (name, port, ips) in [
        ("web", 8080, &["10.244.5.10"][..]),
        ("api", 7070, &["10.244.5.20", "10.244.5.21"][..]),
        ("legacy", 8080, &["10.244.5.30"][..]),
        ("cache", 6379, &["10.244.5.40", "10.244.5.41"][..]),
        ("gateway", 15021, &["10.244.5.50"][..]),
        ("stats", 15090, &["10.244.5.60"][..]),
    ] {
        model
            .endpoints
            .insert((key("apps", name), port), endpoints(ips, port));
    }
    let api = Workload {
        key: key("apps", "api-0"),
        ip: Some("10.244.5.20".into()),
        labels: BTreeMap::from([("app".into(), "api".into())]),
        service_account: "api".into(),
        ready: true,
        named_ports: BTreeMap::new(),
        mtls_ready: false,
    };
    model
        .workloads_by_ip
        .insert("10.244.5.20".into(), api.key.clone());
    model.workloads.insert(api.key.clone(), Arc::new(api));
    model
}

#[test]
fn synthetic() {
    run_case(
        "synthetic",
        synthetic_model(),
        &[(
            "api",
            "sidecar~10.244.5.20~api-0.apps~apps.svc.cluster.local",
        )],
    );
}

/// The validation harness itself must catch what Envoy rejects, or the tests above prove
/// nothing: here a virtual host domain listed twice, which Envoy refuses.
#[test]
fn envoy_rejects_a_broken_set() {
    let translator = Translator::new(Arc::new(synthetic_model()));
    let node_id = "sidecar~10.244.5.20~api-0.apps~apps.svc.cluster.local";
    let mut set = translate(&translator, node_id);
    let route = &mut set.get_mut("routes").unwrap()[0];
    let host = route["virtualHosts"][0].clone();
    route["virtualHosts"].as_array_mut().unwrap().push(host);
    let result = envoy_validate(&envoy(), &validation_bootstrap(node_id, &set), "broken");
    let output = result.expect_err("envoy accepted a duplicate virtual host");
    assert!(output.contains("api.apps.svc.cluster.local"), "{output}");
}

/// DestinationRules: subsets, each traffic policy part, and istiod's choice of rule per
/// proxy namespace (testdata/traffic/destination-rules).
#[test]
fn destination_rules() {
    let model = load_model("traffic/destination-rules");
    assert_eq!(model.destination_rules.len(), 5);
    run_case(
        "destination-rules",
        model,
        &[
            (
                "shop-client",
                "sidecar~10.244.3.2~client.shop~shop.svc.cluster.local",
            ),
            (
                "other-client",
                "sidecar~10.244.4.2~other-client.other~other.svc.cluster.local",
            ),
        ],
    );
}

/// An ingress gateway (a `router` proxy whose Pod the model knows) with HTTP, HTTPS
/// (SIMPLE and MUTUAL, certificates from Secrets), PASSTHROUGH and TCP servers and
/// VirtualServices bound to its Gateway. Its SDS secrets, served only with
/// `--insecure-serve-gateway-secrets`, are checked by name and loaded by Envoy alongside.
#[test]
fn gateway() {
    let model = load_model("traffic/gateway");
    let router =
        "router~10.244.0.50~istio-ingressgateway-7d4f.istio-system~istio-system.svc.cluster.local";
    run_case("gateway", model.clone(), &[("ingress", router)]);

    let options = meshd::translate::scope::TranslateOptions {
        serve_gateway_secrets: true,
        ..Default::default()
    };
    let translator = Translator::with_options(Arc::new(model), Arc::new(options));
    let proxy = ProxyId::parse(router).unwrap();
    let resources = translator.proxy_resources(&proxy);
    let secrets = resources.of_type(type_url::SECRET);
    let names: Vec<&str> = secrets.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "kubernetes://secure-cert",
            "kubernetes://secure-cert-cacert",
            "kubernetes://www-cert"
        ]
    );
    let set = translate(&translator, router);
    let mut bootstrap = validation_bootstrap(router, &set);
    bootstrap["staticResources"]["secrets"] = Value::Array(
        secrets
            .values()
            .map(|s| without_type(resource_to_json(s).expect("secret renders as json")))
            .collect(),
    );
    if let Err(e) = envoy_validate(&envoy(), &bootstrap, "gateway/ingress secrets") {
        panic!("{e}");
    }
}

/// Protocol sniffing and VirtualService tcp/tls routes (testdata/traffic/sniffing): ports
/// without a declared protocol, a headless one among them; a weighted TCP split; TLS routes
/// by SNI; a TCP route for one source's pods on a sniffed port.
#[test]
fn sniffing() {
    dir_case(
        "sniffing",
        "traffic/sniffing",
        &[
            (
                "sleep",
                "sidecar~10.244.6.10~sleep.web~web.svc.cluster.local",
            ),
            (
                "echo",
                "sidecar~10.244.5.10~echo-v1.shop~shop.svc.cluster.local",
            ),
            (
                "legacy",
                "sidecar~10.244.5.11~legacy-v1.shop~shop.svc.cluster.local",
            ),
        ],
    );
}

/// VirtualService HTTP routing (testdata/traffic/virtual-services): matches, sources,
/// weights, retries, timeouts, faults, CORS, mirrors, headers, rewrites, redirects, direct
/// responses, delegation and an external host, for a proxy some source matches pick and
/// one they do not.
#[test]
fn virtual_services() {
    dir_case(
        "virtual-services",
        "traffic/virtual-services",
        &[
            (
                "productpage",
                "sidecar~10.244.1.10~productpage-v1.shop~shop.svc.cluster.local",
            ),
            (
                "reviews-v1",
                "sidecar~10.244.1.11~reviews-v1.shop~shop.svc.cluster.local",
            ),
        ],
    );
}

#[test]
fn service_entries() {
    dir_case(
        "service-entries",
        "traffic/service-entries",
        &[
            (
                "sleep",
                "sidecar~10.244.3.10~sleep-0.app~app.svc.cluster.local",
            ),
            // In the entries' namespace: also sees the entry exported there only.
            (
                "egress-ns",
                "sidecar~10.244.3.20~client.egress~egress.svc.cluster.local",
            ),
        ],
    );
}

#[test]
fn sidecar_ingress() {
    dir_case(
        "sidecar-ingress",
        "traffic/sidecar-ingress",
        &[
            (
                "ratings",
                "sidecar~10.244.4.10~ratings-0.shop~shop.svc.cluster.local",
            ),
            // Same namespace, not selected: the service ports as usual.
            (
                "other",
                "sidecar~10.244.4.11~other-0.shop~shop.svc.cluster.local",
            ),
        ],
    );
}

#[test]
fn authz_basic() {
    dir_case(
        "authz-basic",
        "security/authz-basic",
        &[
            (
                "web",
                "sidecar~10.244.5.10~web-0.shop~shop.svc.cluster.local",
            ),
            ("db", "sidecar~10.244.5.20~db-0.shop~shop.svc.cluster.local"),
        ],
    );
}

/// Mesh mTLS for proxies with a workload certificate (authenticated xDS stream):
/// PeerAuthentication at mesh, namespace, workload and port level shaping the inbound
/// chains (STRICT in `shop`, a plaintext port on `db`, PERMISSIVE in `front`), automatic
/// mTLS to sidecar endpoints (transport socket matches with the services' SPIFFE
/// identities, ALPN by protocol), DestinationRule ISTIO_MUTUAL and DISABLE. The same
/// `reviews` pod without a certificate (plaintext xDS port): its STRICT ports refuse every
/// connection and the ISTIO_MUTUAL cluster to `db` fails closed, with no SDS reference.
#[test]
fn mtls() {
    run_case(
        "mtls",
        load_model("security/mtls"),
        &[
            (
                "reviews",
                "sidecar~10.244.5.11~reviews-v1.shop~shop.svc.cluster.local \
                 spiffe://cluster.local/ns/shop/sa/reviews",
            ),
            (
                "db",
                "sidecar~10.244.5.21~db-0.shop~shop.svc.cluster.local \
                 spiffe://cluster.local/ns/shop/sa/db",
            ),
            (
                "web",
                "sidecar~10.244.5.41~web-0.front~front.svc.cluster.local \
                 spiffe://cluster.local/ns/front/sa/web",
            ),
            (
                "reviews-no-identity",
                "sidecar~10.244.5.11~reviews-v1.shop~shop.svc.cluster.local",
            ),
        ],
    );
}

/// AuthorizationPolicy paths with Istio's `{*}` / `{**}` templates
/// (testdata/security/path-templates): RBAC `uri_template` permissions beside plain path
/// matchers, in paths and notPaths, ALLOW and DENY.
#[test]
fn authz_path_templates() {
    dir_case(
        "authz-path-templates",
        "security/path-templates",
        &[(
            "books",
            "sidecar~10.244.6.10~books-0.shop~shop.svc.cluster.local",
        )],
    );
}

/// AuthorizationPolicy and RequestAuthentication on the ingress gateway of
/// testdata/traffic/gateway (testdata/security/gateway-authz loaded with it): `jwt_authn`
/// and HTTP RBAC in its HTTP and HTTPS connection managers, network RBAC on its TCP and
/// PASSTHROUGH chains; policies for other workloads or namespaces left out.
#[test]
fn gateway_authz() {
    let mut input = load_dir(&root().join("testdata/traffic/gateway")).unwrap();
    let authz = load_dir(&root().join("testdata/security/gateway-authz")).unwrap();
    input.objects.extend(authz.objects);
    input.problems.extend(authz.problems);
    assert!(input.problems.is_empty(), "{:?}", input.problems);
    let built = build_model(&input);
    assert!(built.problems.is_empty(), "{:?}", built.problems);
    let router =
        "router~10.244.0.50~istio-ingressgateway-7d4f.istio-system~istio-system.svc.cluster.local";
    run_case("gateway-authz", built.model, &[("ingress", router)]);
}
