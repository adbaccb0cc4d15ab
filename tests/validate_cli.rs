//! `meshd validate` against the bundled inputs, through the built binary.

use std::process::Command;

fn validate(dir: &str) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_meshd"))
        .args(["validate", dir])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("running meshd");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn bookinfo_is_valid() {
    let (ok, out) = validate("testdata/bookinfo");
    assert!(ok, "{out}");
    assert!(out.contains("no problems"), "{out}");
}

#[test]
fn invalid_inputs_are_each_reported() {
    let (ok, out) = validate("testdata/invalid");
    assert!(!ok, "{out}");
    let expected = [
        "bad-ports.yaml: document 0 (line 4): Service default/no-port: field spec.ports[0].port: missing port number",
        "bad-ports.yaml: document 1 (line 14): Service default/huge-port: field spec.ports[0].port: port 70000 is outside 1-65535",
        "bad-ports.yaml: document 2 (line 32, column 11): Service default/word-port: field spec.ports[0].port: expected an integer, found eighty",
        "bad-ports.yaml: document 3 (line 34): Service default/twice: field spec.ports[1].port: duplicate port 80",
        "bad-ips.yaml: document 0 (line 2): Service default/bad-vip: field spec.clusterIP:",
        "bad-ips.yaml: document 1 (line 12): Pod default/bad-ip-pod: field status.podIP:",
        "no-name.yaml: document 0 (line 2): Service default/<unnamed>: field metadata.name: missing name",
        "not-yaml.yaml: document 0 (line 7, column 5): not valid yaml",
        "slice-without-service.yaml: document 0 (line 2): EndpointSlice default/orphan-abcde: field metadata.labels[kubernetes.io/service-name]",
        "truncated.json: document 0 (line 5, column 1): not valid json",
        "web-again.yaml: document 0 (line 3): Service default/web: field metadata.name: duplicate object, first defined at testdata/invalid/good.yaml",
        "pods-list.json: document 0 (line 12, column 9): Pod default/web-3: field items[1].spec.containers[0].ports[0].containerPort: invalid type: string \"http\"",
        "istio-networking.yaml: document 0 (line 2): VirtualService default/reviews: field spec.http[0].route: total destination weight is 0",
        "istio-networking.yaml: document 1 (line 16): DestinationRule default/reviews: field spec.trafficPolicy.loadBalancer.simple: \"FASTEST\" is not one of",
        "istio-networking.yaml: document 2 (line 26): ServiceEntry default/external: field spec.endpoints: resolution STATIC needs endpoints",
        "istio-networking.yaml: document 3 (line 37): VirtualService default/ratings: field spec.http[0].route[0].destination.subset: subset \"v9\" of ratings.default.svc.cluster.local is not defined",
        "bad-secret.yaml: document 0 (line 2): Secret default/broken-cert: field data[\"tls.crt\"]: not PEM: expected a certificate",
        "istio-networking.yaml: document 4 (line 49): Sidecar default/default: field spec.egress[0].hosts[0]: \"reviews\" must be namespace/host",
        "istio-networking.yaml: document 5 (line 59): Gateway default/ingress: field spec.servers[0].tls: an HTTPS or TLS server needs tls settings",
        "istio-networking.yaml: document 6 (line 71): WorkloadEntry default/vm-1: field spec.ports.http: port 70000 is not in 1-65535",
        "istio-security.yaml: document 0 (line 3): AuthorizationPolicy default/ext-authz: field spec.action: CUSTOM needs an ext_authz extension provider",
        "istio-security.yaml: document 1 (line 16): RequestAuthentication default/jwt: field spec.jwtRules[0].issuer: issuer is required",
        "peer-authentication.yaml: document 0 (line 2): PeerAuthentication default/strict-ports: field spec.portLevelMtls: portLevelMtls requires a selector",
        "23 problem(s)",
    ];
    for line in expected {
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }
    // Unknown kinds are skipped silently.
    assert!(
        !out.contains("ConfigMap") && !out.contains("Deployment"),
        "{out}"
    );
}

#[test]
fn a_missing_directory_is_an_error() {
    let (ok, out) = validate("testdata/does-not-exist");
    assert!(!ok);
    assert!(out.contains("does-not-exist"), "{out}");
}
