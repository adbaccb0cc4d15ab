//! Unit tests of the sidecar bootstrap.

use super::*;
use prost::Message;

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
        secure: None,
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

#[test]
fn cds_and_lds_wait_for_meshd() {
    let json = render_bootstrap(&options("meshd:15010")).unwrap();
    for source in ["cdsConfig", "ldsConfig"] {
        assert_eq!(
            json["dynamicResources"][source]["initialFetchTimeout"], "0s",
            "{source}"
        );
        assert!(json["dynamicResources"][source]["ads"].is_object());
    }
}

#[test]
fn service_account_and_cluster_defaults() {
    let json = render_bootstrap(&options("meshd:15010")).unwrap();
    assert_eq!(
        json["node"]["metadata"]["SERVICE_ACCOUNT"],
        "bookinfo-productpage"
    );
    // `app` names the service cluster.
    assert_eq!(json["node"]["cluster"], "productpage.default");

    let mut o = options("meshd:15010");
    o.service_account = None;
    o.labels = BTreeMap::from([
        ("app".into(), "ignored".into()),
        ("app.kubernetes.io/name".into(), "catalog".into()),
    ]);
    let json = render_bootstrap(&o).unwrap();
    assert_eq!(json["node"]["metadata"]["SERVICE_ACCOUNT"], "default");
    assert_eq!(json["node"]["cluster"], "catalog.default");

    // No app label: the workload (pod name here) stands in.
    o.labels.clear();
    let json = render_bootstrap(&o).unwrap();
    assert_eq!(json["node"]["cluster"], "productpage-v1.default");
}

#[test]
fn static_listeners_cannot_collide_with_dynamic_ones() {
    let b = bootstrap(&options("meshd:15010")).unwrap();
    let listeners = b.static_resources.unwrap().listeners;
    let names: Vec<&str> = listeners.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["meshd_readiness_15021", "meshd_prometheus_15090"]);
    for name in names {
        assert!(!name.starts_with(naming::WILDCARD_ADDRESS), "{name}");
    }
    assert!(naming::is_proxy_port(naming::READINESS_PORT));
    assert!(naming::is_proxy_port(naming::PROMETHEUS_PORT));
}

#[test]
fn global_connection_limit_as_resource_monitor() {
    let json = render_bootstrap(&options("meshd:15010")).unwrap();
    let monitors = json["overloadManager"]["resourceMonitors"]
        .as_array()
        .unwrap();
    assert_eq!(monitors.len(), 1);
    assert_eq!(
        monitors[0]["name"],
        "envoy.resource_monitors.global_downstream_max_connections"
    );
    assert_eq!(
        monitors[0]["typedConfig"]["maxActiveDownstreamConnections"],
        GLOBAL_DOWNSTREAM_MAX_CONNECTIONS.to_string()
    );
    // Not through the deprecated runtime key.
    assert!(!json["layeredRuntime"]
        .to_string()
        .contains("global_downstream_max_connections"));
}

#[test]
fn istio_stats_tag_rules_replace_envoys_defaults() {
    let json = render_bootstrap(&options("meshd:15010")).unwrap();
    let stats = &json["statsConfig"];
    assert_eq!(stats["useAllDefaultTags"], false);
    let tags = stats["statsTags"].as_array().unwrap();
    assert_eq!(tags.len(), ISTIO_STATS_TAGS.len());
    // The first rule is the one that keeps `outbound|9080||reviews.default.svc.cluster.local`
    // whole: everything up to the `;` of the delimited stat name.
    assert_eq!(tags[0]["tagName"], "cluster_name");
    assert_eq!(tags[0]["regex"], r"^cluster(\.(.+);)");
    let names: Vec<&str> = tags
        .iter()
        .map(|t| t["tagName"].as_str().unwrap())
        .collect();
    for name in [
        "http_conn_manager_prefix",
        "tcp_prefix",
        "response_code",
        "response_code_class",
        "listener_address",
    ] {
        assert!(names.contains(&name), "{name} in {names:?}");
    }
}

#[test]
fn static_stat_names_as_in_istios_bootstrap() {
    let b = bootstrap(&options("meshd:15010")).unwrap();
    let statics = b.static_resources.unwrap();
    for c in &statics.clusters {
        assert_eq!(c.alt_stat_name, format!("{};", c.name));
    }
    let prefixes: Vec<String> = statics
        .listeners
        .iter()
        .map(|l| {
            let filter = &l.filter_chains[0].filters[0];
            let Some(envoy_types::pb::envoy::config::listener::v3::filter::ConfigType::TypedConfig(
                any,
            )) = &filter.config_type
            else {
                panic!("typed config");
            };
            let hcm = envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager::decode(&any.value[..]).unwrap();
            hcm.stat_prefix
        })
        .collect();
    assert_eq!(
        prefixes,
        [READINESS_STAT_PREFIX, PROMETHEUS_STAT_PREFIX],
        "readiness then Prometheus"
    );
}

#[test]
fn runtime_raises_the_regex_program_limit_as_istio_does() {
    let json = render_bootstrap(&options("meshd:15010")).unwrap();
    let layers = json["layeredRuntime"]["layers"].as_array().unwrap();
    assert_eq!(
        layers[0]["staticLayer"]["re2.max_program_size.error_level"],
        "32768"
    );
    assert_eq!(
        layers[0]["staticLayer"]["envoy.reloadable_features.http_reject_path_with_fragment"],
        false
    );
    assert_eq!(layers[1]["name"], "admin");
}
