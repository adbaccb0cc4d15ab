//! Command-line interface: the arguments of `serve`, `bootstrap`, `translate`, `validate`
//! (dispatch is in main.rs, checked process configuration in `config`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

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
    /// Watch a directory of Kubernetes YAML (or a Kubernetes cluster) and serve xDS to Envoy
    /// sidecars.
    Serve(ServeArgs),
    /// Print an Envoy bootstrap (YAML) for a sidecar or gateway that takes its config from meshd.
    Bootstrap(BootstrapArgs),
    /// Print, as Envoy JSON, what one proxy would receive from a configuration directory.
    Translate(TranslateArgs),
    /// Check every file and object in a directory; exit 0 only when there is no problem.
    Validate(ValidateArgs),
    /// Print a token (JWT) that the meshd using --ca-dir accepts on its secure xDS port.
    Token(crate::ca::args::TokenArgs),
}

#[derive(Debug, clap::Args)]
#[command(group(
    clap::ArgGroup::new("source")
        .required(true)
        .multiple(true)
        .args(["config_dir", "kubernetes"])
))]
pub struct ServeArgs {
    /// Directory of Kubernetes-format YAML/JSON files (read recursively). With
    /// --kubernetes, its objects add to the cluster's (the cluster's wins a clash).
    #[arg(long, required_unless_present = "kubernetes")]
    pub config_dir: Option<PathBuf>,
    /// Read the configuration from a Kubernetes API server (the cluster of --kubeconfig,
    /// else of KUBECONFIG or ~/.kube/config, else in-cluster), with --config-dir too if given.
    #[arg(long)]
    pub kubernetes: bool,
    /// Kubeconfig file for --kubernetes (its current context is used).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
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
    /// Serve a first configuration that has no service. Off by default: an empty first
    /// load (a directory still being mounted) would wipe the proxies that reconnect.
    #[arg(long)]
    pub allow_empty_config: bool,
    /// Serve the debug views (/debug/syncz, /debug/config_dump, /debug/configz) to any
    /// caller that reaches --admin-addr, not only loopback ones. They expose the mesh's
    /// configuration: open them only on a trusted network.
    #[arg(long, env = "MESHD_DEBUG_ON_HTTP")]
    pub debug_on_http: bool,
    /// Serve gateways' TLS private keys (Secrets named by `credentialName`) over SDS to any
    /// router proxy that asks. Streams are not authenticated yet: any client that reaches
    /// --xds-addr can then read those keys.
    #[arg(long)]
    pub insecure_serve_gateway_secrets: bool,
    #[command(flatten)]
    pub mesh: MeshArgs,
    #[command(flatten)]
    pub xds: XdsArgs,
    #[command(flatten)]
    pub ca: crate::ca::args::CaArgs,
}

/// Mesh-wide settings (istiod's mesh config) for `serve` and `translate`.
#[derive(Debug, Clone, clap::Args)]
pub struct MeshArgs {
    /// Istio's root namespace: its Sidecar without workload selector is every namespace's
    /// default, and its DestinationRules apply mesh-wide.
    #[arg(long, default_value = crate::translate::scope::DEFAULT_ROOT_NAMESPACE)]
    pub root_namespace: String,
    /// Where sidecars send traffic for destinations outside the registry when no Sidecar
    /// says otherwise: ALLOW_ANY passes it through, REGISTRY_ONLY blocks it.
    #[arg(long, value_enum, default_value_t = OutboundTrafficPolicy::AllowAny)]
    pub outbound_traffic_policy: OutboundTrafficPolicy,
    /// Accepted for compatibility: mutual TLS is on by default. Every proxy on the
    /// authenticated port (15012) gets its certificate over SDS and PeerAuthentication,
    /// DestinationRule ISTIO_MUTUAL and automatic mTLS; proxies on the plaintext port have no
    /// certificate and talk plaintext (STRICT ports refuse them).
    #[arg(long)]
    pub mtls: bool,
    /// Automatic mTLS: clients with a certificate use mTLS to endpoints with a sidecar when
    /// no DestinationRule sets TLS (Istio's mesh config `enableAutoMtls`, which overrides
    /// this flag). `--auto-mtls=false` leaves mTLS to DestinationRule ISTIO_MUTUAL.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub auto_mtls: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutboundTrafficPolicy {
    #[value(name = "ALLOW_ANY")]
    AllowAny,
    #[value(name = "REGISTRY_ONLY")]
    RegistryOnly,
}

impl MeshArgs {
    /// The translation options these flags (and `serve_gateway_secrets`) give.
    pub fn translate_options(
        &self,
        serve_gateway_secrets: bool,
    ) -> crate::translate::scope::TranslateOptions {
        use crate::mesh::traffic::OutboundPolicy;
        crate::translate::scope::TranslateOptions {
            root_namespace: self.root_namespace.clone(),
            outbound_traffic_policy: match self.outbound_traffic_policy {
                OutboundTrafficPolicy::AllowAny => OutboundPolicy::AllowAny,
                OutboundTrafficPolicy::RegistryOnly => OutboundPolicy::RegistryOnly,
            },
            serve_gateway_secrets,
            auto_mtls: self.auto_mtls,
            ..Default::default()
        }
    }
}

/// Limits and pacing of the xDS server (`meshd serve`).
#[derive(Debug, clap::Args)]
pub struct XdsArgs {
    /// Age after which an xDS connection is closed gracefully so the proxy reconnects,
    /// maybe to another replica (`0` for no limit).
    #[arg(long, default_value = "30m", value_parser = parse_duration)]
    pub max_connection_age: Duration,
    /// Each connection's age is stretched by up to this fraction (0 to 1), at random.
    #[arg(long, default_value_t = 0.1)]
    pub max_connection_age_jitter: f64,
    /// New xDS streams being set up at once (first configuration not yet sent); others
    /// wait in the admission queue (`0` admits all at once). Default: four per core.
    #[arg(long)]
    pub new_streams_in_progress: Option<usize>,
    /// New xDS streams that may wait for admission; one more is refused (one peer IP may
    /// hold a tenth of the queue).
    #[arg(long, default_value_t = 10_000)]
    pub new_stream_queue: usize,
    /// Streams whose configuration is generated at the same time. Default: one per core.
    #[arg(long)]
    pub max_concurrent_pushes: Option<usize>,
    /// Largest xDS request accepted (`4Mi`, `512Ki`, or bytes).
    #[arg(long, default_value = "4Mi", value_parser = parse_size)]
    pub max_request_message_size: usize,
    /// Largest xDS response sent (`256Mi`, or bytes); a larger one is logged and not sent.
    #[arg(long, default_value = "256Mi", value_parser = parse_size)]
    pub max_response_message_size: usize,
    /// On SIGTERM or SIGINT, how long xDS streams have to close gracefully before exit.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub drain_duration: Duration,
}

#[derive(Debug, clap::Args)]
pub struct BootstrapArgs {
    /// Node id, `sidecar~IP~POD.NAMESPACE~NAMESPACE.svc.cluster.local` (`router~...` for a
    /// gateway).
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
    /// meshd's root certificate (PEM): connect to --xds-address over TLS and check meshd's
    /// certificate against it (meshd's secure port, 15012).
    #[arg(long, requires = "token_file")]
    pub root_cert: Option<PathBuf>,
    /// File holding the bearer token presented to meshd's secure port (with --root-cert).
    #[arg(long, requires = "root_cert")]
    pub token_file: Option<PathBuf>,
    /// Name meshd's certificate is checked for (SNI and SAN) with --root-cert.
    #[arg(long, default_value = "istiod.istio-system.svc")]
    pub xds_server_name: String,
    /// Have Envoy read --token-file again for every new xDS stream (Google gRPC client with
    /// file-based call credentials), so a token rotated on disk keeps working; by default
    /// the token is copied into the bootstrap.
    #[arg(long, requires = "token_file")]
    pub watch_token_file: bool,
}

#[derive(Debug, clap::Args)]
pub struct TranslateArgs {
    #[arg(long)]
    pub config_dir: PathBuf,
    #[arg(long)]
    pub node_id: String,
    #[arg(long = "type", value_enum, default_value_t = OutputType::All)]
    pub output_type: OutputType,
    #[command(flatten)]
    pub mesh: MeshArgs,
    /// Workload labels, as node metadata `LABELS` would carry them (key=value, repeatable);
    /// a Pod of the model that matches the node id wins over them.
    #[arg(long = "label", value_parser = parse_key_value)]
    pub labels: Vec<(String, String)>,
    /// Translate for a proxy whose xDS stream proved this identity (a sidecar on the secure
    /// port, with a workload certificate: mesh mTLS); without it, for one on the plaintext
    /// port (no certificate, no SDS reference).
    #[arg(long, value_name = "SPIFFE_ID")]
    pub identity: Option<String>,
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

/// A duration such as `500ms`, `10s`, `30m`, `1h`, or `0` (Go's format, as in Istio's
/// resources), with a hint when the unit is left out.
fn parse_duration(s: &str) -> Result<Duration, String> {
    if s != "0" && s.ends_with(|c: char| c.is_ascii_digit()) {
        return Err(format!(
            "{s:?} has no unit: write it as 500ms, 10s, 30m or 1h"
        ));
    }
    crate::duration::parse_duration(s)
}

/// A size in bytes, or with a binary suffix: `512Ki`, `4Mi`, `1Gi`.
fn parse_size(s: &str) -> Result<usize, String> {
    let (number, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: usize = number
        .parse()
        .map_err(|_| format!("{s:?} does not start with a whole number"))?;
    let scale: usize = match unit {
        "" => 1,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (Ki, Mi or Gi)")),
    };
    n.checked_mul(scale)
        .ok_or_else(|| format!("{s:?} is too large"))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_sizes_parse_with_units() {
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert!(parse_duration("10").unwrap_err().contains("no unit"));
        assert!(parse_duration("10d").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("s").is_err());
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("512Ki"), Ok(512 << 10));
        assert_eq!(parse_size("4Mi"), Ok(4 << 20));
        assert_eq!(parse_size("1Gi"), Ok(1 << 30));
        assert!(parse_size("4MB").unwrap_err().contains("unknown unit"));
        assert!(parse_size("Mi").is_err());
    }
}
