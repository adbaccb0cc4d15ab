//! Command-line arguments of the CA: `meshd serve`'s CA and secure-port flags, and
//! `meshd token`.

use std::path::PathBuf;
use std::time::Duration;

/// The CA and the authenticated xDS port (`meshd serve`).
#[derive(Debug, Clone, clap::Args)]
pub struct CaArgs {
    /// Directory of the CA's root and keys (made on first start, reused after; Istio's
    /// plug-in CA files `ca-cert.pem`, `ca-key.pem`, `cert-chain.pem`, `root-cert.pem` there
    /// are used as they are). Without it the root lives in memory and changes on restart.
    #[arg(long)]
    pub ca_dir: Option<PathBuf>,
    /// SPIFFE trust domain of workload identities.
    #[arg(long, default_value = "cluster.local")]
    pub trust_domain: String,
    /// Lifetime of workload certificates; they are renewed at about half of it.
    #[arg(long, default_value = "24h", value_parser = parse_ttl)]
    pub workload_cert_ttl: Duration,
    /// How often the files of `--ca-dir` (with `--kubernetes` and no `--ca-dir`: Secret
    /// `cacerts`) are checked for changes (content, not times); a new valid set is applied
    /// without a restart (staged root rotation, see SECURITY.md).
    #[arg(long, default_value = "5s", value_parser = parse_interval)]
    pub ca_reload_interval: Duration,
    /// After the signing CA changes, every workload certificate is issued again at a random
    /// moment within this window (so a fleet is not reissued all at once).
    #[arg(long, default_value = "60s", value_parser = crate::duration::parse_duration)]
    pub ca_reissue_window: Duration,
    /// Address of the authenticated xDS port (TLS; bearer tokens), or `off`.
    #[arg(long, default_value = "0.0.0.0:15012", value_parser = parse_addr)]
    pub secure_xds_addr: SecureAddr,
    /// DNS names in meshd's serving certificate on the secure port (repeatable).
    #[arg(long = "server-name", default_values_t = [
        "istiod.istio-system.svc".to_string(),
        "meshd.istio-system.svc".to_string(),
    ])]
    pub server_names: Vec<String>,
}

/// `--secure-xds-addr`: an address, or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecureAddr {
    Off,
    On(std::net::SocketAddr),
}

impl std::fmt::Display for SecureAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecureAddr::Off => f.write_str("off"),
            SecureAddr::On(a) => write!(f, "{a}"),
        }
    }
}

fn parse_addr(s: &str) -> Result<SecureAddr, String> {
    match s {
        "off" | "none" => Ok(SecureAddr::Off),
        _ => s
            .parse()
            .map(SecureAddr::On)
            .map_err(|e| format!("{s:?}: {e} (expected HOST:PORT or off)")),
    }
}

/// Shortest workload certificate lifetime accepted: renewal at half-life must stay well
/// above the time issuing and pushing take.
pub const MIN_TTL: Duration = Duration::from_secs(10);

fn parse_ttl(s: &str) -> Result<Duration, String> {
    let d = crate::duration::parse_duration(s)?;
    if d < MIN_TTL {
        return Err(format!("{s:?} is shorter than the minimum of 10s"));
    }
    if d > Duration::from_secs(365 * 24 * 3600) {
        return Err(format!("{s:?} is longer than a year"));
    }
    Ok(d)
}

fn parse_interval(s: &str) -> Result<Duration, String> {
    let d = crate::duration::parse_duration(s)?;
    if d < Duration::from_millis(100) {
        return Err(format!("{s:?} is shorter than the minimum of 100ms"));
    }
    Ok(d)
}

/// `meshd token`: prints a token meshd accepts on its secure port.
#[derive(Debug, clap::Args)]
pub struct TokenArgs {
    /// The CA directory of the meshd that is to accept the token (its `token-key.pem`;
    /// made there if missing).
    #[arg(long)]
    pub ca_dir: PathBuf,
    #[arg(long)]
    pub namespace: String,
    #[arg(long)]
    pub service_account: String,
    /// How long the token is valid.
    #[arg(long, default_value = "24h", value_parser = crate::duration::parse_duration)]
    pub ttl: Duration,
}
