//! deploy/: the manifests that run meshd in istiod's place parse, hold the fields they must
//! (replicas, probes, hardening, the `istiod` Service ports), grant list and watch on every
//! kind meshd's registry reads and write access only where meshd writes, and the example
//! sidecar's bootstrap is still what `meshd bootstrap` prints.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use clap::Parser;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule, Role};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Every document of a manifest file, as JSON values.
fn documents(file: &str) -> Vec<Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    text.split("\n---\n")
        .filter(|doc| {
            doc.lines()
                .any(|l| !l.trim().is_empty() && !l.starts_with('#'))
        })
        .map(|doc| {
            serde_saphyr::from_str::<Value>(doc)
                .unwrap_or_else(|e| panic!("{file}: a document does not parse: {e}"))
        })
        .collect()
}

/// The one object of `kind` named `name`, decoded as its Kubernetes type (which checks the
/// shape of every field the type knows).
fn object<T: DeserializeOwned>(docs: &[Value], kind: &str, name: &str) -> T {
    let doc = docs
        .iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"));
    serde_json::from_value(doc.clone()).unwrap_or_else(|e| panic!("{kind} {name}: {e}"))
}

fn plural(kind: &str) -> String {
    let lower = kind.to_ascii_lowercase();
    match lower.strip_suffix('y') {
        Some(stem) if !stem.ends_with(['a', 'e', 'o', 'u']) => format!("{stem}ies"),
        _ => format!("{lower}s"),
    }
}

fn grants(rules: &[PolicyRule], group: &str, resource: &str, verb: &str) -> bool {
    rules.iter().any(|r| {
        r.api_groups.iter().flatten().any(|g| g == group)
            && r.resources.iter().flatten().any(|x| x == resource)
            && r.verbs.iter().any(|v| v == verb)
    })
}

#[test]
fn cluster_role_reads_every_registry_kind_and_writes_only_what_meshd_writes() {
    let docs = documents("meshd.yaml");
    let cluster_role: ClusterRole = object(&docs, "ClusterRole", "meshd");
    let role: Role = object(&docs, "Role", "meshd");
    let cluster_rules = cluster_role.rules.unwrap_or_default();
    let role_rules = role.rules.unwrap_or_default();
    assert_eq!(role.metadata.namespace.as_deref(), Some("istio-system"));

    for kind in meshd::source::kinds::KINDS {
        for verb in ["list", "watch"] {
            assert!(
                grants(&cluster_rules, kind.group, &plural(kind.kind), verb),
                "the ClusterRole does not grant {verb} on {} ({})",
                plural(kind.kind),
                kind.group
            );
        }
    }
    assert!(grants(
        &cluster_rules,
        "authentication.k8s.io",
        "tokenreviews",
        "create"
    ));

    // Least privilege: no wildcard anywhere, no delete, and writes only on the resources
    // meshd writes (token reviews, the root-certificate ConfigMaps, its Secret and Lease).
    let writable: BTreeSet<&str> = ["tokenreviews", "configmaps", "secrets", "leases"].into();
    for rule in cluster_rules.iter().chain(&role_rules) {
        let resources = rule.resources.clone().unwrap_or_default();
        let groups = rule.api_groups.clone().unwrap_or_default();
        assert!(
            !rule
                .verbs
                .iter()
                .any(|v| v == "*" || v == "delete" || v == "deletecollection"),
            "{rule:?}"
        );
        assert!(
            !resources.iter().chain(&groups).any(|x| x == "*"),
            "{rule:?}"
        );
        let writes = rule
            .verbs
            .iter()
            .any(|v| matches!(v.as_str(), "create" | "update" | "patch"));
        if writes {
            assert!(
                resources.iter().all(|r| writable.contains(r.as_str())),
                "write access beyond what meshd writes: {rule:?}"
            );
        }
        let updates = rule
            .verbs
            .iter()
            .any(|v| matches!(v.as_str(), "update" | "patch"));
        if updates {
            assert!(
                rule.resource_names.as_ref().is_some_and(|n| !n.is_empty()),
                "update or patch must name its objects: {rule:?}"
            );
        }
    }
    // Secrets are written only in istio-system (the Role), never cluster-wide.
    assert!(!grants(&cluster_rules, "", "secrets", "create"));
    assert!(grants(&role_rules, "", "secrets", "create"));
    assert!(grants(
        &role_rules,
        "coordination.k8s.io",
        "leases",
        "create"
    ));
}

#[test]
fn deployment_runs_two_hardened_replicas_that_meshd_accepts() {
    let docs = documents("meshd.yaml");
    let deployment: Deployment = object(&docs, "Deployment", "meshd");
    assert_eq!(
        deployment.metadata.namespace.as_deref(),
        Some("istio-system")
    );
    let spec = deployment.spec.expect("spec");
    assert_eq!(spec.replicas, Some(2));
    let pod = spec.template.spec.expect("pod spec");
    assert_eq!(pod.service_account_name.as_deref(), Some("meshd"));
    let pod_security = pod.security_context.expect("pod securityContext");
    assert_eq!(pod_security.run_as_non_root, Some(true));
    let anti_affinity = pod
        .affinity
        .and_then(|a| a.pod_anti_affinity)
        .expect("podAntiAffinity");
    assert!(
        anti_affinity
            .preferred_during_scheduling_ignored_during_execution
            .is_some_and(|terms| !terms.is_empty())
            || anti_affinity
                .required_during_scheduling_ignored_during_execution
                .is_some_and(|terms| !terms.is_empty())
    );

    let container = pod
        .containers
        .iter()
        .find(|c| c.name == "meshd")
        .expect("meshd container");
    let security = container.security_context.clone().expect("securityContext");
    assert_eq!(security.read_only_root_filesystem, Some(true));
    assert_eq!(security.allow_privilege_escalation, Some(false));
    let resources = container.resources.clone().expect("resources");
    assert!(resources.requests.is_some_and(|r| r.contains_key("cpu")));
    assert!(resources.limits.is_some_and(|l| l.contains_key("memory")));
    let readiness = container
        .readiness_probe
        .clone()
        .and_then(|p| p.http_get)
        .expect("readiness httpGet");
    assert_eq!(readiness.path.as_deref(), Some("/ready"));
    assert_eq!(
        readiness.port,
        k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(15014)
    );

    // The arguments are ones meshd's own command line accepts.
    let args = container.args.clone().expect("args");
    assert!(args.iter().any(|a| a == "--kubernetes"), "{args:?}");
    let argv = std::iter::once("meshd".to_string()).chain(args);
    if let Err(error) = meshd::cli::Cli::try_parse_from(argv) {
        panic!("meshd rejects the Deployment's args: {error}");
    }
}

#[test]
fn istiod_service_keeps_istiods_ports_and_selects_the_meshd_pods() {
    let docs = documents("meshd.yaml");
    let service: Service = object(&docs, "Service", "istiod");
    assert_eq!(service.metadata.namespace.as_deref(), Some("istio-system"));
    let spec = service.spec.expect("spec");
    let ports: BTreeSet<i32> = spec.ports.iter().flatten().map(|p| p.port).collect();
    assert_eq!(ports, [15010, 15012, 15014].into());
    let selector = spec.selector.expect("selector");

    let deployment: Deployment = object(&docs, "Deployment", "meshd");
    let template = deployment.spec.expect("spec").template;
    let labels = template.metadata.and_then(|m| m.labels).expect("labels");
    assert!(selector.iter().all(|(k, v)| labels.get(k) == Some(v)));
    let container_ports: BTreeSet<i32> = template.spec.expect("pod").containers[0]
        .ports
        .iter()
        .flatten()
        .map(|p| p.container_port)
        .collect();
    assert!(ports.is_subset(&container_ports), "{container_ports:?}");

    let budget: PodDisruptionBudget = object(&docs, "PodDisruptionBudget", "meshd");
    let budget = budget.spec.expect("spec");
    let budget_selector = budget
        .selector
        .and_then(|s| s.match_labels)
        .expect("matchLabels");
    assert!(budget_selector
        .iter()
        .all(|(k, v)| labels.get(k) == Some(v)));
    assert!(budget.min_available.is_some() || budget.max_unavailable.is_some());
}

/// The pod template labels of Deployment `name`.
fn deployment_labels(docs: &[Value], name: &str) -> std::collections::BTreeMap<String, String> {
    let deployment: Deployment = object(docs, "Deployment", name);
    deployment
        .spec
        .and_then(|s| s.template.metadata)
        .and_then(|m| m.labels)
        .unwrap_or_default()
}

#[test]
fn example_sidecar_is_stock_envoy_with_the_bootstrap_meshd_prints() {
    let docs = documents("example/sidecar-demo.yaml");
    let config: ConfigMap = object(&docs, "ConfigMap", "envoy-bootstrap");
    let in_manifest = config.data.expect("data")["bootstrap.yaml"].clone();
    // The files the pods mount, made here (a root and a token) and named by their pod
    // paths in what meshd prints.
    let dir = std::env::temp_dir().join(format!("meshd-deploy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (root, token) = (dir.join("root-cert.pem"), dir.join("istio-token"));
    let cert = rcgen::generate_simple_self_signed(vec!["root".to_string()]).unwrap();
    std::fs::write(&root, cert.cert.pem()).unwrap();
    std::fs::write(&token, "header.payload.signature").unwrap();
    let printed = Command::new(env!("CARGO_BIN_EXE_meshd"))
        .args([
            "bootstrap",
            "--node-id",
            "sidecar~0.0.0.0~workload.demo~demo.svc.cluster.local",
            "--xds-address",
            "istiod.istio-system.svc:15012",
            "--watch-token-file",
        ])
        .arg("--root-cert")
        .arg(&root)
        .arg("--token-file")
        .arg(&token)
        .output()
        .expect("running meshd bootstrap");
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(printed.status.success(), "{printed:?}");
    let printed = String::from_utf8(printed.stdout)
        .unwrap()
        .replace(
            &root.display().to_string(),
            "/var/run/secrets/istio/root-cert.pem",
        )
        .replace(
            &token.display().to_string(),
            "/var/run/secrets/tokens/istio-token",
        );
    assert_eq!(
        in_manifest, printed,
        "deploy/example/sidecar-demo.yaml's bootstrap differs from what meshd prints now: \
         regenerate it with the command written above it"
    );

    for name in ["echo", "client"] {
        let deployment: Deployment = object(&docs, "Deployment", name);
        let pod = deployment.spec.expect("spec").template.spec.expect("pod");
        let envoy = pod
            .containers
            .iter()
            .find(|c| c.name == "envoy")
            .expect("envoy sidecar");
        assert!(
            envoy
                .image
                .as_deref()
                .is_some_and(|i| i.starts_with("envoyproxy/envoy:v1.40")),
            "{name}: the sidecar is not stock Envoy 1.40: {:?}",
            envoy.image
        );
        let security = envoy.security_context.clone().expect("securityContext");
        assert_eq!(
            security.run_as_user,
            Some(1337),
            "{name}: capture exempts uid 1337"
        );
        // The bootstrap's files: the token (audience istio-ca) and meshd's root.
        let volumes = pod.volumes.clone().unwrap_or_default();
        let token = volumes
            .iter()
            .filter_map(|v| v.projected.as_ref())
            .flat_map(|p| p.sources.iter().flatten())
            .filter_map(|s| s.service_account_token.as_ref())
            .next()
            .unwrap_or_else(|| panic!("{name}: no projected ServiceAccount token"));
        assert_eq!(token.audience.as_deref(), Some("istio-ca"), "{name}");
        assert_eq!(token.path, "istio-token", "{name}");
        assert!(
            volumes.iter().any(|v| v
                .config_map
                .as_ref()
                .is_some_and(|c| c.name == "istio-ca-root-cert")),
            "{name}: meshd's root is not mounted"
        );
        let mounts: Vec<&str> = envoy
            .volume_mounts
            .iter()
            .flatten()
            .map(|m| m.mount_path.as_str())
            .collect();
        for dir in ["/var/run/secrets/tokens", "/var/run/secrets/istio"] {
            assert!(
                mounts.contains(&dir),
                "{name}: {dir} not mounted: {mounts:?}"
            );
        }
        let labels = deployment_labels(&docs, name);
        assert_eq!(
            labels.get("security.istio.io/tlsMode").map(String::as_str),
            Some("istio"),
            "{name}"
        );
        let init = pod.init_containers.expect("init containers");
        let capture = init.iter().find(|c| c.name == "capture").expect("capture");
        let caps = capture
            .security_context
            .clone()
            .and_then(|s| s.capabilities)
            .and_then(|c| c.add)
            .unwrap_or_default();
        assert!(caps.iter().any(|c| c == "NET_ADMIN"), "{name}: {caps:?}");
    }
}

#[test]
fn meshd_names_itself_in_the_leader_lease_by_its_pod_name() {
    let docs = documents("meshd.yaml");
    let deployment: Deployment = object(&docs, "Deployment", "meshd");
    let pod = deployment.spec.expect("spec").template.spec.expect("pod");
    let container = pod
        .containers
        .iter()
        .find(|c| c.name == "meshd")
        .expect("meshd container");
    let pod_name = container
        .env
        .iter()
        .flatten()
        .find(|e| e.name == "POD_NAME")
        .expect("POD_NAME in the environment");
    let field = pod_name
        .value_from
        .as_ref()
        .and_then(|v| v.field_ref.as_ref())
        .expect("POD_NAME from the downward API");
    assert_eq!(field.field_path, "metadata.name");

    // The names meshd writes are the ones the Role lets it update.
    let role: Role = object(&docs, "Role", "meshd");
    let updatable: BTreeSet<String> = role
        .rules
        .unwrap_or_default()
        .iter()
        .filter(|r| r.verbs.iter().any(|v| v == "update"))
        .flat_map(|r| r.resource_names.clone().unwrap_or_default())
        .collect();
    assert!(updatable.contains(meshd::identity::lease::LEASE_NAME));
    assert!(updatable.contains(meshd::identity::ca_secret::ISTIO_CA_SECRET));
    let cluster_role: ClusterRole = object(&docs, "ClusterRole", "meshd");
    assert!(cluster_role.rules.unwrap_or_default().iter().any(|r| {
        r.verbs.iter().any(|v| v == "update")
            && r.resource_names.as_ref().is_some_and(|n| {
                n.iter()
                    .any(|n| n == meshd::identity::root_configmap::ROOT_CONFIGMAP)
            })
    }));
}
