//! Secret checks: TLS credentials for gateways (`credentialName`). Types
//! `kubernetes.io/tls` and `Opaque` (generic) are read, with Kubernetes' keys `tls.crt`,
//! `tls.key`, `ca.crt` or Istio's generic ones `cert`, `key`, `cacert`; values base64 in
//! `data` or plain in `stringData`. Other types, and generic secrets holding none of these
//! keys, are not credentials and are left out without a problem. Problems never quote a
//! value: it may be a private key.

use base64::Engine;

use super::invalid;
use super::istio_fields::Checked;
use super::names::object_key;
use crate::mesh::secret::{CertAndKey, TlsCredential};
use crate::source::objects::Secret;

pub const TLS_TYPE: &str = "kubernetes.io/tls";
pub const OPAQUE_TYPE: &str = "Opaque";

/// Key names of one layout: certificate chain, private key, CA bundle.
struct Layout {
    cert: &'static str,
    key: &'static str,
    ca: &'static str,
}

const KUBERNETES_TLS: Layout = Layout {
    cert: "tls.crt",
    key: "tls.key",
    ca: "ca.crt",
};
/// Istio's generic layout, tried first as istiod does.
const ISTIO_GENERIC: Layout = Layout {
    cert: "cert",
    key: "key",
    ca: "cacert",
};

/// The secret's credential, `None` when it is not a TLS credential at all.
pub fn check(s: &Secret) -> Checked<Option<TlsCredential>> {
    let key = object_key(&s.metadata, false)?;
    let secret_type = s.secret_type.as_deref().unwrap_or(OPAQUE_TYPE);
    if secret_type != TLS_TYPE && secret_type != OPAQUE_TYPE {
        return Ok(None);
    }
    let has = |k: &str| s.data.contains_key(k) || s.string_data.contains_key(k);
    let layout = if secret_type == OPAQUE_TYPE
        && (has(ISTIO_GENERIC.cert) || has(ISTIO_GENERIC.key) || has(ISTIO_GENERIC.ca))
    {
        &ISTIO_GENERIC
    } else {
        &KUBERNETES_TLS
    };
    let present = [layout.cert, layout.key, layout.ca].map(has);
    if secret_type == OPAQUE_TYPE && present == [false; 3] {
        return Ok(None);
    }
    let cert = value(s, layout.cert)?;
    let private_key = value(s, layout.key)?;
    let ca = value(s, layout.ca)?;
    let identity = match (cert, private_key) {
        (Some((cert_field, cert)), Some((key_field, private_key))) => {
            check_pem(
                &cert,
                &cert_field,
                |label| label == "CERTIFICATE",
                "a certificate",
            )?;
            check_pem(&private_key, &key_field, is_key_label, "a private key")?;
            Some(CertAndKey {
                cert_chain: cert,
                private_key,
            })
        }
        (Some(_), None) => {
            return Err(invalid(
                format!("data[{:?}]", layout.key),
                format!(
                    "{} is present but the private key {} is missing",
                    layout.cert, layout.key
                ),
            ))
        }
        (None, Some(_)) => {
            return Err(invalid(
                format!("data[{:?}]", layout.cert),
                format!(
                    "{} is present but the certificate {} is missing",
                    layout.key, layout.cert
                ),
            ))
        }
        (None, None) if secret_type == TLS_TYPE => {
            return Err(invalid(
                "data",
                "a kubernetes.io/tls secret needs tls.crt and tls.key",
            ))
        }
        (None, None) => None,
    };
    let ca_cert = match ca {
        Some((field, ca)) => {
            check_pem(
                &ca,
                &field,
                |label| label == "CERTIFICATE",
                "a CA certificate",
            )?;
            Some(ca)
        }
        None => None,
    };
    Ok(Some(TlsCredential {
        key,
        identity,
        ca_cert,
    }))
}

/// A value by key, `stringData` first (it wins in Kubernetes), with the field it came from.
fn value(s: &Secret, key: &str) -> Checked<Option<(String, Vec<u8>)>> {
    if let Some(v) = s.string_data.get(key) {
        return Ok(Some((
            format!("stringData[{key:?}]"),
            v.as_bytes().to_vec(),
        )));
    }
    let Some(v) = s.data.get(key) else {
        return Ok(None);
    };
    let field = format!("data[{key:?}]");
    // kubectl wraps nothing, but hand-written YAML may break long values over lines.
    let compact: String = v.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .map_err(|e| invalid(field.clone(), format!("not valid base64 ({e})")))?;
    Ok(Some((field, bytes)))
}

fn is_key_label(label: &str) -> bool {
    label.ends_with("PRIVATE KEY")
}

/// Checks that `bytes` is PEM whose blocks decode and carry `wanted` labels (EC keys may
/// come with an `EC PARAMETERS` block first).
fn check_pem(bytes: &[u8], field: &str, wanted: impl Fn(&str) -> bool, what: &str) -> Checked<()> {
    let labels = pem_labels(bytes).map_err(|reason| invalid(field, reason))?;
    let useful: Vec<&String> = labels.iter().filter(|l| *l != "EC PARAMETERS").collect();
    if useful.is_empty() {
        return Err(invalid(field, format!("not PEM: expected {what}")));
    }
    if let Some(other) = useful.iter().find(|l| !wanted(l)) {
        return Err(invalid(
            field,
            format!("expected {what}, found a PEM {other:?} block"),
        ));
    }
    Ok(())
}

/// The labels of the PEM blocks in `bytes`, each checked to hold base64 between matching
/// BEGIN and END lines.
fn pem_labels(bytes: &[u8]) -> Result<Vec<String>, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "not PEM: not UTF-8 text".to_string())?;
    let mut labels = Vec::new();
    let mut open: Option<(String, String)> = None;
    for line in text.lines().map(str::trim) {
        if let Some(label) = line
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
        {
            if open.is_some() {
                return Err("not PEM: a BEGIN line inside a block".to_string());
            }
            open = Some((label.to_string(), String::new()));
        } else if let Some(label) = line
            .strip_prefix("-----END ")
            .and_then(|l| l.strip_suffix("-----"))
        {
            let Some((begun, body)) = open.take() else {
                return Err("not PEM: an END line without BEGIN".to_string());
            };
            if begun != label {
                return Err(format!("not PEM: block {begun:?} ends as {label:?}"));
            }
            base64::engine::general_purpose::STANDARD
                .decode(body.as_bytes())
                .map_err(|_| format!("not PEM: the {begun:?} block is not valid base64"))?;
            labels.push(begun);
        } else if let Some((_, body)) = open.as_mut() {
            // Legacy encrypted keys carry headers (`Proc-Type: ...`); Envoy cannot use them.
            if line.contains(':') {
                return Err(
                    "not PEM Envoy can use: the block has headers (an encrypted key?)".to_string(),
                );
            }
            body.push_str(line);
        }
    }
    if let Some((label, _)) = open {
        return Err(format!("not PEM: block {label:?} has no END line"));
    }
    Ok(labels)
}

#[cfg(test)]
#[path = "secret_tests.rs"]
mod tests;
