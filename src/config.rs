//! Process configuration for `serve`, checked before any port is bound, and logging setup.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};

use std::sync::Arc;

use crate::cli::{LogFormat, MeshArgs, ServeArgs, XdsArgs};
use crate::translate::scope::TranslateOptions;
use crate::xds::XdsOptions;

#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub source: SourceConfig,
    pub xds_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub debounce_quiet: Duration,
    pub debounce_max: Duration,
    pub poll_interval: Duration,
    pub allow_empty_config: bool,
    pub xds: XdsOptions,
    /// Debug views served to any caller (not only loopback).
    pub debug_on_http: bool,
    /// Mesh-wide translation settings (root namespace, outbound policy, gateway secrets).
    pub translate: Arc<TranslateOptions>,
    /// The CA and the secure xDS port.
    pub ca: crate::ca::args::CaArgs,
}

impl ServeConfig {
    pub fn from_args(args: &ServeArgs) -> anyhow::Result<ServeConfig> {
        let source = source_config(args)?;
        if args.debounce_quiet_ms > args.debounce_max_ms {
            bail!(
                "--debounce-quiet-ms ({}) must not exceed --debounce-max-ms ({})",
                args.debounce_quiet_ms,
                args.debounce_max_ms
            );
        }
        if args.poll_interval_ms == 0 {
            bail!("--poll-interval-ms must be greater than 0");
        }
        Ok(ServeConfig {
            source,
            xds_addr: args.xds_addr,
            admin_addr: args.admin_addr,
            debounce_quiet: Duration::from_millis(args.debounce_quiet_ms),
            debounce_max: Duration::from_millis(args.debounce_max_ms),
            poll_interval: Duration::from_millis(args.poll_interval_ms),
            allow_empty_config: args.allow_empty_config,
            xds: XdsOptions {
                // Until streams are authenticated, the flag is the only way secrets go out.
                allow_unauthenticated_secrets: args.insecure_serve_gateway_secrets,
                ..xds_options(&args.xds)?
            },
            debug_on_http: args.debug_on_http,
            translate: Arc::new(TranslateOptions {
                // Clients verify servers' SPIFFE ids in the CA's trust domain.
                trust_domain: args.ca.trust_domain.clone(),
                ..check_mesh(&args.mesh)?.translate_options(args.insecure_serve_gateway_secrets)
            }),
            ca: args.ca.clone(),
        })
    }
}

/// Where `serve` reads its configuration.
#[derive(Debug, Clone)]
pub enum SourceConfig {
    Dir(PathBuf),
    /// A Kubernetes API server, through this kubeconfig or the inferred one, and the files
    /// of `config_dir` added to what the cluster has.
    Kubernetes {
        kubeconfig: Option<PathBuf>,
        config_dir: Option<PathBuf>,
    },
}

fn source_config(args: &ServeArgs) -> anyhow::Result<SourceConfig> {
    if args.kubeconfig.is_some() && !args.kubernetes {
        bail!("--kubeconfig is only read with --kubernetes");
    }
    let dir = match &args.config_dir {
        Some(dir) => {
            let meta = std::fs::metadata(dir)
                .with_context(|| format!("--config-dir {}", dir.display()))?;
            if !meta.is_dir() {
                bail!("--config-dir {} is not a directory", dir.display());
            }
            Some(dir.clone())
        }
        None => None,
    };
    match (dir, args.kubernetes) {
        // clap refuses this one too.
        (None, false) => bail!("pass --config-dir DIR or --kubernetes"),
        (config_dir, true) => Ok(SourceConfig::Kubernetes {
            kubeconfig: args.kubeconfig.clone(),
            config_dir,
        }),
        (Some(dir), false) => Ok(SourceConfig::Dir(dir)),
    }
}

/// Checks the mesh-wide flags.
pub fn check_mesh(args: &MeshArgs) -> anyhow::Result<&MeshArgs> {
    if !crate::mesh::build::names::is_dns_label(&args.root_namespace) {
        bail!(
            "--root-namespace {:?} is not a namespace name (a DNS label)",
            args.root_namespace
        );
    }
    if args.mtls && !args.auto_mtls {
        bail!(
            "--mtls asks for automatic mTLS and --auto-mtls=false turns it off: give one of them"
        );
    }
    Ok(args)
}

/// Smallest message limit accepted: below it even an ordinary request or response fails.
const MIN_MESSAGE_SIZE: usize = 64 * 1024;
/// Longest connection age or drain accepted, far from any overflow of time arithmetic.
const MAX_DURATION_FLAG: Duration = Duration::from_secs(30 * 24 * 3600);
/// gRPC frames a message with a 32-bit length.
const MAX_MESSAGE_SIZE: usize = u32::MAX as usize;

/// The xDS server's options from its flags, each checked with the flag named.
fn xds_options(args: &XdsArgs) -> anyhow::Result<XdsOptions> {
    let age = args.max_connection_age;
    if !age.is_zero() && age < Duration::from_secs(1) {
        bail!("--max-connection-age ({age:?}) must be 0 (no limit) or at least 1s");
    }
    let jitter = args.max_connection_age_jitter;
    if !(0.0..=1.0).contains(&jitter) {
        bail!("--max-connection-age-jitter ({jitter}) must be between 0 and 1");
    }
    if age > MAX_DURATION_FLAG {
        bail!("--max-connection-age ({age:?}) must be at most 30 days");
    }
    if args.drain_duration > MAX_DURATION_FLAG {
        bail!(
            "--drain-duration ({:?}) must be at most 30 days",
            args.drain_duration
        );
    }
    if args.max_concurrent_pushes == Some(0) {
        bail!("--max-concurrent-pushes must be at least 1");
    }
    if args.new_stream_queue == 0 && args.new_streams_in_progress != Some(0) {
        bail!("--new-stream-queue must be at least 1 (or pass --new-streams-in-progress 0 to admit every stream at once)");
    }
    let defaults = XdsOptions::default();
    for (flag, size) in [
        ("--max-request-message-size", args.max_request_message_size),
        (
            "--max-response-message-size",
            args.max_response_message_size,
        ),
    ] {
        if !(MIN_MESSAGE_SIZE..=MAX_MESSAGE_SIZE).contains(&size) {
            bail!("{flag} ({size} bytes) must be between 64Ki and 4Gi minus one byte");
        }
    }
    Ok(XdsOptions {
        max_concurrent_pushes: args
            .max_concurrent_pushes
            .unwrap_or(defaults.max_concurrent_pushes),
        new_streams_in_progress: args
            .new_streams_in_progress
            .unwrap_or(defaults.new_streams_in_progress),
        new_stream_queue: args.new_stream_queue,
        max_connection_age: (!age.is_zero()).then_some(age),
        max_connection_age_jitter: jitter,
        max_request_message_size: args.max_request_message_size,
        max_response_message_size: args.max_response_message_size,
        drain_duration: args.drain_duration,
        ..XdsOptions::default()
    })
}

/// Logs to stderr; `RUST_LOG` picks levels (default `info`).
pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
