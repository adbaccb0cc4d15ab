//! The JWKS fetcher: RequestAuthentication `jwksUri`s are fetched by meshd, never by Envoy,
//! so keys reach sidecars inline and translation stays free of I/O. A stage between the
//! source and the build pipeline: it forwards every input set unchanged, fetches the URIs
//! the input names (again every `REFRESH`, failures retried after `RETRY`), publishes what
//! it holds, and re-sends the last input when that changes so that a new generation picks
//! the keys up. A URI not fetched yet has no entry: translation then gives Envoy a key
//! nobody holds, so tokens fail closed, as istiod does. `http` and `https` (`https`: the
//! server's certificate checked against the system roots or `SSL_CERT_FILE`, see `https`);
//! no redirects are followed.

mod https;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{info, warn};

use super::{InputSet, KubeObject};

/// JWKS documents by URI.
pub type FetchedJwks = Arc<BTreeMap<String, Arc<str>>>;

/// How often a fetched document is fetched again (istiod refreshes every 20 minutes).
pub const REFRESH: Duration = Duration::from_secs(20 * 60);
/// How soon a failed fetch is tried again.
pub const RETRY: Duration = Duration::from_secs(2);
/// Bounds on one fetch.
const TIMEOUT: Duration = Duration::from_secs(5);
const MAX_BYTES: usize = 1 << 20;

/// The `jwksUri`s of the RequestAuthentications in `input`.
pub fn uris(input: &InputSet) -> BTreeSet<String> {
    users(input).into_keys().collect()
}

/// The `jwksUri`s of the RequestAuthentications in `input`, each with the
/// RequestAuthentications (`namespace/name`) that name it.
pub fn users(input: &InputSet) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for o in &input.objects {
        let KubeObject::RequestAuthentication(ra) = &*o.object else {
            continue;
        };
        let name = format!(
            "{}/{}",
            ra.metadata.namespace.as_deref().unwrap_or_default(),
            ra.metadata.name.as_deref().unwrap_or_default()
        );
        let fetched = ra
            .spec
            .jwt_rules
            .iter()
            .filter(|r| r.jwks.as_deref().is_none_or(str::is_empty))
            .filter_map(|r| r.jwks_uri.clone())
            .filter(|u| !u.is_empty());
        for uri in fetched {
            out.entry(uri).or_default().insert(name.clone());
        }
    }
    out
}

/// Starts the stage; returns the forwarded inputs and the fetched documents.
pub fn start(
    mut source: watch::Receiver<Option<Arc<InputSet>>>,
) -> (
    watch::Receiver<Option<Arc<InputSet>>>,
    watch::Receiver<FetchedJwks>,
) {
    let (inputs_tx, inputs_rx) = watch::channel(source.borrow().clone());
    let (jwks_tx, jwks_rx) = watch::channel(FetchedJwks::default());
    tokio::spawn(async move {
        // Next fetch time per URI.
        let mut due: BTreeMap<String, Instant> = BTreeMap::new();
        let mut fetched: BTreeMap<String, Arc<str>> = BTreeMap::new();
        loop {
            let wanted = source.borrow().as_deref().map(users).unwrap_or_default();
            due.retain(|u, _| wanted.contains_key(u));
            fetched.retain(|u, _| wanted.contains_key(u));
            for u in wanted.keys() {
                due.entry(u.clone()).or_insert_with(Instant::now);
            }
            let now = Instant::now();
            let mut changed = false;
            for (uri, when) in due.iter_mut().filter(|(_, w)| **w <= now) {
                match fetch(uri).await {
                    Ok(doc) => {
                        *when = Instant::now() + REFRESH;
                        if fetched.get(uri).map(|d| &**d) != Some(doc.as_str()) {
                            info!(%uri, "fetched JWKS");
                            fetched.insert(uri.clone(), Arc::from(doc));
                            changed = true;
                        }
                    }
                    Err(reason) => {
                        let users = wanted
                            .get(uri)
                            .map(|u| u.iter().cloned().collect::<Vec<_>>().join(", "))
                            .unwrap_or_default();
                        warn!(
                            request_authentications = %users,
                            %uri,
                            %reason,
                            "fetching the jwksUri {uri} of RequestAuthentication {users} \
                             failed: {reason}; tokens it signs are refused until it succeeds"
                        );
                        *when = Instant::now() + RETRY;
                    }
                }
            }
            if changed || jwks_tx.borrow().len() != fetched.len() {
                jwks_tx.send_replace(Arc::new(fetched.clone()));
                // The same input again: the pipeline rebuilds with the new keys.
                inputs_tx.send_replace(source.borrow().clone());
            }
            let next = due.values().min().copied();
            tokio::select! {
                r = source.changed() => {
                    if r.is_err() {
                        return;
                    }
                    inputs_tx.send_replace(source.borrow_and_update().clone());
                }
                _ = async {
                    match next {
                        Some(t) => tokio::time::sleep_until(t).await,
                        None => std::future::pending().await,
                    }
                } => {}
            }
        }
    });
    (inputs_rx, jwks_rx)
}

/// One `GET` over HTTP/1.0 (so the body is neither chunked nor kept alive), over TLS for
/// `https`, trusting the system roots (`https::system_roots`); the body must be a JWKS
/// document.
pub async fn fetch(uri: &str) -> Result<String, String> {
    let tls = if uri.starts_with("https:") {
        Some(https::client_config(https::system_roots()?)?)
    } else {
        None
    };
    fetch_with(uri, tls).await
}

/// `fetch`, with the TLS configuration of `https` URIs given.
async fn fetch_with(
    uri: &str,
    tls: Option<Arc<tokio_rustls::rustls::ClientConfig>>,
) -> Result<String, String> {
    let parsed: axum::http::Uri = uri.parse().map_err(|e| format!("{e}"))?;
    let default_port = match parsed.scheme_str() {
        Some("http") => 80,
        Some("https") => 443,
        _ => return Err("only http and https jwksUris can be fetched".into()),
    };
    let host = parsed.host().ok_or("no host")?;
    // `[::1]` in a URI, `::1` to connect and to check the certificate.
    let bare_host = host.trim_start_matches('[').trim_end_matches(']');
    let port = parsed.port_u16().unwrap_or(default_port);
    let authority = match parsed.port_u16() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    };
    let path = parsed.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let request = format!(
        "GET {path} HTTP/1.0\r\nHost: {authority}\r\nAccept: application/json\r\nUser-Agent: meshd\r\n\r\n"
    );
    let work = async {
        let tcp = tokio::net::TcpStream::connect((bare_host, port))
            .await
            .map_err(|e| format!("connecting: {e}"))?;
        match (default_port, tls) {
            (443, Some(config)) => {
                let stream = https::connect(config, bare_host, tcp).await?;
                exchange(stream, &request).await
            }
            (443, None) => Err("no TLS configuration for an https URI".to_string()),
            _ => exchange(tcp, &request).await,
        }
    };
    let (raw, clean_end) = tokio::time::timeout(TIMEOUT, work)
        .await
        .map_err(|_| format!("no answer within {TIMEOUT:?}"))??;
    if raw.len() > MAX_BYTES {
        return Err(format!("answer larger than {MAX_BYTES} bytes"));
    }
    let text = String::from_utf8(raw).map_err(|_| "answer is not UTF-8".to_string())?;
    let (head, body) = text.split_once("\r\n\r\n").ok_or("no end of headers")?;
    let status = head.split_whitespace().nth(1).unwrap_or("");
    if status != "200" {
        return Err(format!("status {status}"));
    }
    if !clean_end && content_length(head) != Some(body.len()) {
        // Without close_notify or a length, a cut-off document could pass for a whole one.
        return Err(
            "the TLS connection ended without close_notify or a matching Content-Length".into(),
        );
    }
    crate::mesh::build::check_jwks(body)?;
    Ok(body.to_string())
}

/// Sends `request` and reads the answer to its end (at most `MAX_BYTES` + 1 bytes); also
/// whether the end was clean (for TLS: close_notify, which many servers never send).
async fn exchange<S>(mut stream: S, request: &str) -> Result<(Vec<u8>, bool), String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("sending: {e}"))?;
    let mut body = Vec::new();
    match (&mut stream)
        .take(MAX_BYTES as u64 + 1)
        .read_to_end(&mut body)
        .await
    {
        Ok(_) => Ok((body, true)),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok((body, false)),
        Err(e) => Err(format!("reading: {e}")),
    }
}

fn content_length(head: &str) -> Option<usize> {
    head.lines().skip(1).find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse().ok())?
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    async fn serve_once(answer: &'static str) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf).await;
            s.write_all(answer.as_bytes()).await.unwrap();
        });
        format!("http://{addr}/keys")
    }

    #[tokio::test]
    async fn fetches_a_jwks_and_refuses_anything_else() {
        let ok = serve_once("HTTP/1.0 200 OK\r\n\r\n{\"keys\":[{\"kty\":\"EC\"}]}").await;
        assert_eq!(fetch(&ok).await.unwrap(), "{\"keys\":[{\"kty\":\"EC\"}]}");
        let missing = serve_once("HTTP/1.0 404 Not Found\r\n\r\nno").await;
        assert_eq!(fetch(&missing).await.unwrap_err(), "status 404");
        let not_jwks = serve_once("HTTP/1.0 200 OK\r\n\r\n{}").await;
        assert!(fetch(&not_jwks).await.unwrap_err().contains("keys"));
        assert!(fetch("ftp://example.com/k")
            .await
            .unwrap_err()
            .contains("http and https"));
    }
}
