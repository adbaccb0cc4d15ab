//! HTTP routes of a VirtualService: matches, the action (weighted route, redirect, direct
//! response, delegate), rewrite, timeout, retries, fault, mirrors, CORS and header rules.

use std::collections::BTreeMap;

use super::super::invalid;
use super::super::istio_fields::{
    check_regex, destination, gateway_refs, percent, port, string_match, weighted, Checked,
};
use crate::duration::{at_least_1ms, parse_duration};
use crate::mesh::model::ObjectKey;
use crate::mesh::traffic::{
    Abort, Cors, Fault, HeaderOperations, HeaderRules, HttpAction, HttpMatch, HttpRoute, Mirror,
    Redirect, RedirectPort, Retries, Rewrite, StringMatch, UriRewrite, PRESENT_MATCH_REGEX,
};
use crate::source::objects::networking as wire;

/// Largest direct response body, as Istio's validation and meshd's route configs allow.
const MAX_DIRECT_RESPONSE_BODY_BYTES: usize = 1024 * 1024;

fn string_matches(
    map: &BTreeMap<String, wire::StringMatch>,
    field: &str,
) -> Checked<BTreeMap<String, StringMatch>> {
    map.iter()
        .map(|(k, m)| {
            let field = format!("{field}.{k}");
            if k.is_empty() {
                return Err(invalid(field, "empty name"));
            }
            Ok((k.to_ascii_lowercase(), presence_or_match(m, &field)?))
        })
        .collect()
}

/// A header or query parameter match; an empty one (`{}`) asks for presence, as in Istio.
fn presence_or_match(m: &wire::StringMatch, field: &str) -> Checked<StringMatch> {
    if m.exact.is_none() && m.prefix.is_none() && m.regex.is_none() {
        return Ok(StringMatch::Regex(PRESENT_MATCH_REGEX.to_string()));
    }
    string_match(m, field)
}

fn http_match(m: &wire::HttpMatchRequest, ns: &str, field: &str) -> Checked<HttpMatch> {
    let opt = |s: &Option<wire::StringMatch>, name: &str| {
        s.as_ref()
            .map(|s| string_match(s, &format!("{field}.{name}")))
            .transpose()
    };
    let headers = string_matches(&m.headers, &format!("{field}.headers"))?;
    let without_headers = string_matches(&m.without_headers, &format!("{field}.withoutHeaders"))?;
    Ok(HttpMatch {
        name: m.name.clone(),
        uri: opt(&m.uri, "uri")?,
        scheme: opt(&m.scheme, "scheme")?,
        method: opt(&m.method, "method")?,
        authority: opt(&m.authority, "authority")?,
        headers,
        without_headers,
        query_params: m
            .query_params
            .iter()
            .map(|(k, v)| {
                Ok((
                    k.clone(),
                    presence_or_match(v, &format!("{field}.queryParams.{k}"))?,
                ))
            })
            .collect::<Checked<_>>()?,
        port: port(m.port, &format!("{field}.port"))?,
        source_labels: m.source_labels.clone(),
        source_namespace: m.source_namespace.clone(),
        gateways: gateway_refs(&m.gateways, ns, &format!("{field}.gateways"))?,
        ignore_uri_case: m.ignore_uri_case.unwrap_or(false),
    })
}

fn header_operations(h: Option<&wire::HeaderOperations>, field: &str) -> Checked<HeaderOperations> {
    let Some(h) = h else {
        return Ok(HeaderOperations::default());
    };
    let name_ok = |n: &str| !n.is_empty() && n.bytes().all(|b| b.is_ascii_graphic() && b != b':');
    for (kind, names) in [
        ("set", h.set.keys().collect::<Vec<_>>()),
        ("add", h.add.keys().collect()),
        ("remove", h.remove.iter().collect()),
    ] {
        if let Some(bad) = names.iter().find(|n| !name_ok(n)) {
            return Err(invalid(
                format!("{field}.{kind}"),
                format!("{bad:?} is not a valid header name"),
            ));
        }
    }
    Ok(HeaderOperations {
        set: h.set.clone(),
        add: h.add.clone(),
        remove: h.remove.clone(),
    })
}

fn header_rules(h: Option<&wire::Headers>, field: &str) -> Checked<HeaderRules> {
    Ok(HeaderRules {
        request: header_operations(
            h.and_then(|h| h.request.as_ref()),
            &format!("{field}.request"),
        )?,
        response: header_operations(
            h.and_then(|h| h.response.as_ref()),
            &format!("{field}.response"),
        )?,
    })
}

pub(super) fn http_route(r: &wire::HttpRoute, ns: &str, field: &str) -> Checked<HttpRoute> {
    let matches = r
        .matches
        .iter()
        .enumerate()
        .map(|(i, m)| http_match(m, ns, &format!("{field}.match[{i}]")))
        .collect::<Checked<Vec<_>>>()?;
    let actions = [
        !r.route.is_empty(),
        r.redirect.is_some(),
        r.direct_response.is_some(),
        r.delegate.is_some(),
    ];
    match actions.iter().filter(|a| **a).count() {
        0 => {
            return Err(invalid(
                field,
                "one of route, redirect, directResponse or delegate is required",
            ))
        }
        1 => {}
        _ => {
            return Err(invalid(
                field,
                "only one of route, redirect, directResponse or delegate may be set",
            ))
        }
    }
    let action = if let Some(redirect) = &r.redirect {
        HttpAction::Redirect(http_redirect(redirect, &format!("{field}.redirect"))?)
    } else if let Some(direct) = &r.direct_response {
        let f = format!("{field}.directResponse");
        let status = match direct.status {
            Some(s @ 200..=599) => s as u16,
            Some(s) => {
                return Err(invalid(
                    format!("{f}.status"),
                    format!("status {s} is not in 200-599"),
                ))
            }
            None => return Err(invalid(format!("{f}.status"), "status is required")),
        };
        let body = match &direct.body {
            None => None,
            Some(b) => match (&b.string, &b.bytes) {
                // Envoy refuses a whole route config over this size (istiod's limit too).
                (Some(s), None) if s.len() > MAX_DIRECT_RESPONSE_BODY_BYTES => {
                    return Err(invalid(
                        format!("{f}.body.string"),
                        format!(
                            "{} bytes; a direct response body may have at most {MAX_DIRECT_RESPONSE_BODY_BYTES} (1 MiB)",
                            s.len()
                        ),
                    ))
                }
                (Some(s), None) => Some(s.clone()),
                (None, Some(_)) => {
                    return Err(invalid(
                        format!("{f}.body.bytes"),
                        "binary bodies are not supported; use body.string",
                    ))
                }
                _ => {
                    return Err(invalid(
                        format!("{f}.body"),
                        "one of string or bytes is required",
                    ))
                }
            },
        };
        HttpAction::DirectResponse { status, body }
    } else if let Some(delegate) = &r.delegate {
        let f = format!("{field}.delegate");
        let name = delegate
            .name
            .clone()
            .filter(|n| !n.is_empty())
            .ok_or_else(|| invalid(format!("{f}.name"), "name is required"))?;
        HttpAction::Delegate(ObjectKey {
            namespace: delegate
                .namespace
                .clone()
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| ns.to_string()),
            name,
        })
    } else {
        HttpAction::Route(weighted(&r.route, &format!("{field}.route"), |d, f| {
            Ok((
                destination(d.destination.as_ref(), ns, &format!("{f}.destination"))?,
                d.weight,
                header_rules(d.headers.as_ref(), &format!("{f}.headers"))?,
            ))
        })?)
    };
    let timeout = r
        .timeout
        .as_deref()
        .map(parse_duration)
        .transpose()
        .map_err(|e| invalid(format!("{field}.timeout"), e))?;
    let retries = r
        .retries
        .as_ref()
        .map(|x| -> Checked<Retries> {
            let f = format!("{field}.retries");
            let attempts = match x.attempts.unwrap_or(0) {
                a if (0..=i64::from(i32::MAX)).contains(&a) => a as u32,
                a => {
                    return Err(invalid(
                        format!("{f}.attempts"),
                        format!("attempts {a} is negative or too large"),
                    ))
                }
            };
            Ok(Retries {
                attempts,
                per_try_timeout: x
                    .per_try_timeout
                    .as_deref()
                    .map(at_least_1ms)
                    .transpose()
                    .map_err(|e| invalid(format!("{f}.perTryTimeout"), e))?,
                retry_on: x.retry_on.clone().filter(|s| !s.is_empty()),
                retry_remote_localities: x.retry_remote_localities,
            })
        })
        .transpose()?;
    let fault = r
        .fault
        .as_ref()
        .map(|x| fault(x, &format!("{field}.fault")))
        .transpose()?;
    let mut mirrors = Vec::new();
    if let Some(m) = &r.mirror {
        if !r.mirrors.is_empty() {
            return Err(invalid(
                format!("{field}.mirror"),
                "use either mirror or mirrors, not both",
            ));
        }
        mirrors.push(Mirror {
            destination: destination(Some(m), ns, &format!("{field}.mirror"))?,
            percent: percent(
                r.mirror_percentage.as_ref(),
                &format!("{field}.mirrorPercentage"),
            )?
            .unwrap_or(100.0),
        });
    }
    for (i, m) in r.mirrors.iter().enumerate() {
        let f = format!("{field}.mirrors[{i}]");
        mirrors.push(Mirror {
            destination: destination(m.destination.as_ref(), ns, &format!("{f}.destination"))?,
            percent: percent(m.percentage.as_ref(), &format!("{f}.percentage"))?.unwrap_or(100.0),
        });
    }
    let rewrite = r
        .rewrite
        .as_ref()
        .map(|x| rewrite(x, &format!("{field}.rewrite")))
        .transpose()?;
    let cors = r
        .cors_policy
        .as_ref()
        .map(|c| cors(c, &format!("{field}.corsPolicy")))
        .transpose()?;
    Ok(HttpRoute {
        name: r.name.clone(),
        matches,
        action,
        rewrite,
        timeout,
        retries,
        fault,
        mirrors,
        cors,
        headers: header_rules(r.headers.as_ref(), &format!("{field}.headers"))?,
    })
}

fn http_redirect(r: &wire::HttpRedirect, field: &str) -> Checked<Redirect> {
    let code = match r.redirect_code {
        None => 301,
        Some(c @ (301 | 302 | 303 | 307 | 308)) => c as u16,
        Some(c) => {
            return Err(invalid(
                format!("{field}.redirectCode"),
                format!("{c} is not a redirect code (301, 302, 303, 307, 308)"),
            ))
        }
    };
    let port = match (&r.port, r.derive_port.as_deref()) {
        (Some(_), Some(_)) => {
            return Err(invalid(field, "only one of port or derivePort may be set"))
        }
        (Some(p), None) => Some(RedirectPort::Number(
            port(Some(*p), &format!("{field}.port"))?
                .ok_or_else(|| invalid(format!("{field}.port"), "port 0 is not a port"))?,
        )),
        (None, Some("FROM_PROTOCOL_DEFAULT")) => Some(RedirectPort::FromProtocolDefault),
        (None, Some("FROM_REQUEST_PORT")) => Some(RedirectPort::FromRequestPort),
        (None, Some(other)) => {
            return Err(invalid(
                format!("{field}.derivePort"),
                format!("{other:?} is not FROM_PROTOCOL_DEFAULT or FROM_REQUEST_PORT"),
            ))
        }
        (None, None) => None,
    };
    if r.uri.is_none() && r.authority.is_none() && port.is_none() && r.scheme.is_none() {
        return Err(invalid(
            field,
            "a redirect needs at least one of uri, authority, port or scheme",
        ));
    }
    Ok(Redirect {
        uri: r.uri.clone(),
        authority: r.authority.clone(),
        port,
        scheme: r.scheme.clone(),
        code,
    })
}

fn rewrite(r: &wire::HttpRewrite, field: &str) -> Checked<Rewrite> {
    let uri = match (&r.uri, &r.uri_regex_rewrite) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                field,
                "only one of uri or uriRegexRewrite may be set",
            ))
        }
        (Some(u), None) => Some(UriRewrite::Prefix(u.clone())),
        (None, Some(x)) => {
            let f = format!("{field}.uriRegexRewrite");
            let pattern = x
                .pattern
                .clone()
                .ok_or_else(|| invalid(format!("{f}.match"), "match is required"))?;
            check_regex(&pattern).map_err(|e| invalid(format!("{f}.match"), e))?;
            Some(UriRewrite::Regex {
                pattern,
                substitution: x.rewrite.clone().unwrap_or_default(),
            })
        }
        (None, None) => None,
    };
    if uri.is_none() && r.authority.is_none() {
        return Err(invalid(
            field,
            "a rewrite needs uri, uriRegexRewrite or authority",
        ));
    }
    Ok(Rewrite {
        uri,
        authority: r.authority.clone(),
    })
}

fn fault(f: &wire::HttpFaultInjection, field: &str) -> Checked<Fault> {
    let delay = match &f.delay {
        None => None,
        Some(d) => {
            let ff = format!("{field}.delay");
            let fixed = d
                .fixed_delay
                .as_deref()
                .ok_or_else(|| invalid(format!("{ff}.fixedDelay"), "fixedDelay is required"))
                .and_then(|t| {
                    at_least_1ms(t).map_err(|e| invalid(format!("{ff}.fixedDelay"), e))
                })?;
            let pct = match (
                percent(d.percentage.as_ref(), &format!("{ff}.percentage"))?,
                d.percent,
            ) {
                (Some(p), _) => p,
                (None, Some(p)) if (0..=100).contains(&p) => p as f64,
                (None, Some(p)) => {
                    return Err(invalid(
                        format!("{ff}.percent"),
                        format!("percentage {p} is not in 0-100"),
                    ))
                }
                // istiod sends the unset deprecated integer (0): no request is delayed.
                (None, None) => 0.0,
            };
            Some((fixed, pct))
        }
    };
    let abort = match &f.abort {
        None => None,
        Some(a) => {
            let fa = format!("{field}.abort");
            let kind = match (a.http_status, &a.grpc_status) {
                (Some(s @ 200..=599), None) => Abort::Http(s as u16),
                (Some(s), None) => {
                    return Err(invalid(
                        format!("{fa}.httpStatus"),
                        format!("status {s} is not in 200-599"),
                    ))
                }
                (None, Some(g)) => Abort::Grpc(g.clone()),
                (None, None) => {
                    return Err(invalid(fa, "one of httpStatus or grpcStatus is required"))
                }
                _ => {
                    return Err(invalid(
                        fa,
                        "only one of httpStatus or grpcStatus may be set",
                    ))
                }
            };
            Some((
                kind,
                // Istio: without a percentage no request is aborted (Envoy reads an unset
                // percentage as 0).
                percent(a.percentage.as_ref(), &format!("{fa}.percentage"))?.unwrap_or(0.0),
            ))
        }
    };
    if delay.is_none() && abort.is_none() {
        return Err(invalid(field, "a fault needs a delay or an abort"));
    }
    Ok(Fault { delay, abort })
}

fn cors(c: &wire::CorsPolicy, field: &str) -> Checked<Cors> {
    let forward_unmatched_preflights = match c.unmatched_preflights.as_deref() {
        None | Some("UNSPECIFIED") | Some("FORWARD") => true,
        Some("IGNORE") => false,
        Some(other) => {
            return Err(invalid(
                format!("{field}.unmatchedPreflights"),
                format!("{other:?} is not FORWARD or IGNORE"),
            ))
        }
    };
    Ok(Cors {
        allow_origins: c
            .allow_origins
            .iter()
            .enumerate()
            .map(|(i, m)| string_match(m, &format!("{field}.allowOrigins[{i}]")))
            .collect::<Checked<_>>()?,
        allow_methods: c.allow_methods.clone(),
        allow_headers: c.allow_headers.clone(),
        expose_headers: c.expose_headers.clone(),
        max_age: c
            .max_age
            .as_deref()
            .map(parse_duration)
            .transpose()
            .map_err(|e| invalid(format!("{field}.maxAge"), e))?,
        allow_credentials: c.allow_credentials,
        forward_unmatched_preflights,
    })
}
