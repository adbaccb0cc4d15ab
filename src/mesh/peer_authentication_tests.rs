use std::collections::BTreeMap;
use std::sync::Arc;

use super::*;

fn policy(
    ns: &str,
    name: &str,
    selector: Option<&[(&str, &str)]>,
    mode: MtlsMode,
    ports: &[(u16, MtlsMode)],
) -> PeerAuthentication {
    PeerAuthentication {
        key: ObjectKey {
            namespace: ns.into(),
            name: name.into(),
        },
        selector: selector.map(|s| {
            s.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        }),
        mode,
        port_level: ports.iter().copied().collect(),
        created: None,
    }
}

fn model(policies: Vec<PeerAuthentication>) -> MeshModel {
    let mut m = MeshModel::default();
    for p in policies {
        m.peer_authentications.insert(p.key.clone(), Arc::new(p));
    }
    m
}

fn labels(app: &str) -> BTreeMap<String, String> {
    BTreeMap::from([("app".to_string(), app.to_string())])
}

const ROOT: &str = "istio-system";

#[test]
fn permissive_without_any_policy() {
    let m = model(vec![]);
    assert_eq!(
        inbound_mtls(&m, ROOT, "shop", &labels("web")),
        InboundMtls::uniform(MtlsMode::Permissive)
    );
    assert_eq!(namespace_mode(&m, ROOT, "shop"), None);
}

#[test]
fn workload_over_namespace_over_mesh_and_unset_inherits() {
    use MtlsMode::*;
    let m = model(vec![
        policy(ROOT, "default", None, Strict, &[]),
        policy("shop", "ns", None, Unset, &[]),
        policy(
            "shop",
            "web",
            Some(&[("app", "web")]),
            Disable,
            &[(8080, Strict), (9090, Unset)],
        ),
        // A selector in the root namespace applies to nobody, as in istiod.
        policy(ROOT, "picky", Some(&[("app", "db")]), Disable, &[]),
    ]);
    assert_eq!(
        inbound_mtls(&m, ROOT, "shop", &labels("db")),
        InboundMtls::uniform(Strict)
    );
    let web = inbound_mtls(&m, ROOT, "shop", &labels("web"));
    assert_eq!(web.default, Disable);
    assert_eq!(web.mode(8080), Strict);
    assert_eq!(
        web.mode(9090),
        Disable,
        "UNSET port takes the workload's mode"
    );
    assert_eq!(web.mode(1234), Disable);
    assert_eq!(
        inbound_mtls(&m, ROOT, ROOT, &labels("db")),
        InboundMtls::uniform(Strict)
    );
    assert_eq!(namespace_mode(&m, ROOT, "shop"), Some(Strict));
    assert_eq!(namespace_mode(&m, ROOT, "other"), Some(Strict));
}

#[test]
fn the_oldest_competing_policy_wins() {
    use MtlsMode::*;
    let mut a = policy("shop", "a", None, Strict, &[]);
    let mut b = policy("shop", "b", None, Disable, &[]);
    a.created = Some("2026-01-02T00:00:00Z".into());
    b.created = Some("2026-01-01T00:00:00Z".into());
    let m = model(vec![a.clone(), b.clone()]);
    assert_eq!(
        inbound_mtls(&m, ROOT, "shop", &labels("x")).default,
        Disable
    );
    a.created = None;
    b.created = None;
    let m = model(vec![a, b]);
    assert_eq!(
        inbound_mtls(&m, ROOT, "shop", &labels("x")).default,
        Strict,
        "without timestamps, by name"
    );
}
