//! End-to-end: the rest of Istio's request security with real Envoy: AuthorizationPolicy
//! path templates (`{*}`, `{**}`) on a sidecar, AuthorizationPolicy and
//! RequestAuthentication on an ingress gateway (ALLOW by path, DENY by header, 200/403), and
//! a `jwksUri` served over https by a local TLS server whose certificate comes from a test
//! CA that meshd trusts through `SSL_CERT_FILE` (good token 200, bad 401). Needs root,
//! Envoy, curl and python3 (see tests/e2e/mod.rs); fails, never skips, without them.

#[path = "e2e/mod.rs"]
mod harness;

use std::collections::BTreeSet;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};

use harness::envoy;
use harness::meshd::Meshd;
use harness::netns::{set_mode, Lab, Netns};
use harness::objects::{self, Port};
use harness::pod::Pod;
use harness::process::{run_timeout, wait_for, Proc};
use harness::traffic::app_command;
use harness::world::World;

const NS: &str = "demo";
const VIP: &str = "10.96.0.10";
const HTTP_PORT: u16 = 9080;
const CLUSTER: &str = "outbound|9080||echo.demo.svc.cluster.local";
const ISSUER: &str = "https://issuer.test";

fn ports() -> [Port<'static>; 1] {
    [Port {
        name: "http-web",
        port: HTTP_PORT,
        target: HTTP_PORT,
    }]
}

/// meshd (started with `env`), one echo pod and the client, in sync.
fn echo_world(env: &[(&str, &str)]) -> World {
    let mut lab = Lab::new();
    let mut meshd = Meshd::new(&mut lab);
    meshd.write("namespace.yaml", &objects::namespace(NS));
    meshd.write(
        "service-echo.yaml",
        &objects::service("echo", NS, VIP, "echo", &ports()),
    );
    let mut pod = Pod::new(&mut lab, "echo-0", NS);
    pod.start_app(&lab, &[HTTP_PORT], &[]);
    meshd.write(
        "pod-echo-0.yaml",
        &objects::pod("echo-0", NS, &pod.ip, "echo", &ports()),
    );
    // World::start, with meshd's environment.
    let mut client = Pod::new(&mut lab, "client", NS);
    meshd.write(
        "pod-client.yaml",
        &objects::pod("client", NS, &client.ip, "client", &[]),
    );
    meshd.start_with_env(&[], env);
    let bootstrap = meshd.bootstrap(&pod.node_id(), false);
    pod.start_envoy(&lab, &bootstrap);
    let bootstrap = meshd.bootstrap(&client.node_id(), false);
    client.start_envoy(&lab, &bootstrap);
    let world = World {
        client,
        servers: vec![pod],
        meshd,
        lab,
    };
    let want = BTreeSet::from([format!("{}:{HTTP_PORT}", world.servers[0].ip)]);
    wait_for(
        "the client to see the echo endpoint",
        Duration::from_secs(30),
        || (envoy::cluster_endpoints(&world.client.ns, CLUSTER) == want).then_some(()),
    );
    world.assert_in_sync();
    world
}

/// Waits until the config dump of the proxy in `ns` holds every marker.
fn wait_for_config(ns: &Netns, markers: &[&str]) {
    wait_for(
        &format!("the proxy to hold {markers:?}"),
        Duration::from_secs(30),
        || {
            let dump = envoy::admin_get(ns, "/config_dump")?;
            markers.iter().all(|m| dump.contains(m)).then_some(())
        },
    );
}

/// The status of one request from the client's app to the echo service.
fn status(world: &World, path: &str, args: &[&str]) -> u16 {
    let mut cmd = app_command(&world.client.ns);
    cmd.args([
        "curl",
        "-s",
        "-o",
        "/dev/null",
        "-m",
        "10",
        "-w",
        "%{http_code}",
    ])
    .args(args)
    .arg(format!("http://{VIP}:{HTTP_PORT}{path}"));
    code(run_timeout(cmd, Duration::from_secs(30)))
}

fn code(out: harness::process::Output) -> u16 {
    assert!(out.status.is_some(), "curl timed out: {}", out.stderr);
    out.stdout
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("no status from curl: {:?} {:?}", out.stdout, out.stderr))
}

/// Waits until `get` answers `want` (connections opened before a change may still be
/// served under the old config once).
fn eventually(what: &str, want: u16, get: impl Fn() -> u16) {
    wait_for(
        &format!("{what} to get {want}"),
        Duration::from_secs(30),
        || (get() == want).then_some(()),
    );
}

fn policy(name: &str, namespace: &str, selector: &str, spec: &str) -> String {
    let indented: String = spec.lines().map(|l| format!("  {l}\n")).collect();
    format!(
        "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  \
         name: {name}\n  namespace: {namespace}\nspec:\n  selector: {{matchLabels: {{{selector}}}}}\n{indented}"
    )
}

#[test]
fn path_templates_allow_and_deny() {
    let _guard = harness::lock();
    let world = echo_world(&[]);
    world.meshd.write(
        "ap-templates.yaml",
        &(policy(
            "allow-books",
            NS,
            "app: echo",
            "rules:\n- to:\n  - operation: {paths: [\"/books/{*}\", \"/static/{**}\"]}",
        ) + "---\n"
            + &policy(
                "deny-drafts",
                NS,
                "app: echo",
                "action: DENY\nrules:\n- to:\n  - operation: {paths: [\"/static/{*}/drafts/{**}\"]}",
            )),
    );
    wait_for_config(
        &world.servers[0].ns,
        &["/books/*", "/static/**", "/static/*/drafts/**"],
    );
    world.assert_in_sync();
    eventually("/other", 403, || status(&world, "/other", &[]));
    let cases = [
        ("/books/1", 200),
        ("/books/moby-dick", 200),
        ("/books", 403),
        ("/books/1/2", 403),
        ("/static/a", 200),
        ("/static/a/b/c.css", 200),
        ("/static/a/drafts/x", 403),
        ("/other", 403),
    ];
    for (path, want) in cases {
        assert_eq!(status(&world, path, &[]), want, "{path}");
    }
}

/// An ES256 key pair, its JWKS and tokens it signs.
struct Signer {
    key: EcdsaKeyPair,
}

impl Signer {
    fn new() -> Signer {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        Signer { key }
    }

    fn x(&self) -> String {
        B64.encode(&self.key.public_key().as_ref()[1..33])
    }

    fn jwks(&self) -> String {
        let point = self.key.public_key().as_ref();
        serde_json::json!({"keys": [{
            "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": "k1",
            "x": B64.encode(&point[1..33]), "y": B64.encode(&point[33..65]),
        }]})
        .to_string()
    }

    fn token(&self, sub: &str) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let header = serde_json::json!({"alg": "ES256", "typ": "JWT", "kid": "k1"});
        let claims = serde_json::json!({"iss": ISSUER, "sub": sub, "iat": now, "exp": now + 3600});
        let input = format!(
            "{}.{}",
            B64.encode(header.to_string()),
            B64.encode(claims.to_string())
        );
        let sig = self
            .key
            .sign(&SystemRandom::new(), input.as_bytes())
            .unwrap();
        format!("Authorization: Bearer {input}.{}", B64.encode(sig.as_ref()))
    }
}

fn request_authentication(namespace: &str, selector: &str, jwks_line: &str) -> String {
    format!(
        "apiVersion: security.istio.io/v1\nkind: RequestAuthentication\nmetadata:\n  \
         name: jwt\n  namespace: {namespace}\nspec:\n  selector: {{matchLabels: {{{selector}}}}}\n  \
         jwtRules:\n  - issuer: {ISSUER}\n    {jwks_line}\n"
    )
}

/// A test CA (PEM) and a certificate it signs for 127.0.0.1, with its key (PEM).
fn tls_server_certs() -> (String, String, String) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "meshd e2e jwks CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.subject_alt_names = vec![rcgen::SanType::IpAddress([127, 0, 0, 1].into())];
    let cert = params.signed_by(&key, &issuer).unwrap();
    (ca.pem(), cert.pem(), key.serialize_pem())
}

/// Python's file server over TLS, in meshd's namespace on loopback: `/jwks.json` from `dir`.
const HTTPS_SERVER: &str = "import functools, http.server, ssl, sys
d, cert, key, port = sys.argv[1:5]
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=d)
server = http.server.HTTPServer(('127.0.0.1', int(port)), handler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(cert, key)
server.socket = context.wrap_socket(server.socket, server_side=True)
server.serve_forever()
";

#[test]
fn jwks_uri_over_https_trusted_through_ssl_cert_file() {
    let _guard = harness::lock();
    let lab_dir = std::env::temp_dir().join(format!("meshd-e2e-jwks-{}", std::process::id()));
    std::fs::create_dir_all(&lab_dir).unwrap();
    let (ca, cert, key) = tls_server_certs();
    let ca_file = lab_dir.join("ca.pem");
    std::fs::write(&ca_file, &ca).unwrap();
    let world = echo_world(&[("SSL_CERT_FILE", ca_file.to_str().unwrap())]);

    let signer = Signer::new();
    let dir = world.lab.path("jwks");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("jwks.json"), signer.jwks()).unwrap();
    std::fs::write(world.lab.path("server.pem"), &cert).unwrap();
    std::fs::write(world.lab.path("server.key"), &key).unwrap();
    let mut cmd = world.meshd.ns.command("python3");
    cmd.args(["-c", HTTPS_SERVER])
        .arg(&dir)
        .arg(world.lab.path("server.pem"))
        .arg(world.lab.path("server.key"))
        .arg("18443");
    let _server = Proc::spawn("jwks-https", cmd, &world.lab.path("jwks-https.log"));

    world.meshd.write(
        "ra.yaml",
        &request_authentication(
            NS,
            "app: echo",
            "jwksUri: https://127.0.0.1:18443/jwks.json",
        ),
    );
    // The fetched key, inlined: meshd trusted the server through SSL_CERT_FILE.
    wait_for_config(
        &world.servers[0].ns,
        &["envoy.filters.http.jwt_authn", &signer.x()],
    );
    world.assert_in_sync();
    let good = signer.token("alice");
    eventually("a good token", 200, || status(&world, "/", &["-H", &good]));
    let forged = Signer::new().token("alice");
    assert_eq!(status(&world, "/", &["-H", &forged]), 401, "bad signature");
    assert_eq!(
        status(&world, "/", &["-H", "Authorization: Bearer not.a.jwt"]),
        401
    );
    assert_eq!(status(&world, "/", &["-H", &good]), 200);
    let _ = std::fs::remove_dir_all(&lab_dir);
}

const GATEWAY_NS: &str = "istio-system";
const GW_HTTP: u16 = 8080;

fn gateway_config() -> String {
    format!(
        r#"apiVersion: v1
kind: Namespace
metadata: {{name: {GATEWAY_NS}}}
---
apiVersion: v1
kind: Service
metadata: {{name: istio-ingressgateway, namespace: {GATEWAY_NS}}}
spec:
  clusterIP: 10.96.0.50
  selector: {{istio: ingressgateway}}
  ports:
  - {{name: http2, port: 80, targetPort: {GW_HTTP}}}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: gw, namespace: {GATEWAY_NS}}}
spec:
  selector: {{istio: ingressgateway}}
  servers:
  - port: {{number: 80, name: http, protocol: HTTP}}
    hosts: ["{NS}/www.example.com"]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: www, namespace: {NS}}}
spec:
  hosts: [www.example.com]
  gateways: [{GATEWAY_NS}/gw]
  http:
  - route:
    - destination: {{host: echo}}
"#
    )
}

#[test]
fn ingress_gateway_allow_by_path_deny_by_header_and_jwt() {
    let _guard = harness::lock();
    let mut world = echo_world(&[]);
    world.meshd.write("gateway.yaml", &gateway_config());
    // Declared after `world`, so the gateway and its namespaces go before the lab.
    let (gw_ns, gw_ip) = world.lab.attach("gw");
    let (client, _) = world.lab.attach("outside");
    let node_id = format!(
        "router~{gw_ip}~istio-ingressgateway-0.{GATEWAY_NS}~{GATEWAY_NS}.svc.cluster.local"
    );
    let bootstrap =
        world
            .meshd
            .bootstrap_with(&node_id, false, &["--label", "istio=ingressgateway"]);
    let path = world.lab.path("gateway.envoy.yaml");
    std::fs::write(&path, &bootstrap).unwrap();
    set_mode(&path, 0o644);
    let mut gateway = envoy::start(
        &gw_ns,
        "gateway",
        &path,
        &world.lab.path("gateway.envoy.log"),
    );
    envoy::wait_ready(&gw_ns, &mut gateway, &[&format!("0.0.0.0_{GW_HTTP}")]);
    let get = |path: &str, args: &[&str]| {
        let mut cmd = client.command("curl");
        cmd.args(["-s", "-o", "/dev/null", "-m", "10", "-w", "%{http_code}"])
            .args(["-H", "Host: www.example.com"])
            .args(args)
            .arg(format!("http://{gw_ip}:{GW_HTTP}{path}"));
        code(run_timeout(cmd, Duration::from_secs(30)))
    };
    eventually("the gateway route", 200, || get("/anything", &[]));

    let gw_selector = "istio: ingressgateway";
    world.meshd.write(
        "ap-gateway.yaml",
        &(policy(
            "ingress-allow",
            GATEWAY_NS,
            gw_selector,
            "rules:\n- to:\n  - operation: {paths: [\"/public/*\", \"/books/{*}\"]}",
        ) + "---\n"
            + &policy(
                "ingress-deny",
                GATEWAY_NS,
                gw_selector,
                "action: DENY\nrules:\n- when:\n  - {key: \"request.headers[x-block]\", values: [\"*\"]}",
            )),
    );
    wait_for_config(
        &gw_ns,
        &[
            "ns[istio-system]-policy[ingress-allow]-rule[0]",
            "ns[istio-system]-policy[ingress-deny]-rule[0]",
        ],
    );
    eventually("/private through the gateway", 403, || get("/private", &[]));
    assert_eq!(get("/public/index.html", &[]), 200);
    assert_eq!(get("/books/1", &[]), 200);
    assert_eq!(get("/books/1/2", &[]), 403);
    assert_eq!(get("/private", &[]), 403);
    assert_eq!(get("/public/index.html", &["-H", "x-block: yes"]), 403);
    // The sidecar behind the gateway is not selected: inside the mesh, all passes.
    assert_eq!(status(&world, "/private", &[]), 200);

    // RequestAuthentication on the gateway: a bad token is refused there (401).
    let signer = Signer::new();
    world.meshd.write(
        "ra-gateway.yaml",
        &request_authentication(
            GATEWAY_NS,
            gw_selector,
            &format!("jwks: '{}'", signer.jwks()),
        ),
    );
    wait_for_config(&gw_ns, &["envoy.filters.http.jwt_authn", &signer.x()]);
    let good = signer.token("alice");
    let forged = Signer::new().token("alice");
    eventually("a forged token at the gateway", 401, || {
        get("/public/x", &["-H", &forged])
    });
    assert_eq!(get("/public/x", &["-H", &good]), 200);
    assert_eq!(get("/public/x", &[]), 200, "no token: authn passes");
    let rejected = envoy::rejected_updates(&gw_ns);
    assert!(rejected.is_empty(), "gateway rejected {rejected:?}");
    drop(gateway);
}
