//! Identity in Kubernetes against a real kube-apiserver (scripts/kube-testenv.sh): leader
//! election on the `meshd-leader` Lease with two and three electors, the root ConfigMap in
//! every namespace (existing, new, deleted, edited), `istio-ca-secret` created once and
//! reused, `cacerts` honoured, and TokenReview with real ServiceAccount tokens.

mod common;
#[path = "kube/mod.rs"]
mod kubeenv;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, DeleteParams, PostParams};
use meshd::identity::ca_secret::{self, CaOrigin};
use meshd::identity::lease::{LeaderElector, LeaseConfig, LEASE_NAME};
use meshd::identity::root_configmap::{RootCertPublisher, ROOT_CERT_KEY, ROOT_CONFIGMAP};
use meshd::identity::token_review::{KubeIdentity, Refusal, TokenReviewAuthenticator};
use tokio::sync::watch;

use common::{free_port, Meshd};
use kubeenv::ApiServer;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Polls `check` (bounded: 60s) until it returns `Some`.
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Short timings so takeovers happen within seconds.
fn fast_lease(holder: &str) -> LeaseConfig {
    LeaseConfig {
        lease_duration: Duration::from_secs(3),
        renew_period: Duration::from_millis(500),
        retry_period: Duration::from_millis(300),
        renew_deadline: Duration::from_secs(2),
        ..LeaseConfig::new("istio-system", holder.to_string())
    }
}

fn leading(electors: &[&LeaderElector]) -> usize {
    electors.iter().filter(|e| *e.leader().borrow()).count()
}

async fn holder(client: &kube::Client) -> Option<String> {
    let leases = Api::<Lease>::namespaced(client.clone(), "istio-system");
    leases
        .get_opt(LEASE_NAME)
        .await
        .ok()
        .flatten()
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity)
        .filter(|h| !h.is_empty())
}

async fn root_configmap(client: &kube::Client, namespace: &str) -> Option<ConfigMap> {
    Api::<ConfigMap>::namespaced(client.clone(), namespace)
        .get_opt(ROOT_CONFIGMAP)
        .await
        .expect("reading the root ConfigMap")
}

async fn published(client: &kube::Client, namespace: &str, bundle: &str) -> bool {
    root_configmap(client, namespace)
        .await
        .and_then(|cm| cm.data)
        .is_some_and(|d| d.get(ROOT_CERT_KEY).map(String::as_str) == Some(bundle))
}

const NAMESPACES: &str = "
apiVersion: v1
kind: Namespace
metadata: {name: istio-system}
---
apiVersion: v1
kind: Namespace
metadata: {name: shop}
";

#[test]
fn one_leader_publishes_the_root_configmap_everywhere_and_another_takes_over() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let server = ApiServer::start(&tmp.path().join("kube"));
    server.kubectl(&["apply", "-f", "-"], NAMESPACES);
    runtime().block_on(async {
        let client = server.client().await;
        let bundle = "-----BEGIN CERTIFICATE-----\nROOT\n-----END CERTIFICATE-----\n";
        let (_bundle_tx, bundle_rx) = watch::channel(bundle.to_string());

        let a = LeaderElector::start(client.clone(), fast_lease("replica-a"));
        let b = LeaderElector::start(client.clone(), fast_lease("replica-b"));
        let _publisher_a = RootCertPublisher::start(client.clone(), a.leader(), bundle_rx.clone());
        let _publisher_b = RootCertPublisher::start(client.clone(), b.leader(), bundle_rx.clone());

        eventually("a leader", || async {
            (leading(&[&a, &b]) == 1).then_some(())
        })
        .await;
        // Exactly one leads over several renewals, and the Lease names it.
        for _ in 0..20 {
            assert_eq!(leading(&[&a, &b]), 1, "exactly one leader");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let (first, second) = if *a.leader().borrow() { (a, b) } else { (b, a) };
        let first_name = holder(&client).await.expect("lease held");
        assert!(
            first_name == "replica-a" || first_name == "replica-b",
            "{first_name}"
        );

        // Existing namespaces (kube-system too), not the ones istiod skips.
        for namespace in ["default", "istio-system", "shop", "kube-system"] {
            eventually(&format!("root ConfigMap in {namespace}"), || async {
                published(&client, namespace, bundle).await.then_some(())
            })
            .await;
        }
        let shop = root_configmap(&client, "shop").await.unwrap();
        assert_eq!(
            shop.metadata
                .labels
                .unwrap_or_default()
                .get("istio.io/config")
                .map(String::as_str),
            Some("true")
        );
        assert!(root_configmap(&client, "kube-public").await.is_none());
        assert!(root_configmap(&client, "kube-node-lease").await.is_none());

        // A namespace created later.
        server.kubectl(&["create", "namespace", "late"], "");
        eventually("root ConfigMap in a new namespace", || async {
            published(&client, "late", bundle).await.then_some(())
        })
        .await;

        // Deleted: created again. Edited: put back.
        Api::<ConfigMap>::namespaced(client.clone(), "shop")
            .delete(ROOT_CONFIGMAP, &DeleteParams::default())
            .await
            .expect("deleting the root ConfigMap");
        eventually("root ConfigMap re-created", || async {
            published(&client, "shop", bundle).await.then_some(())
        })
        .await;
        server.kubectl(
            &[
                "-n",
                "late",
                "patch",
                "configmap",
                ROOT_CONFIGMAP,
                "--type=merge",
                "-p",
                r#"{"data":{"root-cert.pem":"tampered","extra":"kept"}}"#,
            ],
            "",
        );
        let restored = eventually("root ConfigMap restored", || async {
            root_configmap(&client, "late")
                .await
                .and_then(|cm| cm.data)
                .filter(|d| d.get(ROOT_CERT_KEY).map(String::as_str) == Some(bundle))
        })
        .await;
        assert_eq!(restored.get("extra").map(String::as_str), Some("kept"));

        // The leader steps down and releases: the other takes over, and now does the writes.
        first.release().await;
        eventually("the other replica leads", || async {
            (*second.leader().borrow()).then_some(())
        })
        .await;
        let second_name = holder(&client).await.expect("lease held");
        assert_ne!(second_name, first_name);
        Api::<ConfigMap>::namespaced(client.clone(), "default")
            .delete(ROOT_CONFIGMAP, &DeleteParams::default())
            .await
            .expect("deleting the root ConfigMap");
        eventually("root ConfigMap re-created by the new leader", || async {
            published(&client, "default", bundle).await.then_some(())
        })
        .await;

        // A leader that vanishes without releasing: a third replica waits out the lease.
        let c = LeaderElector::start(client.clone(), fast_lease("replica-c"));
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(!*c.leader().borrow(), "the lease is still held");
        drop(second);
        eventually("the third replica leads after expiry", || async {
            (*c.leader().borrow()).then_some(())
        })
        .await;
        assert_eq!(holder(&client).await.as_deref(), Some("replica-c"));
        let lease = Api::<Lease>::namespaced(client.clone(), "istio-system")
            .get(LEASE_NAME)
            .await
            .unwrap();
        assert_eq!(lease.spec.unwrap().lease_transitions, Some(2));
        c.release().await;
    });
}

/// A self-signed CA certificate and key, as PEM.
fn make_root(organization: &str) -> anyhow::Result<(String, String)> {
    let key = rcgen::KeyPair::generate()?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, organization);
    let cert = params.self_signed(&key)?;
    Ok((cert.pem(), key.serialize_pem()))
}

#[test]
fn istio_ca_secret_is_created_once_and_reused_and_cacerts_is_honoured() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let server = ApiServer::start(&tmp.path().join("kube"));
    server.kubectl(&["apply", "-f", "-"], NAMESPACES);
    runtime().block_on(async {
        let client = server.client().await;
        // Two replicas starting together: one create wins, both use its root.
        let (one, two) = tokio::join!(
            ca_secret::load_or_create(client.clone(), "istio-system", || make_root("one")),
            ca_secret::load_or_create(client.clone(), "istio-system", || make_root("two")),
        );
        let (one, two) = (one.expect("first replica"), two.expect("second replica"));
        assert_eq!(one.pems, two.pems, "both replicas sign with the same root");
        let mut origins = [one.origin, two.origin];
        origins.sort_by_key(|o| format!("{o:?}"));
        assert_eq!(origins, [CaOrigin::Created, CaOrigin::Stored]);
        assert_eq!(one.pems.root_cert, one.pems.ca_cert);

        // The Secret in istiod's layout.
        let secrets = Api::<Secret>::namespaced(client.clone(), "istio-system");
        let stored = secrets.get(ca_secret::ISTIO_CA_SECRET).await.unwrap();
        assert_eq!(stored.type_.as_deref(), Some("istio.io/ca-root"));
        let data = stored.data.unwrap();
        assert_eq!(data["ca-cert.pem"].0, one.pems.ca_cert.as_bytes());
        assert_eq!(data["ca-key.pem"].0, one.pems.ca_key.as_bytes());
        assert_eq!(data["root-cert.pem"].0, one.pems.ca_cert.as_bytes());

        // A restart reuses it and makes no root.
        let again = ca_secret::load_or_create(client.clone(), "istio-system", || {
            panic!("a stored root must be reused")
        })
        .await
        .expect("restart");
        assert_eq!(again.origin, CaOrigin::Stored);
        assert_eq!(again.pems, one.pems);

        // `cacerts` wins over `istio-ca-secret`.
        let (root, _) = make_root("plug-in root").unwrap();
        let (intermediate, intermediate_key) = make_root("plug-in intermediate").unwrap();
        let chain = format!("{intermediate}{root}");
        let mut cacerts = Secret {
            metadata: kube::api::ObjectMeta {
                name: Some(ca_secret::CACERTS.to_string()),
                ..Default::default()
            },
            string_data: Some(
                [
                    ("ca-cert.pem".to_string(), intermediate.clone()),
                    ("cert-chain.pem".to_string(), chain.clone()),
                    ("root-cert.pem".to_string(), root.clone()),
                ]
                .into(),
            ),
            ..Default::default()
        };
        secrets
            .create(&PostParams::default(), &cacerts)
            .await
            .unwrap();
        let error = ca_secret::load_or_create(client.clone(), "istio-system", || {
            panic!("no root is made when cacerts exists")
        })
        .await
        .expect_err("cacerts without a key");
        assert_eq!(
            error.to_string(),
            "Secret istio-system/cacerts: key ca-key.pem is missing or empty"
        );
        cacerts
            .string_data
            .as_mut()
            .unwrap()
            .insert("ca-key.pem".to_string(), intermediate_key.clone());
        secrets
            .replace(ca_secret::CACERTS, &PostParams::default(), &cacerts)
            .await
            .unwrap();
        let plugged = ca_secret::load_or_create(client.clone(), "istio-system", || {
            panic!("no root is made when cacerts exists")
        })
        .await
        .expect("cacerts");
        assert_eq!(plugged.origin, CaOrigin::PlugIn);
        assert_eq!(plugged.pems.ca_cert, intermediate);
        assert_eq!(plugged.pems.ca_key, intermediate_key);
        assert_eq!(plugged.pems.cert_chain, chain);
        assert_eq!(plugged.pems.root_cert, root);
    });
}

#[test]
fn token_review_accepts_a_service_account_token_and_refuses_others() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let server = ApiServer::start(&tmp.path().join("kube"));
    server.kubectl(&["apply", "-f", "-"], NAMESPACES);
    server.kubectl(&["-n", "shop", "create", "serviceaccount", "reviews"], "");
    let token = |audience: &str| {
        server
            .kubectl(
                &[
                    "-n",
                    "shop",
                    "create",
                    "token",
                    "reviews",
                    "--audience",
                    audience,
                ],
                "",
            )
            .trim()
            .to_string()
    };
    let good = token("istio-ca");
    let other_audience = token("some-other-service");
    runtime().block_on(async {
        let client = server.client().await;
        let reviewer = TokenReviewAuthenticator::new(client, vec!["istio-ca".to_string()]);
        let reviews = KubeIdentity {
            namespace: "shop".to_string(),
            service_account: "reviews".to_string(),
        };
        assert_eq!(reviewer.authenticate(&good).await, Ok(reviews.clone()));
        // Again, from the cache.
        assert_eq!(reviewer.authenticate(&good).await, Ok(reviews));
        let refusals = [
            ("garbage", reviewer.authenticate("not-a-token").await),
            (
                "another audience",
                reviewer.authenticate(&other_audience).await,
            ),
            ("forged", reviewer.authenticate(&forged(&good)).await),
        ];
        // The API server says why; the reason names no token.
        let expected = [
            "invalid bearer token",
            "is invalid for the target audiences [\"istio-ca\"]",
            "invalid bearer token",
        ];
        for ((what, refusal), reason) in refusals.into_iter().zip(expected) {
            match refusal {
                Err(Refusal::ReviewError(message)) => {
                    assert!(message.contains(reason), "{what}: {message}")
                }
                other => panic!("{what}: {other:?}"),
            }
        }
        assert_eq!(reviewer.authenticate("  ").await, Err(Refusal::NoToken));
    });
}

/// `token` with its signature changed.
fn forged(token: &str) -> String {
    let (signed, signature) = token.rsplit_once('.').expect("a JWT");
    format!("{signed}.{}", signature.chars().rev().collect::<String>())
}

/// `meshd serve --kubernetes` as replica `pod` (its `POD_NAME`), its log in `log`.
fn spawn_replica(kubeconfig: &Path, pod: &str, log: &Path) -> Meshd {
    let addr = || -> SocketAddr { format!("127.0.0.1:{}", free_port()).parse().unwrap() };
    let (xds, admin, secure) = (addr(), addr(), addr());
    let child = Command::new(env!("CARGO_BIN_EXE_meshd"))
        .args(["serve", "--kubernetes", "--kubeconfig"])
        .arg(kubeconfig)
        .args(["--xds-addr", &xds.to_string()])
        .args(["--admin-addr", &admin.to_string()])
        .args(["--secure-xds-addr", &secure.to_string()])
        .env("POD_NAME", pod)
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "meshd=debug")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).expect("creating the meshd log"))
        .spawn()
        .expect("start meshd");
    Meshd { child, xds, admin }
}

/// Waits for a replica's `/ready`. `false` when it exited because a port it was given is in
/// use (the other tests of this file start API servers at the same time, so a port picked
/// free can be taken before meshd binds it); any other exit, or no readiness in `timeout`,
/// fails with its log.
fn ready_or_log(replica: &mut Meshd, log: &Path, timeout: Duration) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Ok((200, _)) = common::http_get(replica.admin, "/ready") {
            return true;
        }
        let exited = replica.child.try_wait().expect("wait for meshd");
        let text = || std::fs::read_to_string(log).unwrap_or_default();
        if exited.is_some() && text().contains("in use") {
            return false;
        }
        if exited.is_some() || std::time::Instant::now() >= deadline {
            panic!(
                "meshd on {} not ready (exit status {exited:?}) within {timeout:?}; its log:\n{}",
                replica.admin,
                text()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// PEM text without its line breaks, to compare encodings of one certificate.
fn flat(pem: &str) -> String {
    pem.split_whitespace().collect()
}

#[test]
fn two_meshd_replicas_share_one_root_and_hand_over_the_writes() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let server = ApiServer::start(&tmp.path().join("kube"));
    server.kubectl(&["apply", "-f", "-"], NAMESPACES);
    let logs = [tmp.path().join("a.log"), tmp.path().join("b.log")];
    let mut replicas = [
        Some(spawn_replica(&server.kubeconfig(), "meshd-a", &logs[0])),
        Some(spawn_replica(&server.kubeconfig(), "meshd-b", &logs[1])),
    ];
    for ((replica, log), pod) in replicas.iter_mut().zip(&logs).zip(["meshd-a", "meshd-b"]) {
        let mut attempts = 0;
        while !ready_or_log(
            replica.as_mut().expect("both run"),
            log,
            Duration::from_secs(120),
        ) {
            attempts += 1;
            assert!(attempts < 3, "{pod}: its ports were taken three times");
            *replica = Some(spawn_replica(&server.kubeconfig(), pod, log));
        }
    }
    let dump_logs = || {
        logs.iter()
            .map(|l| std::fs::read_to_string(l).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n----\n")
    };
    runtime().block_on(async {
        let client = server.client().await;
        let secrets = Api::<Secret>::namespaced(client.clone(), "istio-system");
        let secret = secrets
            .get(ca_secret::ISTIO_CA_SECRET)
            .await
            .unwrap_or_else(|e| panic!("istio-ca-secret: {e}\n{}", dump_logs()));
        let root = String::from_utf8(secret.data.unwrap()["ca-cert.pem"].0.clone()).unwrap();
        let root_published = |namespace: &'static str| {
            let client = client.clone();
            let root = flat(&root);
            async move {
                root_configmap(&client, namespace)
                    .await
                    .and_then(|cm| cm.data)
                    .and_then(|d| d.get(ROOT_CERT_KEY).cloned())
                    .filter(|pem| flat(pem) == root)
                    .map(|_| ())
            }
        };
        eventually("the stored root published in shop", || {
            root_published("shop")
        })
        .await;
        let leader = holder(&client).await.expect("a leader");
        let index = match leader.as_str() {
            "meshd-a" => 0,
            "meshd-b" => 1,
            other => panic!("holder {other}"),
        };

        // The leader stops (SIGTERM releases the lease): the other replica leads and, with
        // the same root, puts back a deleted ConfigMap.
        let mut stopped = replicas[index].take().unwrap();
        stopped.signal("TERM");
        assert!(stopped.wait_exit(Duration::from_secs(30)).success());
        let other = if index == 0 { "meshd-b" } else { "meshd-a" };
        eventually("the other replica holds the lease", || async {
            (holder(&client).await.as_deref() == Some(other)).then_some(())
        })
        .await;
        Api::<ConfigMap>::namespaced(client.clone(), "shop")
            .delete(ROOT_CONFIGMAP, &DeleteParams::default())
            .await
            .expect("deleting the root ConfigMap");
        eventually("the new leader re-publishes the same root", || {
            root_published("shop")
        })
        .await;
    });
}
