//! Wiring for `meshd serve`: file source -> mesh model -> translator -> xDS server, plus the
//! admin HTTP server. The one-shot commands live in `commands`.

pub mod commands;
pub mod generator;

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use tracing::{info, warn};

use crate::config::ServeConfig;
use crate::mesh::build::ModelBuilder;
use crate::source::file::FileSource;
use crate::translate::Translator;
use crate::xds::debounce::next_settled;
use crate::xds::server::{XdsOptions, XdsServer};
use generator::MeshGenerator;

pub fn serve(config: ServeConfig) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(run(config))?;
    Ok(ExitCode::SUCCESS)
}

async fn run(config: ServeConfig) -> anyhow::Result<()> {
    // Bind first so a taken port fails fast, before any work.
    let xds_listener = tokio::net::TcpListener::bind(config.xds_addr)
        .await
        .with_context(|| format!("binding xds address {}", config.xds_addr))?;
    let admin_listener = tokio::net::TcpListener::bind(config.admin_addr)
        .await
        .with_context(|| format!("binding admin address {}", config.admin_addr))?;

    info!(
        xds = %xds_listener.local_addr()?,
        admin = %admin_listener.local_addr()?,
        dir = %config.config_dir.display(),
        "meshd listening"
    );
    let generator = Arc::new(MeshGenerator::default());
    let (generation_tx, generation_rx) = tokio::sync::watch::channel(0u64);
    let xds = XdsServer::new(generator.clone(), generation_rx, XdsOptions::default());

    let mut inputs = FileSource::start(config.config_dir.clone(), config.poll_interval);
    let builder_generator = generator.clone();
    let (quiet, max) = (config.debounce_quiet, config.debounce_max);
    tokio::spawn(async move {
        let mut generation = 0u64;
        let mut builder = ModelBuilder::default();
        loop {
            let input = inputs.borrow_and_update().clone();
            if let Some(input) = input {
                // Building and translating are CPU work: keep them off the async workers.
                let built = tokio::task::block_in_place(|| builder.build(&input));
                let problems: Vec<String> = input
                    .problems
                    .iter()
                    .chain(&built.problems)
                    .map(|p| p.to_string())
                    .collect();
                for problem in &problems {
                    warn!(%problem, "rejected input");
                }
                generation += 1;
                let model = Arc::new(built.model);
                let translator = match builder_generator.current() {
                    Some((_, previous)) => Translator::next(&previous, model),
                    None => Translator::new(model),
                };
                builder_generator.install(translator, generation, problems);
                info!(
                    generation,
                    objects = input.objects.len(),
                    problems = input.problems.len() + built.problems.len(),
                    "configuration loaded"
                );
                let _ = generation_tx.send(generation);
            }
            if !next_settled(&mut inputs, quiet, max).await {
                break;
            }
        }
    });

    let admin_state = crate::admin::AdminState::new(xds.status(), generator.clone());
    let admin = tokio::spawn(crate::admin::serve(admin_listener, admin_state));
    tokio::select! {
        result = xds.serve(xds_listener) => result.context("xds server")?,
        result = admin => result.context("admin server")?.context("admin server")?,
        _ = tokio::signal::ctrl_c() => info!("interrupted, shutting down"),
    }
    Ok(())
}
