//! End-to-end: an ingress gateway. A real Envoy with a `router~` node id, started from
//! `meshd bootstrap --label istio=ingressgateway` in its own pod namespace (no traffic
//! capture: a gateway listens on its own ports), serves a Gateway's HTTP and HTTPS servers
//! and routes by host and path to two services whose pods run sidecars (and redirects a
//! host with `httpsRedirect` to HTTPS). The HTTPS certificate comes from a Secret (made
//! here with rcgen, signed by a test CA) over SDS, so meshd runs with
//! `--insecure-serve-gateway-secrets`; the client (curl) verifies it against the CA. A
//! second gateway, with meshd run without that flag, shows what happens then. Needs root
//! and Envoy; fails (never skips) without them.

#[path = "e2e/mod.rs"]
mod harness;

use std::time::Duration;

use base64::Engine;
use harness::envoy;
use harness::meshd::Meshd;
use harness::netns::{set_mode, Lab, Netns};
use harness::objects::{self, Port};
use harness::pod::Pod;
use harness::process::{run_timeout, wait_for, Proc};

const GATEWAY_NS: &str = "istio-system";
const APP_NS: &str = "shop";
const WEB_PORT: u16 = 8000;
const API_PORT: u16 = 9000;
/// The gateway's Service maps 80 -> 8080 and 443 -> 8443; the Gateway names 80 and 443.
const GW_HTTP: u16 = 8080;
const GW_HTTPS: u16 = 8443;

/// A test CA and a certificate it signs for the gateway's hosts, PEM.
struct Certs {
    ca: String,
    cert: String,
    key: String,
}

fn certs() -> Certs {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "meshd e2e test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let params = rcgen::CertificateParams::new(vec![
        "www.example.com".to_string(),
        "api.example.com".to_string(),
    ])
    .unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();
    Certs {
        ca: ca.pem(),
        cert: cert.pem(),
        key: key.serialize_pem(),
    }
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn istio_config(certs: &Certs) -> String {
    format!(
        r#"apiVersion: v1
kind: Namespace
metadata:
  name: {GATEWAY_NS}
---
apiVersion: v1
kind: Service
metadata:
  name: istio-ingressgateway
  namespace: {GATEWAY_NS}
spec:
  clusterIP: 10.96.0.50
  selector:
    istio: ingressgateway
  ports:
  - name: http2
    port: 80
    targetPort: {GW_HTTP}
  - name: https
    port: 443
    targetPort: {GW_HTTPS}
---
apiVersion: v1
kind: Secret
metadata:
  name: www-cert
  namespace: {GATEWAY_NS}
type: kubernetes.io/tls
data:
  tls.crt: {cert}
  tls.key: {key}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: shop-gateway
  namespace: {GATEWAY_NS}
spec:
  selector:
    istio: ingressgateway
  servers:
  - port: {{number: 80, name: http, protocol: HTTP}}
    hosts: ["{APP_NS}/*.example.com"]
  - port: {{number: 80, name: http-redirect, protocol: HTTP}}
    hosts: [secure.example.org]
    tls: {{httpsRedirect: true}}
  - port: {{number: 443, name: https, protocol: HTTPS}}
    hosts: ["{APP_NS}/*.example.com"]
    tls: {{mode: SIMPLE, credentialName: www-cert}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: www
  namespace: {APP_NS}
spec:
  hosts: [www.example.com]
  gateways: [{GATEWAY_NS}/shop-gateway]
  http:
  - match:
    - uri: {{prefix: /api/}}
    route:
    - destination: {{host: api}}
  - route:
    - destination: {{host: web}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: api
  namespace: {APP_NS}
spec:
  hosts: [api.example.com]
  gateways: [{GATEWAY_NS}/shop-gateway]
  http:
  - route:
    - destination: {{host: api.{APP_NS}.svc.cluster.local}}
"#,
        cert = b64(&certs.cert),
        key = b64(&certs.key),
    )
}

/// The gateway pod: a namespace without capture, Envoy from `meshd bootstrap` with a
/// router node id and the gateway's labels in its metadata, over SotW or Delta xDS.
fn start_gateway(lab: &mut Lab, meshd: &Meshd, delta: bool) -> (Netns, String, Proc) {
    let (ns, ip) = lab.attach("gw");
    let node_id =
        format!("router~{ip}~istio-ingressgateway-0.{GATEWAY_NS}~{GATEWAY_NS}.svc.cluster.local");
    let bootstrap = meshd.bootstrap_with(&node_id, delta, &["--label", "istio=ingressgateway"]);
    let path = lab.path("gateway.envoy.yaml");
    std::fs::write(&path, &bootstrap).unwrap();
    set_mode(&path, 0o644);
    let mut proc = envoy::start(&ns, "gateway", &path, &lab.path("gateway.envoy.log"));
    let http = format!("0.0.0.0_{GW_HTTP}");
    let https = format!("0.0.0.0_{GW_HTTPS}");
    envoy::wait_ready(&ns, &mut proc, &[&http, &https]);
    (ns, ip, proc)
}

/// curl from `ns`; the body, or why it failed.
fn curl(ns: &Netns, args: &[&str]) -> Result<String, String> {
    let mut cmd = ns.command("curl");
    cmd.args(["-sS", "-f", "-m", "5"]).args(args);
    let out = run_timeout(cmd, Duration::from_secs(8));
    if out.success() {
        Ok(out.stdout)
    } else {
        Err(format!("{:?}: {}", out.status, out.stderr.trim()))
    }
}

fn pod_of(body: &str) -> Option<&str> {
    body.split_whitespace().find_map(|w| w.strip_prefix("pod="))
}

/// The gateway, two app pods with sidecars, meshd and a client namespace without capture.
/// Fields drop in order: processes before their namespaces, the lab last.
struct World {
    gateway: Proc,
    gateway_ns: Netns,
    gateway_ip: String,
    client: Netns,
    ca: String,
    web: Pod,
    api: Pod,
    meshd: Meshd,
    lab: Lab,
}

impl World {
    fn new(serve_secrets: bool, delta: bool) -> World {
        let certs = certs();
        let mut lab = Lab::new();
        let mut meshd = Meshd::new(&mut lab);
        // Pods first (their addresses go into the config), then meshd, then the proxies.
        let mut web = Pod::new(&mut lab, "web-0", APP_NS);
        let mut api = Pod::new(&mut lab, "api-0", APP_NS);
        meshd.write("namespace.yaml", &objects::namespace(APP_NS));
        for (name, ip, vip, port) in [
            ("web", web.ip.clone(), "10.96.1.10", WEB_PORT),
            ("api", api.ip.clone(), "10.96.1.11", API_PORT),
        ] {
            let ports = [Port {
                name: "http",
                port,
                target: port,
            }];
            meshd.write(
                &format!("service-{name}.yaml"),
                &objects::service(name, APP_NS, vip, name, &ports),
            );
            meshd.write(
                &format!("pod-{name}.yaml"),
                &objects::pod(&format!("{name}-0"), APP_NS, &ip, name, &ports),
            );
        }
        meshd.write("gateway.yaml", &istio_config(&certs));
        if serve_secrets {
            meshd.start_with(&["--insecure-serve-gateway-secrets"]);
        } else {
            meshd.start();
        }
        for (pod, port) in [(&mut web, WEB_PORT), (&mut api, API_PORT)] {
            pod.start_app(&lab, &[port], &[]);
            let bootstrap = meshd.bootstrap(&pod.node_id(), false);
            pod.start_envoy(&lab, &bootstrap);
        }
        let (gateway_ns, gateway_ip, gateway) = start_gateway(&mut lab, &meshd, delta);
        let (client, _) = lab.attach("client");
        let ca_path = lab.path("ca.pem");
        std::fs::write(&ca_path, &certs.ca).unwrap();
        World {
            gateway,
            gateway_ns,
            gateway_ip,
            client,
            ca: ca_path.to_str().unwrap().to_string(),
            web,
            api,
            meshd,
            lab,
        }
    }

    /// Log tails for a failure message.
    fn context(&self, what: &str) -> String {
        format!(
            "{what}\n--- gateway envoy\n{}\n--- meshd\n{}\n--- web\n{}\n--- api\n{}",
            harness::process::tail(&self.lab.path("gateway.envoy.log"), 30),
            self.meshd.log_tail(),
            self.web.logs(),
            self.api.logs()
        )
    }

    /// HTTP to the Gateway's port 80 server (the gateway listens on 8080).
    fn http(&self, host: &str, path: &str) -> Result<String, String> {
        curl(
            &self.client,
            &[
                "-H",
                &format!("Host: {host}"),
                &format!("http://{}:{GW_HTTP}{path}", self.gateway_ip),
            ],
        )
    }

    /// HTTPS to the port 443 server (8443) by host name, verifying the certificate against
    /// the test CA when `verify`.
    fn https(&self, host: &str, path: &str, verify: bool) -> Result<String, String> {
        let resolve = format!("{host}:{GW_HTTPS}:{}", self.gateway_ip);
        let url = format!("https://{host}:{GW_HTTPS}{path}");
        let mut args = vec!["--resolve", resolve.as_str()];
        if verify {
            args.extend(["--cacert", self.ca.as_str()]);
        }
        args.push(url.as_str());
        curl(&self.client, &args)
    }

    /// The pod that answered `result`, failing with the logs when there is none.
    fn answered_by(&self, result: Result<String, String>) -> String {
        let body = result.unwrap_or_else(|e| panic!("{}", self.context(&e)));
        pod_of(&body)
            .map(str::to_string)
            .unwrap_or_else(|| panic!("{}", self.context(&body)))
    }

    fn assert_healthy(&mut self) {
        let rejected = envoy::rejected_updates(&self.gateway_ns);
        assert!(
            rejected.is_empty(),
            "the gateway rejected config: {rejected:?}"
        );
        let listeners = envoy::admin(&self.gateway_ns, "/listeners");
        assert!(
            !listeners.contains("virtualOutbound") && !listeners.contains("virtualInbound"),
            "a gateway gets no sidecar listeners: {listeners}"
        );
        self.gateway.assert_running();
    }
}

#[test]
fn ingress_gateway_serves_http_and_https_into_the_mesh() {
    let _guard = harness::lock();
    let mut w = World::new(true, false);

    // HTTP: by host and by path.
    let first = wait_for("the gateway to route HTTP", Duration::from_secs(30), || {
        w.http("www.example.com", "/").ok()
    });
    assert_eq!(pod_of(&first), Some("web-0"), "{}", w.context(&first));
    assert_eq!(
        w.answered_by(w.http("www.example.com", "/api/items")),
        "api-0"
    );
    let by_path = w.http("www.example.com", "/api/items").unwrap();
    assert!(by_path.contains("path=/api/items"), "{by_path}");
    assert_eq!(w.answered_by(w.http("api.example.com", "/")), "api-0");
    // A host no VirtualService binds: the gateway answers 404 itself.
    let unknown = w.http("other.example.com", "/");
    assert!(
        unknown.as_ref().is_err_and(|e| e.contains("404")),
        "{}",
        w.context(&format!("{unknown:?}"))
    );

    // httpsRedirect: plain HTTP for that host is sent to HTTPS.
    let redirect = curl(
        &w.client,
        &[
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{redirect_url}",
            "-H",
            "Host: secure.example.org",
            &format!("http://{}:{GW_HTTP}/login", w.gateway_ip),
        ],
    );
    assert_eq!(
        redirect.as_deref(),
        Ok("301 https://secure.example.org/login"),
        "{}",
        w.context(&format!("{redirect:?}"))
    );

    // HTTPS: the certificate from the Secret, verified against the test CA.
    let secure = wait_for(
        "the gateway to serve HTTPS",
        Duration::from_secs(30),
        || w.https("www.example.com", "/", true).ok(),
    );
    assert_eq!(pod_of(&secure), Some("web-0"), "{}", w.context(&secure));
    assert_eq!(
        w.answered_by(w.https("www.example.com", "/api/x", true)),
        "api-0"
    );
    assert_eq!(
        w.answered_by(w.https("api.example.com", "/", true)),
        "api-0"
    );
    // Without the CA the client refuses the certificate: it is the test CA's, not a default.
    let unverified = w.https("www.example.com", "/", false);
    assert!(unverified.is_err(), "{unverified:?}");
    // The certificate came over SDS under istiod's name.
    let secrets = envoy::admin(
        &w.gateway_ns,
        "/config_dump?resource=dynamic_active_secrets",
    );
    assert!(secrets.contains("kubernetes://www-cert"), "{secrets}");
    w.assert_healthy();
}

/// Without --insecure-serve-gateway-secrets no key leaves meshd: the HTTPS server has no
/// certificate (its handshakes fail) while the HTTP server and routing keep working. This
/// gateway speaks Delta xDS (the other one SotW).
#[test]
fn without_the_flag_https_fails_and_http_still_works() {
    let _guard = harness::lock();
    let mut w = World::new(false, true);
    let first = wait_for("the gateway to route HTTP", Duration::from_secs(30), || {
        w.http("www.example.com", "/").ok()
    });
    assert_eq!(pod_of(&first), Some("web-0"), "{}", w.context(&first));
    assert_eq!(w.answered_by(w.http("api.example.com", "/")), "api-0");
    let secure = w.https("www.example.com", "/", true);
    assert!(
        secure.is_err(),
        "{}",
        w.context(&format!("HTTPS worked without secrets: {secure:?}"))
    );
    let secrets = envoy::admin(
        &w.gateway_ns,
        "/config_dump?resource=dynamic_active_secrets",
    );
    assert!(!secrets.contains("PRIVATE KEY"), "{secrets}");
    w.assert_healthy();
}
