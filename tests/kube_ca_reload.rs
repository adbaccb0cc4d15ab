//! The plug-in CA Secret `cacerts` changed while meshd runs, against a real kube-apiserver
//! (scripts/kube-testenv.sh): the reloader of `identity::ca_reload` applies each stage of a
//! staged root rotation (bundle grows, new signer, bundle shrinks) and refuses a Secret
//! whose certificate and key do not match, keeping the CA in use.

mod common;
#[path = "kube/mod.rs"]
mod kubeenv;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, PostParams};
use meshd::ca::{Authority, LiveAuthority};
use meshd::identity::{ca_link, ca_reload, ca_secret};

use kubeenv::ApiServer;

const NAMESPACE: &str = "
apiVersion: v1
kind: Namespace
metadata: {name: istio-system}
";

fn cacerts(cert: &str, key: &str, roots: &str) -> Secret {
    let data: BTreeMap<String, String> = [
        ("ca-cert.pem", cert),
        ("ca-key.pem", key),
        ("root-cert.pem", roots),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(ca_secret::CACERTS.to_string()),
            ..Default::default()
        },
        string_data: Some(data),
        ..Default::default()
    }
}

/// Waits (bounded: 60s) until the authority in use satisfies `check`.
async fn until(live: &LiveAuthority, what: &str, check: impl Fn(&Authority) -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !check(&live.current()) {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
fn a_changed_cacerts_secret_is_applied_stage_by_stage_and_a_bad_one_refused() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let server = ApiServer::start(&tmp.path().join("kube"));
    server.kubectl(&["apply", "-f", "-"], NAMESPACE);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = server.client().await;
        let secrets = Api::<Secret>::namespaced(client.clone(), "istio-system");
        let (old, old_key) = Authority::new_root_pems().unwrap();
        let (new, new_key) = Authority::new_root_pems().unwrap();
        secrets
            .create(&PostParams::default(), &cacerts(&old, &old_key, &old))
            .await
            .unwrap();
        let (first, _) = ca_link::authority_from_secrets(client.clone(), "istio-system")
            .await
            .expect("the CA from cacerts");
        assert_eq!(first.origin, "Secret istio-system/cacerts");
        let first = Arc::new(first);
        let (live, tx) = LiveAuthority::new(first.clone());
        tokio::spawn(ca_reload::run(
            client.clone(),
            "istio-system".into(),
            Duration::from_millis(200),
            tx,
        ));
        let replace = |secret: Secret| {
            let secrets = secrets.clone();
            async move {
                secrets
                    .replace(ca_secret::CACERTS, &PostParams::default(), &secret)
                    .await
                    .expect("replacing cacerts")
            }
        };

        // Stage 1: the bundle holds both roots; the old CA signs.
        replace(cacerts(&old, &old_key, &(old.clone() + &new))).await;
        let both = old.clone() + &new;
        until(&live, "stage 1: both roots trusted", |a| {
            a.trust_bundle() == both
        })
        .await;
        assert!(live.current().same_signer(&first));

        // A certificate with a key that is not its own: refused, the CA in use stays.
        replace(cacerts(&new, &old_key, &(old.clone() + &new))).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(
            live.current().same_signer(&first),
            "a bad Secret was applied"
        );
        assert_eq!(live.current().trust_bundle(), both);

        // Stage 2: the new root signs; its root comes first in the bundle.
        replace(cacerts(&new, &new_key, &(old.clone() + &new))).await;
        let signing_first = new.clone() + &old;
        until(&live, "stage 2: the new root signs", |a| {
            !a.same_signer(&first) && a.trust_bundle() == signing_first
        })
        .await;
        assert_eq!(live.current().root_pem(), new);

        // Stage 3: the old root is retired.
        replace(cacerts(&new, &new_key, &new)).await;
        until(&live, "stage 3: the new root only", |a| {
            a.trust_bundle() == new
        })
        .await;
    });
}
