//! Process configuration for `serve`, checked before any port is bound, and logging setup.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};

use crate::cli::{LogFormat, ServeArgs};

#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub config_dir: PathBuf,
    pub xds_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub debounce_quiet: Duration,
    pub debounce_max: Duration,
    pub poll_interval: Duration,
}

impl ServeConfig {
    pub fn from_args(args: &ServeArgs) -> anyhow::Result<ServeConfig> {
        let meta = std::fs::metadata(&args.config_dir)
            .with_context(|| format!("--config-dir {}", args.config_dir.display()))?;
        if !meta.is_dir() {
            bail!(
                "--config-dir {} is not a directory",
                args.config_dir.display()
            );
        }
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
            config_dir: args.config_dir.clone(),
            xds_addr: args.xds_addr,
            admin_addr: args.admin_addr,
            debounce_quiet: Duration::from_millis(args.debounce_quiet_ms),
            debounce_max: Duration::from_millis(args.debounce_max_ms),
            poll_interval: Duration::from_millis(args.poll_interval_ms),
        })
    }
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
