//! Checks of the values Istio's networking kinds share, each returning the model's form:
//! string matches and RE2 regexes, ports, percentages, weights, destinations (hosts resolved
//! in the rule's namespace), CIDRs, gateway references and `exportTo`.

use std::collections::BTreeMap;

use super::hosts::{check_host, resolve};
use super::{invalid, Invalid};
use crate::mesh::model::ObjectKey;
use crate::mesh::traffic::{
    Destination, ExportTo, GatewayRef, HeaderRules, L4Match, StringMatch, WeightedDestination,
};
use crate::source::objects::networking as wire;

/// A check's result: the model's value, or why the field is invalid.
pub(crate) type Checked<T> = Result<T, Invalid>;

/// Checks each item of a list with its field path (`prefix[i]`).
pub(crate) fn each<T, U>(
    items: &[T],
    prefix: &str,
    mut check: impl FnMut(&T, &str) -> Checked<U>,
) -> Checked<Vec<U>> {
    items
        .iter()
        .enumerate()
        .map(|(i, item)| check(item, &format!("{prefix}[{i}]")))
        .collect()
}

/// The reserved gateway name for every sidecar of the mesh.
pub const MESH_GATEWAY: &str = "mesh";

/// `exportTo`: `*` (or nothing) for all, `.` for the own namespace, `~` for none, names.
pub fn export_to(list: &[String], namespace: &str, field: &str) -> Checked<ExportTo> {
    if list.is_empty() || list.iter().any(|n| n == "*") {
        if list.len() > 1 {
            return Err(invalid(field, "\"*\" must be the only entry"));
        }
        return Ok(ExportTo::All);
    }
    let mut out = Vec::new();
    for (i, n) in list.iter().enumerate() {
        match n.as_str() {
            "." => out.push(namespace.to_string()),
            "~" if list.len() == 1 => {}
            "~" => {
                return Err(invalid(
                    format!("{field}[{i}]"),
                    "\"~\" must be the only entry",
                ))
            }
            n if super::names::is_dns_label(n) => out.push(n.to_string()),
            n => {
                return Err(invalid(
                    format!("{field}[{i}]"),
                    format!("{n:?} is not a namespace"),
                ))
            }
        }
    }
    out.sort();
    out.dedup();
    Ok(ExportTo::Namespaces(out))
}

pub(crate) fn gateway_refs(
    names: &[String],
    namespace: &str,
    field: &str,
) -> Checked<Vec<GatewayRef>> {
    names
        .iter()
        .enumerate()
        .map(|(i, g)| gateway_ref(g, namespace).map_err(|e| invalid(format!("{field}[{i}]"), e)))
        .collect()
}

/// `mesh`, `ns/name`, `name` (in the rule's namespace) or the older `name.ns.svc...` form.
pub(crate) fn gateway_ref(name: &str, namespace: &str) -> Result<GatewayRef, String> {
    if name == MESH_GATEWAY {
        return Ok(GatewayRef::Mesh);
    }
    let key = match name.split_once('/') {
        Some((ns, n)) => ObjectKey {
            namespace: ns.to_string(),
            name: n.to_string(),
        },
        None => match name.split_once('.') {
            Some((n, rest)) => ObjectKey {
                namespace: rest.split('.').next().unwrap_or_default().to_string(),
                name: n.to_string(),
            },
            None => ObjectKey {
                namespace: namespace.to_string(),
                name: name.to_string(),
            },
        },
    };
    let ok = |s: &str| super::names::is_dns_subdomain(s) && !s.is_empty();
    if !ok(&key.name) || !super::names::is_dns_label(&key.namespace) {
        return Err(format!(
            "{name:?} is not a gateway reference (mesh, ns/name or name)"
        ));
    }
    Ok(GatewayRef::Gateway(key))
}

pub fn string_match(m: &wire::StringMatch, field: &str) -> Checked<StringMatch> {
    match (&m.exact, &m.prefix, &m.regex) {
        (Some(e), None, None) => Ok(StringMatch::Exact(e.clone())),
        (None, Some(p), None) => Ok(StringMatch::Prefix(p.clone())),
        (None, None, Some(r)) => {
            check_regex(r).map_err(|e| invalid(format!("{field}.regex"), e))?;
            Ok(StringMatch::Regex(r.clone()))
        }
        (None, None, None) => Err(invalid(field, "one of exact, prefix or regex is required")),
        _ => Err(invalid(
            field,
            "only one of exact, prefix or regex may be set",
        )),
    }
}

/// A regex Envoy's RE2 engine accepts. The Rust `regex` syntax is RE2's (no backreferences
/// or lookaround), so a pattern it parses is one RE2 compiles.
pub fn check_regex(pattern: &str) -> Result<(), String> {
    regex_syntax::Parser::new()
        .parse(pattern)
        .map(|_| ())
        .map_err(|e| {
            let first = e.to_string();
            let reason = first.lines().last().unwrap_or("invalid").trim().to_string();
            format!("{pattern:?} is not a valid RE2 regex: {reason}")
        })
}

pub(crate) fn port(value: Option<i64>, field: &str) -> Checked<Option<u16>> {
    match value {
        None | Some(0) => Ok(None),
        Some(p) => u16::try_from(p)
            .map(Some)
            .map_err(|_| invalid(field, format!("port {p} is not in 1-65535"))),
    }
}

pub fn destination(d: Option<&wire::Destination>, ns: &str, field: &str) -> Checked<Destination> {
    let d = d.ok_or_else(|| invalid(field, "destination is required"))?;
    let host = d
        .host
        .as_deref()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| invalid(format!("{field}.host"), "destination host is required"))?;
    check_host(host).map_err(|e| invalid(format!("{field}.host"), e))?;
    if host.starts_with('*') {
        return Err(invalid(
            format!("{field}.host"),
            "a destination host may not be a wildcard",
        ));
    }
    if let Some(subset) = &d.subset {
        if !super::names::is_dns_label(subset) {
            return Err(invalid(
                format!("{field}.subset"),
                format!("{subset:?} is not a valid subset name"),
            ));
        }
    }
    Ok(Destination {
        host: resolve(host, ns),
        subset: d.subset.clone().filter(|s| !s.is_empty()),
        port: port(
            d.port.as_ref().and_then(|p| p.number),
            &format!("{field}.port.number"),
        )?,
    })
}

pub(crate) fn weight(w: Option<i64>, field: &str) -> Checked<u32> {
    match w.unwrap_or(0) {
        w if (0..=i64::from(i32::MAX)).contains(&w) => Ok(w as u32),
        w => Err(invalid(
            field,
            format!("weight {w} is negative or too large"),
        )),
    }
}

/// Weighted destinations: a lone destination gets everything; several share by weight,
/// which may not all be zero.
pub(crate) fn weighted<T>(
    items: &[T],
    field: &str,
    mut each: impl FnMut(&T, &str) -> Checked<(Destination, Option<i64>, HeaderRules)>,
) -> Checked<Vec<WeightedDestination>> {
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let field = format!("{field}[{i}]");
        let (destination, w, headers) = each(item, &field)?;
        out.push(WeightedDestination {
            destination,
            weight: weight(w, &format!("{field}.weight"))?,
            headers,
        });
    }
    if out.len() == 1 {
        out[0].weight = 100;
    } else if !out.is_empty() && out.iter().all(|d| d.weight == 0) {
        return Err(invalid(field, "total destination weight is 0"));
    }
    Ok(out)
}

pub(crate) fn route_destinations(
    route: &[wire::RouteDestination],
    ns: &str,
    field: &str,
) -> Checked<Vec<WeightedDestination>> {
    if route.is_empty() {
        return Err(invalid(
            format!("{field}.route"),
            "at least one destination is required",
        ));
    }
    weighted(route, &format!("{field}.route"), |r, f| {
        Ok((
            destination(r.destination.as_ref(), ns, &format!("{f}.destination"))?,
            r.weight,
            HeaderRules::default(),
        ))
    })
}

pub(crate) fn l4_match(
    subnets: &[String],
    port_value: Option<i64>,
    source_labels: &BTreeMap<String, String>,
    source_namespace: &Option<String>,
    gateways: &[String],
    ns: &str,
    field: &str,
) -> Checked<L4Match> {
    for (i, s) in subnets.iter().enumerate() {
        check_cidr(s).map_err(|e| invalid(format!("{field}.destinationSubnets[{i}]"), e))?;
    }
    Ok(L4Match {
        sni_hosts: Vec::new(),
        destination_subnets: subnets.to_vec(),
        port: port(port_value, &format!("{field}.port"))?,
        source_labels: source_labels.clone(),
        source_namespace: source_namespace.clone(),
        gateways: gateway_refs(gateways, ns, &format!("{field}.gateways"))?,
    })
}

/// An IP or an `IP/prefix` CIDR.
pub fn check_cidr(text: &str) -> Result<(), String> {
    let (ip, prefix) = text.split_once('/').unwrap_or((text, ""));
    let ip: std::net::IpAddr = ip
        .parse()
        .map_err(|_| format!("{text:?} is not an IP or CIDR"))?;
    if !prefix.is_empty() {
        let max = if ip.is_ipv4() { 32 } else { 128 };
        match prefix.parse::<u8>() {
            Ok(p) if p <= max => {}
            _ => return Err(format!("{text:?} has a prefix length outside 0-{max}")),
        }
    }
    Ok(())
}

pub(crate) fn percent(p: Option<&wire::Percent>, field: &str) -> Checked<Option<f64>> {
    match p.and_then(|p| p.value) {
        None => Ok(None),
        Some(v) if (0.0..=100.0).contains(&v) => Ok(Some(v)),
        Some(v) => Err(invalid(field, format!("percentage {v} is not in 0-100"))),
    }
}
