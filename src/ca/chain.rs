//! Checks of the CA's certificates before they are used: every PEM block of a file must be
//! a whole certificate (a half-written file must not silently shrink the trust bundle), and
//! the signing certificate must chain, link by verified link, up to a root of the trust
//! bundle.

use x509_parser::prelude::*;

use super::authority::{CA_CERT, CERT_CHAIN, ROOT_CERT};
use super::pem::certs_in;
use super::CaError;

/// The DER certificates of `text` (from `file`), refusing a file whose blocks do not all
/// parse as certificates.
pub fn certs_strict(file: &str, text: &str) -> Result<Vec<Vec<u8>>, CaError> {
    let blocks = text.matches("-----BEGIN ").count();
    let certs = certs_in(text);
    if certs.len() != blocks {
        return Err(CaError::part(
            file,
            &format!(
                "holds {blocks} PEM blocks of which {} are certificates (a half-written or \
                 damaged file?)",
                certs.len()
            ),
        ));
    }
    for (i, der) in certs.iter().enumerate() {
        X509Certificate::from_der(der).map_err(|e| {
            CaError::part(file, &format!("certificate {} is not X.509: {e}", i + 1))
        })?;
    }
    Ok(certs)
}

/// The chain from the signing certificate `ca` up to its root, root last, and the index
/// in `roots` of that root. `given` (cert-chain.pem) may start with `ca` or not and may
/// end with the root or not; each certificate must be signed by the next, and the last
/// must be a root of `roots` or be signed by one.
pub fn complete(
    ca: &[u8],
    given: Vec<Vec<u8>>,
    roots: &[Vec<u8>],
) -> Result<(Vec<Vec<u8>>, usize), CaError> {
    let mut certs = given;
    if certs.first().map(Vec::as_slice) != Some(ca) {
        certs.insert(0, ca.to_vec());
    }
    for (i, pair) in certs.windows(2).enumerate() {
        if !signed_by(&pair[0], &pair[1]) {
            return Err(CaError::part(
                CERT_CHAIN,
                &format!(
                    "{} is not signed by the certificate after it ({}): the chain does not \
                     lead from {CA_CERT} to its root",
                    describe(&pair[0], i),
                    subject(&pair[1])
                ),
            ));
        }
    }
    let top = certs.last().expect("holds at least ca");
    if let Some(i) = roots.iter().position(|r| r == top) {
        return Ok((certs, i));
    }
    match roots.iter().position(|r| signed_by(top, r)) {
        Some(i) => {
            certs.push(roots[i].clone());
            Ok((certs, i))
        }
        None => Err(CaError::part(
            CA_CERT,
            &format!(
                "is not under any root of {ROOT_CERT} (its chain ends at {}, which no root \
                 there signed)",
                subject(top)
            ),
        )),
    }
}

/// Whether `issuer`'s key verifies `cert`'s signature.
pub fn signed_by(cert: &[u8], issuer: &[u8]) -> bool {
    let (Ok((_, cert)), Ok((_, issuer))) = (
        X509Certificate::from_der(cert),
        X509Certificate::from_der(issuer),
    ) else {
        return false;
    };
    cert.verify_signature(Some(issuer.public_key())).is_ok()
}

fn subject(der: &[u8]) -> String {
    X509Certificate::from_der(der)
        .map(|(_, c)| c.subject().to_string())
        .unwrap_or_else(|_| "an unparsable certificate".into())
}

fn describe(der: &[u8], index: usize) -> String {
    format!("certificate {} ({})", index + 1, subject(der))
}
