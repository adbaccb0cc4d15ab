//! The API client: from `--kubeconfig`, or inferred as kubectl does (`KUBECONFIG`,
//! `~/.kube/config`, then the in-cluster service account).

use std::path::Path;

use anyhow::Context;
use kube::config::{Config, KubeConfigOptions, Kubeconfig};

/// A client for the cluster `kubeconfig` names, or the inferred one when it is `None`.
pub async fn client(kubeconfig: Option<&Path>) -> anyhow::Result<kube::Client> {
    let mut config = match kubeconfig {
        Some(path) => {
            let file = Kubeconfig::read_from(path)
                .with_context(|| format!("--kubeconfig {}", path.display()))?;
            Config::from_custom_kubeconfig(file, &KubeConfigOptions::default())
                .await
                .with_context(|| format!("--kubeconfig {}", path.display()))?
        }
        None => Config::infer().await.context(
            "no Kubernetes configuration: set KUBECONFIG or --kubeconfig, or run in a cluster",
        )?,
    };
    // kube-client would retry 429, 503 and 504 itself, silently and for minutes; instead the
    // watchers and discovery see them, log them and retry with their own backoff.
    config.default_retry = false;
    kube::Client::try_from(config).context("creating the Kubernetes client")
}
