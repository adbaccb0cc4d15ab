//! End-to-end: AuthorizationPolicy and RequestAuthentication as real Envoy sidecars apply
//! them. Requests go from the client pod's app through both sidecars to the `echo` pod;
//! each step writes policies, waits for the echo sidecar to hold them, and checks status
//! codes (200, 401, 403). Tokens are ES256 JWTs signed here with `ring`. Needs root,
//! Envoy and curl (see tests/e2e/mod.rs); fails, never skips, without them.

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
use harness::netns::Lab;
use harness::objects::{self, Port};
use harness::pod::Pod;
use harness::process::{run_timeout, wait_for, Proc};
use harness::traffic::app_command;
use harness::world::World;

const NS: &str = "demo";
const SVC: &str = "echo";
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

/// meshd, one echo pod and the client, in sync.
fn echo_world() -> World {
    let mut lab = Lab::new();
    let meshd = Meshd::new(&mut lab);
    meshd.write("namespace.yaml", &objects::namespace(NS));
    meshd.write(
        "service-echo.yaml",
        &objects::service(SVC, NS, VIP, SVC, &ports()),
    );
    let mut pod = Pod::new(&mut lab, "echo-0", NS);
    pod.start_app(&lab, &[HTTP_PORT], &[]);
    meshd.write(
        "pod-echo-0.yaml",
        &objects::pod("echo-0", NS, &pod.ip, SVC, &ports()),
    );
    let world = World::start(lab, meshd, vec![pod], NS);
    let want = BTreeSet::from([format!("{}:{HTTP_PORT}", world.servers[0].ip)]);
    wait_for(
        "the client to see the echo endpoint",
        Duration::from_secs(30),
        || (envoy::cluster_endpoints(&world.client.ns, CLUSTER) == want).then_some(()),
    );
    world.assert_in_sync();
    world
}

/// A request and the status it must get once a change is in effect.
type Probe<'a> = (&'a str, &'a str, &'a [&'a str], u16);

/// Writes `file`, waits until the echo sidecar's config holds every marker (or, for
/// markers starting with `!`, no longer holds it) and all proxies are in sync, then until
/// `probe` gets its status: connections the client's sidecar opened before the change
/// drain under the old listener config, which may serve one more request.
fn apply(world: &World, file: &str, yaml: &str, markers: &[&str], probe: Probe<'_>) {
    world.meshd.write(file, yaml);
    wait_for(
        &format!("the echo sidecar to hold {markers:?}"),
        Duration::from_secs(30),
        || {
            let dump = envoy::admin_get(&world.servers[0].ns, "/config_dump")?;
            markers
                .iter()
                .all(|m| match m.strip_prefix('!') {
                    Some(absent) => !dump.contains(absent),
                    None => dump.contains(m),
                })
                .then_some(())
        },
    );
    world.assert_in_sync();
    let (method, path, args, want) = probe;
    wait_for(
        &format!("{method} {path} {args:?} to get {want}"),
        Duration::from_secs(30),
        || (status(world, method, path, args) == want).then_some(()),
    );
}

/// The status of one request from the client's app; `args` go to curl before the URL.
fn status(world: &World, method: &str, path: &str, args: &[&str]) -> u16 {
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
        "-X",
        method,
    ])
    .args(args)
    .arg(format!("http://{VIP}:{HTTP_PORT}{path}"));
    let out = run_timeout(cmd, Duration::from_secs(30));
    assert!(out.status.is_some(), "curl timed out: {}", out.stderr);
    out.stdout
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("no status from curl: {:?} {:?}", out.stdout, out.stderr))
}

fn policy(name: &str, spec: &str) -> String {
    let indented: String = spec.lines().map(|l| format!("  {l}\n")).collect();
    format!(
        "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  \
         name: {name}\n  namespace: {NS}\nspec:\n  selector: {{matchLabels: {{app: echo}}}}\n{indented}"
    )
}

#[test]
fn allow_and_deny_by_path_method_header_and_ip() {
    let _guard = harness::lock();
    let world = echo_world();
    assert_eq!(
        status(&world, "GET", "/admin", &[]),
        200,
        "no policy allows"
    );

    apply(
        &world,
        "ap-deny-admin.yaml",
        &policy(
            "deny-admin",
            "action: DENY\nrules:\n- to:\n  - operation: {paths: [\"/admin*\"]}",
        ),
        &["ns[demo]-policy[deny-admin]-rule[0]"],
        ("GET", "/admin", &[], 403),
    );
    assert_eq!(status(&world, "GET", "/admin/users", &[]), 403);
    assert_eq!(
        status(&world, "GET", "/", &[]),
        200,
        "no ALLOW policy: allowed"
    );

    // With an ALLOW policy only what it names passes; DENY still wins.
    apply(
        &world,
        "ap-allow.yaml",
        &policy(
            "allow-get",
            "rules:\n- to:\n  - operation: {methods: [GET, HEAD]}\n  \
             when:\n  - {key: \"request.headers[x-team]\", values: [blue]}",
        ),
        &["ns[demo]-policy[allow-get]-rule[0]"],
        ("GET", "/", &[], 403),
    );
    let blue = ["-H", "x-team: blue"];
    assert_eq!(status(&world, "GET", "/", &blue), 200);
    assert_eq!(
        status(&world, "POST", "/", &blue),
        403,
        "method not allowed"
    );
    assert_eq!(status(&world, "GET", "/", &["-H", "x-team: red"]), 403);
    assert_eq!(status(&world, "GET", "/", &[]), 403, "header missing");
    assert_eq!(status(&world, "GET", "/admin", &blue), 403, "DENY first");

    // An ALLOW policy without rules denies everything.
    apply(
        &world,
        "ap-allow.yaml",
        &policy("allow-get", "action: ALLOW"),
        &["\"not_id\""],
        ("GET", "/", &blue, 403),
    );
    assert_eq!(status(&world, "GET", "/", &blue), 403);

    // By the client's address (the sidecar sees the client pod's IP).
    apply(
        &world,
        "ap-allow.yaml",
        &policy(
            "allow-get",
            &format!(
                "rules:\n- from:\n  - source: {{ipBlocks: [\"{}/32\"]}}",
                world.client.ip
            ),
        ),
        &[&world.client.ip.clone()],
        ("GET", "/", &[], 200),
    );
    assert_eq!(status(&world, "GET", "/", &[]), 200, "client IP allowed");
    apply(
        &world,
        "ap-deny-ip.yaml",
        &policy(
            "deny-ip",
            &format!(
                "action: DENY\nrules:\n- from:\n  - source: {{ipBlocks: [\"{}\"]}}\n\
                 - from:\n  - source: {{ipBlocks: [\"{}\"]}}\n  to:\n  - operation: {{methods: [DELETE]}}",
                "192.0.2.0/24", world.client.ip
            ),
        ),
        &["ns[demo]-policy[deny-ip]-rule[1]"],
        ("DELETE", "/", &[], 403),
    );
    assert_eq!(status(&world, "GET", "/", &[]), 200);
    assert_eq!(status(&world, "DELETE", "/", &[]), 403);
}

/// An ES256 key pair and its JWKS.
struct Signer {
    key: EcdsaKeyPair,
    kid: String,
}

impl Signer {
    fn new(kid: &str) -> Signer {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        Signer {
            key,
            kid: kid.to_string(),
        }
    }

    fn jwks(&self) -> String {
        // Uncompressed point: 0x04, x, y.
        let point = self.key.public_key().as_ref();
        serde_json::json!({"keys": [{
            "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": self.kid,
            "x": B64.encode(&point[1..33]), "y": B64.encode(&point[33..65]),
        }]})
        .to_string()
    }

    fn token(&self, iss: &str, sub: &str) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let header = serde_json::json!({"alg": "ES256", "typ": "JWT", "kid": self.kid});
        let claims = serde_json::json!({
            "iss": iss, "sub": sub, "aud": "echo", "iat": now, "exp": now + 3600,
        });
        let input = format!(
            "{}.{}",
            B64.encode(header.to_string()),
            B64.encode(claims.to_string())
        );
        let sig = self
            .key
            .sign(&SystemRandom::new(), input.as_bytes())
            .unwrap();
        format!("{input}.{}", B64.encode(sig.as_ref()))
    }
}

fn request_authentication(jwks_line: &str) -> String {
    format!(
        "apiVersion: security.istio.io/v1\nkind: RequestAuthentication\nmetadata:\n  \
         name: jwt\n  namespace: {NS}\nspec:\n  selector: {{matchLabels: {{app: echo}}}}\n  \
         jwtRules:\n  - issuer: {ISSUER}\n    audiences: [echo]\n    {jwks_line}\n"
    )
}

fn bearer(token: &str) -> String {
    format!("Authorization: Bearer {token}")
}

#[test]
fn jwt_missing_passes_bad_is_401_required_principal_is_403() {
    let _guard = harness::lock();
    let world = echo_world();
    let signer = Signer::new("k1");
    let jwks = signer.jwks();
    apply(
        &world,
        "ra.yaml",
        &request_authentication(&format!("jwks: '{jwks}'")),
        &["envoy.filters.http.jwt_authn", ISSUER],
        ("GET", "/", &["-H", "Authorization: Bearer not.a.jwt"], 401),
    );
    let good = bearer(&signer.token(ISSUER, "alice"));
    let forged = bearer(&Signer::new("k1").token(ISSUER, "alice"));
    let wrong_issuer = bearer(&signer.token("https://other.test", "alice"));
    assert_eq!(
        status(&world, "GET", "/", &[]),
        200,
        "no token: authn passes"
    );
    assert_eq!(status(&world, "GET", "/", &["-H", &good]), 200);
    assert_eq!(
        status(&world, "GET", "/", &["-H", &forged]),
        401,
        "bad signature"
    );
    assert_eq!(
        status(
            &world,
            "GET",
            "/",
            &["-H", "Authorization: Bearer not.a.jwt"]
        ),
        401
    );
    assert_eq!(status(&world, "GET", "/", &["-H", &wrong_issuer]), 401);

    // requestPrincipals makes a token required, and names whose.
    apply(
        &world,
        "ap-jwt.yaml",
        &policy(
            "require-jwt",
            &format!("rules:\n- from:\n  - source: {{requestPrincipals: [\"{ISSUER}/alice\"]}}"),
        ),
        &["ns[demo]-policy[require-jwt]-rule[0]"],
        ("GET", "/", &[], 403),
    );
    assert_eq!(status(&world, "GET", "/", &[]), 403, "token required");
    assert_eq!(status(&world, "GET", "/", &["-H", &good]), 200);
    let bob = bearer(&signer.token(ISSUER, "bob"));
    assert_eq!(
        status(&world, "GET", "/", &["-H", &bob]),
        403,
        "other subject"
    );
    assert_eq!(status(&world, "GET", "/", &["-H", &forged]), 401);
}

/// A static file server in meshd's network namespace (loopback only), serving `body` as
/// `/jwks.json`; meshd fetches it, Envoy never does.
fn serve_jwks(world: &World, body: &str) -> (String, Proc) {
    let dir = world.lab.path("jwks");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("jwks.json"), body).unwrap();
    let mut cmd = world.meshd.ns.command("python3");
    cmd.args([
        "-m",
        "http.server",
        "18080",
        "--bind",
        "127.0.0.1",
        "--directory",
    ])
    .arg(&dir);
    let proc = Proc::spawn("jwks-server", cmd, &world.lab.path("jwks-server.log"));
    ("http://127.0.0.1:18080/jwks.json".to_string(), proc)
}

#[test]
fn jwks_uri_is_fetched_by_meshd_and_inlined() {
    let _guard = harness::lock();
    let world = echo_world();
    let signer = Signer::new("k2");
    let (uri, _server) = serve_jwks(&world, &signer.jwks());
    let x = serde_json::from_str::<serde_json::Value>(&signer.jwks()).unwrap()["keys"][0]["x"]
        .as_str()
        .unwrap()
        .to_string();
    apply(
        &world,
        "ra.yaml",
        &request_authentication(&format!("jwksUri: {uri}")),
        &["envoy.filters.http.jwt_authn", &x],
        ("GET", "/", &["-H", "Authorization: Bearer not.a.jwt"], 401),
    );
    let good = bearer(&signer.token(ISSUER, "alice"));
    assert_eq!(status(&world, "GET", "/", &["-H", &good]), 200);
    let forged = bearer(&Signer::new("k2").token(ISSUER, "alice"));
    assert_eq!(status(&world, "GET", "/", &["-H", &forged]), 401);
}
