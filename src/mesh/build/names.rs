//! Name checks shared by all kinds: Kubernetes' DNS-1123 labels and subdomains.

use super::{invalid, Invalid};
use crate::mesh::model::ObjectKey;
use crate::source::objects::ObjectMeta;

/// A DNS-1123 label: 1-63 lowercase letters, digits and `-`, starting and ending
/// alphanumeric. Service and namespace names must be labels since they become DNS names.
pub fn is_dns_label(name: &str) -> bool {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    !name.is_empty()
        && name.len() <= 63
        && name.chars().all(|c| alnum(c) || c == '-')
        && name.starts_with(alnum)
        && name.ends_with(alnum)
}

/// A DNS-1123 subdomain: labels joined by `.`, at most 253 characters (pod and slice names).
pub fn is_dns_subdomain(name: &str) -> bool {
    name.len() <= 253 && name.split('.').all(is_dns_label)
}

fn name<'a>(meta: &'a ObjectMeta, check: fn(&str) -> bool, what: &str) -> Result<&'a str, Invalid> {
    let name = meta.name.as_deref().unwrap_or_default();
    if name.is_empty() {
        return Err(invalid("metadata.name", "missing name"));
    }
    if !check(name) {
        return Err(invalid(
            "metadata.name",
            format!("{name:?} is not a valid name (must be a {what})"),
        ));
    }
    Ok(name)
}

pub fn namespace_name(meta: &ObjectMeta) -> Result<String, Invalid> {
    name(meta, is_dns_label, "DNS-1123 label").map(str::to_string)
}

/// Namespace and name of a namespaced object; `label` asks for a DNS label name.
pub fn object_key(meta: &ObjectMeta, label: bool) -> Result<ObjectKey, Invalid> {
    let name = if label {
        name(meta, is_dns_label, "DNS-1123 label")?
    } else {
        name(meta, is_dns_subdomain, "DNS-1123 subdomain")?
    };
    // The source fills in `default` when the namespace is absent.
    let namespace = meta.namespace.as_deref().unwrap_or("default");
    if !is_dns_label(namespace) {
        return Err(invalid(
            "metadata.namespace",
            format!("{namespace:?} is not a valid namespace name"),
        ));
    }
    Ok(ObjectKey {
        namespace: namespace.to_string(),
        name: name.to_string(),
    })
}

/// A port number in 1..=65535.
pub fn port(value: Option<i64>, field: &str) -> Result<u16, Invalid> {
    match value {
        None => Err(invalid(field, "missing port number")),
        Some(p) => u16::try_from(p)
            .ok()
            .filter(|&p| p > 0)
            .ok_or_else(|| invalid(field, format!("port {p} is outside 1-65535"))),
    }
}

/// Whether a port protocol is one meshd proxies (TCP, the default); UDP and SCTP ports are
/// skipped, as Istio does. Anything else is invalid.
pub fn is_tcp(protocol: Option<&str>, field: &str) -> Result<bool, Invalid> {
    match protocol {
        None | Some("TCP") => Ok(true),
        Some("UDP") | Some("SCTP") => Ok(false),
        Some(other) => Err(invalid(
            field,
            format!("unknown protocol {other:?} (expected TCP, UDP or SCTP)"),
        )),
    }
}
