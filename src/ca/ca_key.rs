//! The CA's signing key read from PEM in every form Istio's CAs write: PKCS#8
//! (`PRIVATE KEY`), PKCS#1 RSA (`RSA PRIVATE KEY`, what istiod's self-signed CA stores in
//! `istio-ca-secret`, RSA 2048 by default) and SEC1 EC (`EC PRIVATE KEY`, OpenSSL's and Go's
//! EC form). The signing library takes PKCS#8 only, so the other two are wrapped into a
//! PKCS#8 envelope first; the key material itself is untouched.

use rcgen::KeyPair;

/// DER of the rsaEncryption algorithm identifier's OID (1.2.840.113549.1.1.1).
const OID_RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
/// DER of id-ecPublicKey (1.2.840.10045.2.1).
const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
/// Named curves by the length of their private scalar, for SEC1 keys without parameters.
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];

const TAG_INTEGER: u8 = 0x02;
const TAG_OCTET_STRING: u8 = 0x04;
const TAG_NULL: u8 = 0x05;
const TAG_OID: u8 = 0x06;
const TAG_SEQUENCE: u8 = 0x30;
const TAG_PARAMETERS: u8 = 0xa0;

/// The first private key in `pem`, whatever its form; the error says what was found.
pub fn key_pair_from_pem(pem: &str) -> Result<KeyPair, String> {
    let block = x509_parser::pem::Pem::iter_from_buffer(pem.as_bytes())
        .filter_map(Result::ok)
        .find(|p| p.label.ends_with("PRIVATE KEY"))
        .ok_or_else(|| "no PEM block ending in PRIVATE KEY".to_string())?;
    let pkcs8 = match block.label.as_str() {
        "PRIVATE KEY" => block.contents,
        "RSA PRIVATE KEY" => rsa_pkcs1_to_pkcs8(&block.contents),
        "EC PRIVATE KEY" => ec_sec1_to_pkcs8(&block.contents)?,
        other => return Err(format!("unsupported key block {other:?}")),
    };
    KeyPair::try_from(pkcs8).map_err(|e| format!("{} key: {e}", block.label))
}

/// PrivateKeyInfo { version 0, rsaEncryption with NULL parameters, the PKCS#1 key }.
fn rsa_pkcs1_to_pkcs8(pkcs1: &[u8]) -> Vec<u8> {
    let algorithm = der(
        TAG_SEQUENCE,
        &[der(TAG_OID, OID_RSA_ENCRYPTION), der(TAG_NULL, &[])].concat(),
    );
    private_key_info(&algorithm, pkcs1)
}

/// PrivateKeyInfo { version 0, id-ecPublicKey with the key's curve, the SEC1 key }. The
/// curve comes from the key's own parameters, else from the length of its scalar.
fn ec_sec1_to_pkcs8(sec1: &[u8]) -> Result<Vec<u8>, String> {
    let fields = sequence_fields(sec1).ok_or("EC PRIVATE KEY is not a DER sequence")?;
    let scalar_len = fields
        .iter()
        .find(|(tag, _)| *tag == TAG_OCTET_STRING)
        .map(|(_, v)| v.len())
        .ok_or("EC PRIVATE KEY has no private key")?;
    let curve: Vec<u8> = match fields.iter().find(|(tag, _)| *tag == TAG_PARAMETERS) {
        Some((_, params)) => match sequence_fields_of(params) {
            Some(inner) if inner.len() == 1 && inner[0].0 == TAG_OID => inner[0].1.to_vec(),
            _ => return Err("EC PRIVATE KEY parameters are not a named curve".into()),
        },
        None => match scalar_len {
            32 => OID_P256.to_vec(),
            48 => OID_P384.to_vec(),
            n => return Err(format!("EC PRIVATE KEY of {n} bytes names no curve")),
        },
    };
    let algorithm = der(
        TAG_SEQUENCE,
        &[der(TAG_OID, OID_EC_PUBLIC_KEY), der(TAG_OID, &curve)].concat(),
    );
    Ok(private_key_info(&algorithm, sec1))
}

fn private_key_info(algorithm: &[u8], key: &[u8]) -> Vec<u8> {
    let body = [
        der(TAG_INTEGER, &[0]),
        algorithm.to_vec(),
        der(TAG_OCTET_STRING, key),
    ]
    .concat();
    der(TAG_SEQUENCE, &body)
}

/// One DER element: tag, definite length, value.
fn der(tag: u8, value: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = value.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(value);
    out
}

/// The (tag, value) elements inside a top-level DER SEQUENCE.
fn sequence_fields(input: &[u8]) -> Option<Vec<(u8, &[u8])>> {
    let (tag, value, rest) = element(input)?;
    (tag == TAG_SEQUENCE && rest.is_empty()).then_some(())?;
    sequence_fields_of(value)
}

/// The (tag, value) elements of a run of DER elements.
fn sequence_fields_of(mut input: &[u8]) -> Option<Vec<(u8, &[u8])>> {
    let mut fields = Vec::new();
    while !input.is_empty() {
        let (tag, value, rest) = element(input)?;
        fields.push((tag, value));
        input = rest;
    }
    Some(fields)
}

/// Splits one DER element off the front of `input`.
fn element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > std::mem::size_of::<usize>() || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | *b as usize);
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/ca/legacy-keys");

    fn fixture(name: &str) -> String {
        std::fs::read_to_string(format!("{FIXTURES}/{name}")).unwrap()
    }

    #[test]
    fn reads_pkcs1_rsa_as_istiod_writes_it() {
        let key = key_pair_from_pem(&fixture("rsa-ca-key.pem")).unwrap();
        assert_eq!(key.algorithm(), &rcgen::PKCS_RSA_SHA256);
    }

    #[test]
    fn reads_sec1_ec_with_named_curve() {
        let key = key_pair_from_pem(&fixture("ec-ca-key.pem")).unwrap();
        assert_eq!(key.algorithm(), &rcgen::PKCS_ECDSA_P256_SHA256);
    }

    #[test]
    fn reads_pkcs8_unchanged() {
        let pem = KeyPair::generate().unwrap().serialize_pem();
        let key = key_pair_from_pem(&pem).unwrap();
        assert_eq!(key.serialize_pem(), pem);
    }

    #[test]
    fn refuses_what_is_not_a_key() {
        let err = key_pair_from_pem(&fixture("rsa-ca-cert.pem")).unwrap_err();
        assert!(err.contains("no PEM block"), "{err}");
        let garbage = "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n";
        let err = key_pair_from_pem(garbage).unwrap_err();
        assert!(err.contains("EC PRIVATE KEY"), "{err}");
    }

    #[test]
    fn long_lengths_encode_in_several_bytes() {
        let value = vec![7u8; 300];
        let encoded = der(TAG_OCTET_STRING, &value);
        assert_eq!(&encoded[..4], &[TAG_OCTET_STRING, 0x82, 0x01, 0x2c]);
        let (tag, back, rest) = element(&encoded).unwrap();
        assert_eq!((tag, back, rest.len()), (TAG_OCTET_STRING, &value[..], 0));
    }
}
