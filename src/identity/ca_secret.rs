//! The CA's signing material kept in Secrets of the root namespace, as istiod keeps it, so
//! every replica and every restart signs with the same root:
//!
//! 1. Secret `cacerts` (Istio's plug-in CA: `ca-cert.pem`, `ca-key.pem`, `root-cert.pem`,
//!    optional `cert-chain.pem`; or the `kubernetes.io/tls` form `tls.crt`, `tls.key`,
//!    `ca.crt`) is used as the signing intermediate when it exists;
//! 2. else Secret `istio-ca-secret` (istiod's self-signed root: `ca-cert.pem`, `ca-key.pem`);
//! 3. else a new root is made and `istio-ca-secret` created with istiod's keys and type. A
//!    create is atomic, so when replicas start together one create wins and the others,
//!    refused with `AlreadyExists`, read the winner's root.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{anyhow, Context};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::ByteString;
use kube::api::{Api, PostParams};
use tracing::{info, warn};

use super::api_error_is;

/// Istio's plug-in CA Secret.
pub const CACERTS: &str = "cacerts";
/// istiod's self-signed CA Secret (deploy/meshd.yaml grants meshd writing exactly this one).
pub const ISTIO_CA_SECRET: &str = "istio-ca-secret";
/// The Secret type istiod gives `istio-ca-secret`.
const ISTIO_CA_SECRET_TYPE: &str = "istio.io/ca-root";

const CA_CERT: &str = "ca-cert.pem";
const CA_KEY: &str = "ca-key.pem";
const CERT_CHAIN: &str = "cert-chain.pem";
const ROOT_CERT: &str = "root-cert.pem";
const TLS_CERT: &str = "tls.crt";
const TLS_KEY: &str = "tls.key";
const TLS_ROOT: &str = "ca.crt";

/// Signing material as PEM text.
#[derive(Clone, PartialEq, Eq)]
pub struct CaPems {
    /// The signing certificate.
    pub ca_cert: String,
    /// Its private key.
    pub ca_key: String,
    /// The chain from the signing certificate up to (not necessarily including) the root.
    pub cert_chain: String,
    /// The root(s) proxies trust.
    pub root_cert: String,
}

impl std::fmt::Debug for CaPems {
    // The key never reaches a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaPems")
            .field("ca_cert", &self.ca_cert)
            .field("ca_key", &"<redacted>")
            .field("cert_chain", &self.cert_chain)
            .field("root_cert", &self.root_cert)
            .finish()
    }
}

/// Where the material came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaOrigin {
    /// Secret `cacerts`: a plug-in intermediate.
    PlugIn,
    /// Secret `istio-ca-secret`, found.
    Stored,
    /// Secret `istio-ca-secret`, created by this replica.
    Created,
}

/// The CA material and where it came from.
#[derive(Clone, Debug)]
pub struct StoredCa {
    pub pems: CaPems,
    pub origin: CaOrigin,
}

/// Reads the CA from `cacerts` or `istio-ca-secret` in `namespace`, or makes a self-signed
/// root with `make_root` (returning certificate and key PEM) and stores it in
/// `istio-ca-secret`. API errors other than "not found" are retried a few times, then
/// returned naming the Secret.
pub async fn load_or_create(
    client: kube::Client,
    namespace: &str,
    make_root: impl Fn() -> anyhow::Result<(String, String)>,
) -> anyhow::Result<StoredCa> {
    // The root namespace may be created after meshd starts (as with istiod, which also
    // waits for its own namespace): until it exists no Secret can be stored there.
    let mut backoff = Duration::from_millis(500);
    loop {
        match load_or_create_once(client.clone(), namespace, &make_root).await {
            Err(Missing::Namespace) => {
                warn!(
                    namespace,
                    retry_in = ?backoff,
                    "the root namespace does not exist yet: waiting for it to store the CA"
                );
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
            Err(Missing::Other(error)) => return Err(error),
            Ok(stored) => return Ok(stored),
        }
    }
}

/// Why one attempt of `load_or_create` failed.
enum Missing {
    /// The namespace to store `istio-ca-secret` in does not exist.
    Namespace,
    Other(anyhow::Error),
}

impl<E: Into<anyhow::Error>> From<E> for Missing {
    fn from(error: E) -> Missing {
        Missing::Other(error.into())
    }
}

async fn load_or_create_once(
    client: kube::Client,
    namespace: &str,
    make_root: &impl Fn() -> anyhow::Result<(String, String)>,
) -> Result<StoredCa, Missing> {
    let api = Api::<Secret>::namespaced(client, namespace);
    if let Some(secret) = get_retrying(&api, namespace, CACERTS).await? {
        let pems = plug_in_pems(secret.data.as_ref())
            .map_err(|reason| anyhow!("Secret {namespace}/{CACERTS}: {reason}"))?;
        info!(secret = %format!("{namespace}/{CACERTS}"), "CA: plug-in certificates from the Secret");
        return Ok(StoredCa {
            pems,
            origin: CaOrigin::PlugIn,
        });
    }
    if let Some(secret) = get_retrying(&api, namespace, ISTIO_CA_SECRET).await? {
        return Ok(stored(namespace, &secret)?);
    }
    let (cert, key) = make_root().context("making a self-signed CA root")?;
    let secret = istio_ca_secret(namespace, &cert, &key);
    match api.create(&PostParams::default(), &secret).await {
        Ok(_) => {
            info!(secret = %format!("{namespace}/{ISTIO_CA_SECRET}"), "CA: new self-signed root stored");
            Ok(StoredCa {
                pems: self_signed_pems(cert, key),
                origin: CaOrigin::Created,
            })
        }
        Err(error) if api_error_is(&error, |s| s.is_already_exists()) => {
            info!(secret = %format!("{namespace}/{ISTIO_CA_SECRET}"), "CA: another replica stored a root first; using it");
            let secret = get_retrying(&api, namespace, ISTIO_CA_SECRET)
                .await?
                .ok_or_else(|| {
                    anyhow!("Secret {namespace}/{ISTIO_CA_SECRET}: already exists yet not found")
                })?;
            Ok(stored(namespace, &secret)?)
        }
        Err(error) if api_error_is(&error, |s| s.is_not_found()) => Err(Missing::Namespace),
        Err(error) => Err(Missing::Other(
            anyhow!(error).context(format!("creating Secret {namespace}/{ISTIO_CA_SECRET}")),
        )),
    }
}

fn stored(namespace: &str, secret: &Secret) -> anyhow::Result<StoredCa> {
    let pems = istio_ca_secret_pems(secret.data.as_ref())
        .map_err(|reason| anyhow!("Secret {namespace}/{ISTIO_CA_SECRET}: {reason}"))?;
    info!(secret = %format!("{namespace}/{ISTIO_CA_SECRET}"), "CA: self-signed root from the Secret");
    Ok(StoredCa {
        pems,
        origin: CaOrigin::Stored,
    })
}

/// `get_opt` with a few retries for transient errors (the API server restarting, 429s).
async fn get_retrying(
    api: &Api<Secret>,
    namespace: &str,
    name: &str,
) -> anyhow::Result<Option<Secret>> {
    let mut backoff = Duration::from_millis(200);
    for attempt in 1.. {
        match api.get_opt(name).await {
            Ok(found) => return Ok(found),
            Err(error) if attempt < 6 && !api_error_is(&error, |s| s.is_forbidden()) => {
                warn!(secret = %format!("{namespace}/{name}"), %error, retry_in = ?backoff, "CA Secret not read");
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
            Err(error) => {
                return Err(anyhow!(error))
                    .with_context(|| format!("reading Secret {namespace}/{name}"))
            }
        }
    }
    unreachable!("the loop returns")
}

type Data = BTreeMap<String, ByteString>;

/// One key's value as non-empty text, or why not.
fn text<'a>(data: Option<&'a Data>, key: &str) -> Result<Option<&'a str>, String> {
    let Some(value) = data.and_then(|d| d.get(key)) else {
        return Ok(None);
    };
    let value = std::str::from_utf8(&value.0).map_err(|_| format!("key {key} is not text"))?;
    Ok(Some(value).filter(|v| !v.trim().is_empty()))
}

fn required<'a>(data: Option<&'a Data>, key: &str) -> Result<&'a str, String> {
    text(data, key)?.ok_or_else(|| format!("key {key} is missing or empty"))
}

/// The plug-in material of a `cacerts` Secret as read now (`ca_reload`).
pub fn plug_in_of(secret: &Secret) -> Result<CaPems, String> {
    plug_in_pems(secret.data.as_ref())
}

/// The plug-in material of `cacerts`, in istiod's file names or the `kubernetes.io/tls` form.
fn plug_in_pems(data: Option<&Data>) -> Result<CaPems, String> {
    if let Some(cert) = text(data, TLS_CERT)? {
        let root = required(data, TLS_ROOT)?;
        return Ok(CaPems {
            ca_cert: cert.to_string(),
            ca_key: required(data, TLS_KEY)?.to_string(),
            cert_chain: join(cert, root),
            root_cert: root.to_string(),
        });
    }
    let cert = required(data, CA_CERT)?;
    Ok(CaPems {
        ca_cert: cert.to_string(),
        ca_key: required(data, CA_KEY)?.to_string(),
        cert_chain: text(data, CERT_CHAIN)?.unwrap_or(cert).to_string(),
        root_cert: required(data, ROOT_CERT)?.to_string(),
    })
}

/// istiod reads only `ca-cert.pem` and `ca-key.pem` here: the certificate is its own root.
fn istio_ca_secret_pems(data: Option<&Data>) -> Result<CaPems, String> {
    let cert = required(data, CA_CERT)?;
    let key = required(data, CA_KEY)?;
    Ok(self_signed_pems(cert.to_string(), key.to_string()))
}

fn self_signed_pems(cert: String, key: String) -> CaPems {
    CaPems {
        cert_chain: cert.clone(),
        root_cert: cert.clone(),
        ca_cert: cert,
        ca_key: key,
    }
}

fn join(first: &str, second: &str) -> String {
    let mut out = first.trim_end().to_string();
    out.push('\n');
    out.push_str(second.trim_end());
    out.push('\n');
    out
}

/// `istio-ca-secret` as istiod writes it: the root in `ca-cert.pem` and `root-cert.pem`,
/// empty `cert-chain.pem` and `key.pem`, type `istio.io/ca-root`.
fn istio_ca_secret(namespace: &str, cert: &str, key: &str) -> Secret {
    let bytes = |s: &str| ByteString(s.as_bytes().to_vec());
    let data = BTreeMap::from([
        (CA_CERT.to_string(), bytes(cert)),
        (CA_KEY.to_string(), bytes(key)),
        (CERT_CHAIN.to_string(), bytes("")),
        ("key.pem".to_string(), bytes("")),
        (ROOT_CERT.to_string(), bytes(cert)),
    ]);
    Secret {
        metadata: ObjectMeta {
            name: Some(ISTIO_CA_SECRET.to_string()),
            namespace: Some(namespace.to_string()),
            ..ObjectMeta::default()
        },
        type_: Some(ISTIO_CA_SECRET_TYPE.to_string()),
        data: Some(data),
        ..Secret::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(pairs: &[(&str, &str)]) -> Data {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
            .collect()
    }

    #[test]
    fn cacerts_in_istiod_file_names() {
        let d = data(&[
            (CA_CERT, "INT"),
            (CA_KEY, "KEY"),
            (CERT_CHAIN, "INT\nROOT"),
            (ROOT_CERT, "ROOT"),
        ]);
        let pems = plug_in_pems(Some(&d)).unwrap();
        assert_eq!(pems.ca_cert, "INT");
        assert_eq!(pems.cert_chain, "INT\nROOT");
        assert_eq!(pems.root_cert, "ROOT");
        let without_chain = data(&[(CA_CERT, "INT"), (CA_KEY, "KEY"), (ROOT_CERT, "ROOT")]);
        assert_eq!(
            plug_in_pems(Some(&without_chain)).unwrap().cert_chain,
            "INT"
        );
    }

    #[test]
    fn cacerts_in_the_tls_form() {
        let d = data(&[(TLS_CERT, "INT\n"), (TLS_KEY, "KEY"), (TLS_ROOT, "ROOT")]);
        let pems = plug_in_pems(Some(&d)).unwrap();
        assert_eq!(pems.ca_key, "KEY");
        assert_eq!(pems.cert_chain, "INT\nROOT\n");
        assert_eq!(pems.root_cert, "ROOT");
    }

    #[test]
    fn incomplete_secrets_name_the_key() {
        let d = data(&[(CA_CERT, "INT"), (ROOT_CERT, "ROOT")]);
        assert_eq!(
            plug_in_pems(Some(&d)).unwrap_err(),
            "key ca-key.pem is missing or empty"
        );
        let d = data(&[(CA_CERT, "CERT"), (CA_KEY, "  ")]);
        assert_eq!(
            istio_ca_secret_pems(Some(&d)).unwrap_err(),
            "key ca-key.pem is missing or empty"
        );
        let d = BTreeMap::from([(CA_CERT.to_string(), ByteString(vec![0xff, 0xfe]))]);
        assert_eq!(
            istio_ca_secret_pems(Some(&d)).unwrap_err(),
            "key ca-cert.pem is not text"
        );
        assert!(plug_in_pems(None).is_err());
    }

    #[test]
    fn istio_ca_secret_round_trips_with_istiods_layout() {
        let secret = istio_ca_secret("istio-system", "CERT", "KEY");
        assert_eq!(secret.type_.as_deref(), Some("istio.io/ca-root"));
        let d = secret.data.as_ref().unwrap();
        let keys: Vec<&str> = d.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "ca-cert.pem",
                "ca-key.pem",
                "cert-chain.pem",
                "key.pem",
                "root-cert.pem"
            ]
        );
        let pems = istio_ca_secret_pems(Some(d)).unwrap();
        assert_eq!(pems, self_signed_pems("CERT".into(), "KEY".into()));
        assert!(!format!("{pems:?}").contains("KEY"));
    }
}
