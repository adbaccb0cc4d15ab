//! Host names in Istio rules: validity (DNS names, an optional leading `*` label, IPs) and
//! resolution of short names against the rule's namespace, as Istio does: a name without a
//! dot is `name.<namespace>.svc.<domain>`; a name with a dot is taken as written.

use std::net::IpAddr;

use crate::mesh::model::DEFAULT_DOMAIN_SUFFIX;

/// Checks a host as Istio's validation does: a DNS name of lowercase-insensitive labels,
/// where only the first label may be `*` (a wildcard), or an IP address.
pub fn check_host(host: &str) -> Result<(), String> {
    if host == "*" || host.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    if host.is_empty() || host.len() > 255 {
        return Err(format!("{host:?} is not a valid host name"));
    }
    let labels: Vec<&str> = host.strip_suffix('.').unwrap_or(host).split('.').collect();
    for (i, label) in labels.iter().enumerate() {
        if i == 0 && *label == "*" {
            continue;
        }
        let ok = !label.is_empty()
            && label.len() <= 63
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !ok {
            let why = if label.contains('*') {
                "a wildcard may only be the whole first label"
            } else {
                "labels are letters, digits and '-'"
            };
            return Err(format!("{host:?} is not a valid host name ({why})"));
        }
    }
    Ok(())
}

/// The fully qualified form of `host` written in `namespace`.
pub fn resolve(host: &str, namespace: &str) -> String {
    if host.contains('.') || host == "*" || host.parse::<IpAddr>().is_ok() {
        host.to_ascii_lowercase()
    } else {
        format!(
            "{}.{namespace}.svc.{DEFAULT_DOMAIN_SUFFIX}",
            host.to_ascii_lowercase()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_short_names_in_the_namespace() {
        assert_eq!(
            resolve("reviews", "bookinfo"),
            "reviews.bookinfo.svc.cluster.local"
        );
        assert_eq!(resolve("httpbin.org", "bookinfo"), "httpbin.org");
        assert_eq!(resolve("*.example.com", "x"), "*.example.com");
        assert_eq!(resolve("*", "x"), "*");
        assert_eq!(resolve("10.0.0.1", "x"), "10.0.0.1");
    }

    #[test]
    fn checks_hosts() {
        for ok in ["reviews", "*.example.com", "*", "a-b.c", "10.1.2.3", "::1"] {
            assert_eq!(check_host(ok), Ok(()), "{ok}");
        }
        for bad in ["", "a..b", "foo.*.com", "-a.b", "a_b", "ex ample"] {
            assert!(check_host(bad).is_err(), "{bad}");
        }
    }
}
