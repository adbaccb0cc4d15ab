use super::*;
use crate::mesh::build::istio_test_support::{assert_rejects, istio};

fn se(yaml_spec: &str) -> wire::IstioObject<wire::ServiceEntrySpec> {
    istio("external", "apps", yaml_spec)
}

#[test]
fn reads_hosts_ports_and_endpoints() {
    let checked = check(&se("
hosts: [api.example.com, legacy]
addresses: [240.0.0.1]
ports:
- {number: 443, name: https, protocol: TLS}
- {number: 8080, name: http-alt}
resolution: STATIC
location: MESH_INTERNAL
endpoints:
- address: 10.1.0.5
  ports: {https: 8443}
  labels: {app: legacy}
"))
    .unwrap();
    assert_eq!(
        checked.hosts,
        ["api.example.com", "legacy.apps.svc.cluster.local"]
    );
    assert_eq!(checked.ports[0].protocol, Protocol::Tls);
    assert_eq!(
        checked.ports[1].protocol,
        Protocol::Http,
        "from the port name"
    );
    assert_eq!(checked.location, Location::MeshInternal);
    assert_eq!(checked.resolution, Resolution::Static);
    assert_eq!(checked.endpoints[0].ports["https"], 8443);
}

#[test]
fn rejects_with_field_and_reason() {
    let cases = [
        ("ports: [{number: 80, name: http}]\n", "spec.hosts", "at least one host"),
        ("hosts: [a.com]\n", "spec.ports", "at least one port"),
        (
            "hosts: ['*.a.com']\nports: [{number: 80, name: http}]\nresolution: DNS\n",
            "spec.hosts[0]",
            "cannot be resolved by DNS",
        ),
        (
            "hosts: [a.com]\nports: [{number: 80, name: http}]\nresolution: STATIC\n",
            "spec.endpoints",
            "needs endpoints",
        ),
        (
            "hosts: [a.com]\nports: [{number: 80, name: http}]\nresolution: STATIC\nendpoints: [{address: a.com}]\n",
            "spec.endpoints[0].address",
            "not an IP",
        ),
        (
            "hosts: [a.com]\nports: [{number: 80, name: http, protocol: QUIC}]\n",
            "spec.ports[0].protocol",
            "not a protocol",
        ),
        (
            "hosts: [a.com]\nports: [{number: 80, name: a}, {number: 80, name: b}]\n",
            "spec.ports[1].number",
            "listed twice",
        ),
        (
            "hosts: [a.com]\nports: [{number: 80, name: http}]\nresolution: DNS\nendpoints: [{address: b.com, ports: {grpc: 9}}]\n",
            "spec.endpoints[0].ports.grpc",
            "no port named",
        ),
        (
            "hosts: [a.com]\naddresses: [300.1.1.1]\nports: [{number: 80, name: http}]\n",
            "spec.addresses[0]",
            "not an IP or CIDR",
        ),
        (
            "hosts: [a.com]\nports: [{number: 80, name: http}]\nresolution: MAGIC\n",
            "spec.resolution",
            "not one of",
        ),
    ];
    assert_rejects(&cases, |spec| check(&se(spec)));
}
