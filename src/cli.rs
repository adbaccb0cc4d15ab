//! Command-line interface: the arguments of `serve`, `bootstrap`, `translate`, `validate`
//! (dispatch is in main.rs, checked process configuration in `config`).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "meshd",
    version,
    about = "Service mesh control plane for stock Envoy, driven by Istio's configuration"
)]
pub struct Cli {
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "MESHD_LOG_FORMAT")]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Load a directory of Kubernetes YAML, watch it, and serve xDS to Envoy sidecars.
    Serve(ServeArgs),
    /// Print an Envoy bootstrap (YAML) for a sidecar that takes its config from meshd.
    Bootstrap(BootstrapArgs),
    /// Print, as Envoy JSON, what one proxy would receive from a configuration directory.
    Translate(TranslateArgs),
    /// Check every file and object in a directory; exit 0 only when there is no problem.
    Validate(ValidateArgs),
}

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Directory of Kubernetes-format YAML/JSON files (read recursively).
    #[arg(long)]
    pub config_dir: PathBuf,
    /// Address for xDS over plaintext gRPC.
    #[arg(long, default_value = "0.0.0.0:15010")]
    pub xds_addr: SocketAddr,
    /// Address for the admin HTTP server (/ready, /metrics, /debug/*).
    #[arg(long, default_value = "0.0.0.0:15014")]
    pub admin_addr: SocketAddr,
    /// Quiet period before a change is pushed, in milliseconds.
    #[arg(long, default_value_t = 100)]
    pub debounce_quiet_ms: u64,
    /// Longest a change may wait for the quiet period, in milliseconds.
    #[arg(long, default_value_t = 10_000)]
    pub debounce_max_ms: u64,
    /// How often the configuration directory is checked for changes, in milliseconds.
    #[arg(long, default_value_t = 500)]
    pub poll_interval_ms: u64,
}

#[derive(Debug, clap::Args)]
pub struct BootstrapArgs {
    /// Node id, `sidecar~IP~POD.NAMESPACE~NAMESPACE.svc.cluster.local`.
    #[arg(long)]
    pub node_id: String,
    /// meshd's xDS address, HOST:PORT.
    #[arg(long)]
    pub xds_address: String,
    /// Use the incremental (Delta) xDS protocol instead of State of the World.
    #[arg(long)]
    pub delta: bool,
    /// Envoy admin port.
    #[arg(long, default_value_t = 15000)]
    pub admin_port: u16,
    /// Workload labels for node metadata `LABELS`, as key=value (repeatable).
    #[arg(long = "label", value_parser = parse_key_value)]
    pub labels: Vec<(String, String)>,
    /// Service account for node metadata `SERVICE_ACCOUNT`.
    #[arg(long)]
    pub service_account: Option<String>,
    /// Workload name for node metadata `WORKLOAD_NAME`.
    #[arg(long)]
    pub workload_name: Option<String>,
    /// Cluster id for node metadata `CLUSTER_ID`.
    #[arg(long, default_value = "Kubernetes")]
    pub cluster_id: String,
}

#[derive(Debug, clap::Args)]
pub struct TranslateArgs {
    #[arg(long)]
    pub config_dir: PathBuf,
    #[arg(long)]
    pub node_id: String,
    #[arg(long = "type", value_enum, default_value_t = OutputType::All)]
    pub output_type: OutputType,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputType {
    Clusters,
    Endpoints,
    Listeners,
    Routes,
    All,
}

#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// Directory to check.
    pub dir: PathBuf,
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("expected key=value, got {s:?}"))
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}
