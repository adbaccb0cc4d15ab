//! Unit tests of the sidecar bootstrap.

use super::*;

fn options(addr: &str) -> BootstrapOptions {
    BootstrapOptions {
        node_id: "sidecar~10.0.0.1~productpage-v1.default~default.svc.cluster.local".into(),
        xds_address: addr.into(),
        delta: false,
        admin_port: 15000,
        labels: BTreeMap::from([("app".into(), "productpage".into())]),
        service_account: Some("bookinfo-productpage".into()),
        workload_name: None,
        cluster_id: "Kubernetes".into(),
    }
}

#[test]
fn xds_address_forms() {
    assert_eq!(
        parse_xds_address("10.0.0.2:15010").unwrap(),
        ("10.0.0.2".into(), 15010, true)
    );
    assert_eq!(
        parse_xds_address("[::1]:15010").unwrap(),
        ("::1".into(), 15010, true)
    );
    assert_eq!(
        parse_xds_address("meshd.istio-system.svc:15010").unwrap(),
        ("meshd.istio-system.svc".into(), 15010, false)
    );
    for bad in [
        "",
        "meshd",
        ":15010",
        "meshd:",
        "meshd:0",
        "meshd:99999",
        "a b:1",
        "::1:15010",
    ] {
        assert!(
            matches!(parse_xds_address(bad), Err(BootstrapError::XdsAddress(_))),
            "{bad}"
        );
    }
}

#[test]
fn renders_node_and_ads() {
    let json = render_bootstrap(&options("meshd:15010")).unwrap();
    assert_eq!(json["node"]["metadata"]["NAMESPACE"], "default");
    assert_eq!(json["node"]["metadata"]["LABELS"]["app"], "productpage");
    assert_eq!(json["node"]["metadata"]["INSTANCE_IPS"], "10.0.0.1");
    assert_eq!(json["dynamicResources"]["adsConfig"]["apiType"], "GRPC");
    assert_eq!(json["staticResources"]["clusters"][0]["type"], "STRICT_DNS");
    let mut delta = options("10.0.0.2:15010");
    delta.delta = true;
    let json = render_bootstrap(&delta).unwrap();
    assert_eq!(
        json["dynamicResources"]["adsConfig"]["apiType"],
        "DELTA_GRPC"
    );
    assert_eq!(json["staticResources"]["clusters"][0]["type"], "STATIC");
}

#[test]
fn rejects_bad_node_id() {
    let mut o = options("meshd:15010");
    o.node_id = "nope".into();
    assert!(matches!(
        render_bootstrap(&o),
        Err(BootstrapError::NodeId(_))
    ));
}
