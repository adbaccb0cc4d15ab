use std::path::Path;

use crate::source::parse::parse_file;
use crate::source::KubeObject;

const NETWORKING: &str = "apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata:
  name: reviews
  namespace: bookinfo
spec:
  hosts: [reviews]
  http:
  - match:
    - headers:
        end-user: {exact: jason}
      uri: {prefix: /api}
      ignoreUriCase: true
    route:
    - destination: {host: reviews, subset: v2}
    retries: {attempts: 3, perTryTimeout: 2s, retryOn: 5xx}
  - route:
    - destination: {host: reviews, subset: v1, port: {number: 9080}}
      weight: 90
    - destination: {host: reviews, subset: v3}
      weight: 10
    fault:
      abort: {httpStatus: 503, percentage: {value: 0.5}}
---
apiVersion: networking.istio.io/v1beta1
kind: DestinationRule
metadata:
  name: reviews
  namespace: bookinfo
spec:
  host: reviews
  trafficPolicy:
    outlierDetection: {consecutive5xxErrors: 3, interval: 10s}
    connectionPool:
      http: {http1MaxPendingRequests: 1}
  subsets:
  - name: v1
    labels: {version: v1}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: httpbin-ext
spec:
  hosts: [httpbin.org]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: DNS
  location: MESH_EXTERNAL
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata:
  name: default
  namespace: istio-system
spec:
  egress:
  - hosts: [./*, istio-system/*]
  outboundTrafficPolicy: {mode: REGISTRY_ONLY}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: ingress
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: ['*.example.com']
    tls: {mode: SIMPLE, credentialName: example-cert}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata:
  name: vm-1
spec:
  address: 10.1.2.3
  labels: {app: legacy}
  ports: {http: 8080}
";

#[test]
fn reads_every_networking_kind_at_each_version() {
    let parsed = parse_file(Path::new("istio.yaml"), NETWORKING);
    assert!(parsed.problems.is_empty(), "{:?}", parsed.problems);
    let refs: Vec<String> = parsed
        .objects
        .iter()
        .map(|o| o.object.object_ref().to_string())
        .collect();
    assert_eq!(
        refs,
        [
            "VirtualService bookinfo/reviews",
            "DestinationRule bookinfo/reviews",
            "ServiceEntry default/httpbin-ext",
            "Sidecar istio-system/default",
            "Gateway default/ingress",
            "WorkloadEntry default/vm-1",
        ]
    );
    let KubeObject::VirtualService(vs) = &*parsed.objects[0].object else {
        panic!("not a VirtualService");
    };
    let first = &vs.spec.http[0];
    assert_eq!(
        first.matches[0].headers["end-user"].exact.as_deref(),
        Some("jason")
    );
    assert_eq!(first.matches[0].ignore_uri_case, Some(true));
    assert_eq!(first.retries.as_ref().unwrap().attempts, Some(3));
    let split = &vs.spec.http[1];
    assert_eq!(
        split.route.iter().map(|r| r.weight).collect::<Vec<_>>(),
        [Some(90), Some(10)]
    );
    let abort = split.fault.as_ref().unwrap().abort.as_ref().unwrap();
    assert_eq!(abort.percentage.as_ref().unwrap().value, Some(0.5));
    let KubeObject::DestinationRule(dr) = &*parsed.objects[1].object else {
        panic!("not a DestinationRule");
    };
    let policy = dr.spec.traffic_policy.as_ref().unwrap();
    assert_eq!(
        policy
            .outlier_detection
            .as_ref()
            .unwrap()
            .consecutive_5xx_errors,
        Some(3)
    );
    assert_eq!(dr.spec.subsets[0].labels["version"], "v1");
    let KubeObject::Gateway(gw) = &*parsed.objects[4].object else {
        panic!("not a Gateway");
    };
    let tls = gw.spec.servers[0].tls.as_ref().unwrap();
    assert_eq!(tls.credential_name.as_deref(), Some("example-cert"));
}

#[test]
fn a_bad_field_names_the_object_field_and_line() {
    let text = NETWORKING.replace("weight: 90", "weight: ninety");
    let parsed = parse_file(Path::new("istio.yaml"), &text);
    assert_eq!(parsed.problems.len(), 1, "{:?}", parsed.problems);
    let problem = parsed.problems[0].to_string();
    assert!(
        problem.contains("VirtualService bookinfo/reviews")
            && problem.contains("spec.http[1].route[0].weight")
            && problem.contains("line 19"),
        "{problem}"
    );
    // The other documents are still read.
    assert_eq!(parsed.objects.len(), 5);
}
