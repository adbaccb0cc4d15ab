//! Wiring for `meshd serve`: the file source feeds the build pipeline, whose generations the
//! xDS server pushes, beside the admin HTTP server. The one-shot commands live in `commands`.

pub mod commands;
mod runtime;
pub mod secure;

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use tracing::{info, warn};

use crate::config::{ServeConfig, SourceConfig};
use crate::pipeline::generator::MeshGenerator;
use crate::pipeline::{self, Debounce};
use crate::source::file::FileSource;
use crate::source::kube::KubeSource;
use crate::xds::server::XdsServer;

pub fn serve(config: ServeConfig) -> anyhow::Result<ExitCode> {
    let runtime = runtime::build(config.xds.max_concurrent_pushes)?;
    let result = runtime.block_on(run(config));
    // Tasks still blocked in file or CPU work must not hold the exit up past the drain.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    result?;
    Ok(ExitCode::SUCCESS)
}

async fn run(config: ServeConfig) -> anyhow::Result<()> {
    // Bind first so a taken port fails fast, before any work.
    let xds_listener = crate::xds::listen(config.xds_addr)
        .with_context(|| format!("binding xds address {}", config.xds_addr))?;
    let admin_listener = tokio::net::TcpListener::bind(config.admin_addr)
        .await
        .with_context(|| format!("binding admin address {}", config.admin_addr))?;
    let kube_client = match &config.source {
        SourceConfig::Kubernetes { kubeconfig, .. } => {
            Some(crate::source::kube::client(kubeconfig.as_deref()).await?)
        }
        SourceConfig::Dir(_) => None,
    };
    let kube_identity = kube_client.clone().map(|client| secure::KubeIdentity {
        client,
        root_namespace: config.translate.root_namespace.clone(),
    });
    let mut secure = secure::prepare(&config.ca, kube_identity).await?;
    let identity = secure.as_mut().and_then(|port| port.identity.take());

    info!(
        xds = %xds_listener.local_addr()?,
        admin = %admin_listener.local_addr()?,
        source = ?config.source,
        "meshd listening"
    );
    let generator = Arc::new(MeshGenerator::default());
    let (generation_tx, generation_rx) = tokio::sync::watch::channel(0u64);
    let xds = XdsServer::new(generator.clone(), generation_rx.clone(), config.xds.clone());

    // The mesh config ConfigMap (Kubernetes source) overrides the flags' options.
    let (options_tx, options_rx) = tokio::sync::watch::channel(config.translate.clone());
    let inputs = match &config.source {
        SourceConfig::Dir(dir) => FileSource::start(dir.clone(), config.poll_interval),
        SourceConfig::Kubernetes { config_dir, .. } => {
            let mesh = crate::source::kube::MeshWatch {
                namespace: config.translate.root_namespace.clone(),
                flags: config.translate.clone(),
                options: options_tx,
            };
            let client = kube_client.clone().expect("made above for --kubernetes");
            let cluster = KubeSource::start(client, mesh);
            match config_dir {
                Some(dir) => crate::source::combined::combine(
                    cluster,
                    FileSource::start(dir.clone(), config.poll_interval),
                ),
                None => cluster,
            }
        }
    };
    let (inputs, jwks) = crate::source::jwks::start(inputs);
    let debounce = Debounce {
        quiet: config.debounce_quiet,
        max: config.debounce_max,
    };
    tokio::spawn(pipeline::run(
        inputs,
        generator.clone(),
        generation_tx,
        debounce,
        config.allow_empty_config,
        options_rx,
        jwks,
    ));
    if config.translate.serve_gateway_secrets {
        warn!(
            "gateway private keys are served over SDS to any router proxy that asks \
             (--insecure-serve-gateway-secrets): streams are not authenticated"
        );
    }

    if config.debug_on_http {
        warn!("debug views are served to any caller of the admin address (--debug-on-http)");
    }
    let admin_state = crate::admin::AdminState::new(xds.status(), generator.clone(), generation_rx)
        .with_debug_on_http(config.debug_on_http);
    let admin = tokio::spawn(crate::admin::serve(admin_listener, admin_state));
    // On a signal the xDS server drains (GOAWAY, streams closed gracefully, bounded by
    // --drain-duration) and returns; then the process exits.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let signal = shutdown_signal().await;
        info!(signal, "shutting down");
        stop_tx.send_replace(true);
    });
    // The lease is handed back at the signal, not after the drain: another replica takes
    // over the writes while this one still drains its streams.
    let released = identity.map(|identity| {
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let _ = stop.wait_for(|s| *s).await;
            identity.stop().await;
        })
    });
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let secure_xds = async {
        match secure {
            Some(port) => {
                let _serving = port.serving;
                let certificates = port.certificates;
                xds.clone()
                    .serve_tls_until(
                        port.listener,
                        port.tls,
                        port.auth,
                        |routes| routes.add_service(certificates),
                        stopped(stop_rx.clone()),
                    )
                    .await
            }
            None => Ok(()),
        }
    };
    let both = async {
        tokio::try_join!(
            async {
                xds.clone()
                    .serve_until(xds_listener, stopped(stop_rx.clone()))
                    .await
                    .context("xds server")
            },
            async { secure_xds.await.context("secure xds server") },
        )
        .map(|_| ())
    };
    tokio::select! {
        result = both => result?,
        result = admin => result.context("admin server")?.context("admin server")?,
    }
    if let Some(released) = released {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), released).await;
    }
    Ok(())
}

/// Resolves on SIGINT or SIGTERM (what Kubernetes sends), naming the signal.
async fn shutdown_signal() -> &'static str {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return "SIGINT";
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "SIGINT",
        _ = term.recv() => "SIGTERM",
    }
}
