//! SDS Secrets of a router proxy: for each `credentialName` its TLS-terminating servers
//! use, `kubernetes://<name>` (certificate chain and private key) and, for servers that
//! verify clients, `kubernetes://<name>-cacert` (the CA bundle: from a Secret of that name,
//! else the `ca.crt` of the credential itself, as istiod looks them up). As istiod does,
//! only credentials of Gateways in the proxy's own namespace are served; the Secret is read
//! from that namespace.
//!
//! Whether these go out at all is not decided here: `meshd serve` only builds them with
//! `--insecure-serve-gateway-secrets` (there is no authenticated stream yet to tell the
//! gateway from any other caller).

use envoy_types::pb::envoy::config::core::v3::{data_source, DataSource};
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    secret, CertificateValidationContext, Secret, TlsCertificate,
};

use super::merge::MergedGateway;
use crate::mesh::ObjectKey;
use crate::translate::naming;
use crate::translate::scope::Scope;

fn inline(bytes: &[u8]) -> Option<DataSource> {
    Some(DataSource {
        specifier: Some(data_source::Specifier::InlineBytes(bytes.to_vec())),
        ..Default::default()
    })
}

/// The Secret resources the merged gateway's listeners reference and the model holds.
pub fn gateway_secrets(scope: &Scope, merged: &MergedGateway<'_>) -> Vec<Secret> {
    let model = scope.model;
    let mut out = Vec::new();
    for (key, needs_ca) in merged.credentials() {
        if key.namespace != scope.namespace {
            continue;
        }
        if let Some(identity) = model.secrets.get(&key).and_then(|c| c.identity.as_ref()) {
            out.push(Secret {
                name: naming::credential_secret(&key.name),
                r#type: Some(secret::Type::TlsCertificate(TlsCertificate {
                    certificate_chain: inline(&identity.cert_chain),
                    private_key: inline(&identity.private_key),
                    ..Default::default()
                })),
            });
        }
        if !needs_ca {
            continue;
        }
        let ca_key = ObjectKey {
            namespace: key.namespace.clone(),
            name: format!("{}{}", key.name, naming::CREDENTIAL_CA_SUFFIX),
        };
        let ca = model
            .secrets
            .get(&ca_key)
            .and_then(|c| c.ca_cert.as_ref())
            .or_else(|| model.secrets.get(&key).and_then(|c| c.ca_cert.as_ref()));
        if let Some(ca) = ca {
            out.push(Secret {
                name: naming::credential_ca_secret(&key.name),
                r#type: Some(secret::Type::ValidationContext(
                    CertificateValidationContext {
                        trusted_ca: inline(ca),
                        ..Default::default()
                    },
                )),
            });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}
