//! DestinationRule checks, as Istio's validation does them, and conversion into the model's
//! `traffic::DestinationRule`.

use std::collections::BTreeMap;
use std::time::Duration;

use super::hosts::{check_host, resolve};
use super::invalid;
use super::istio_fields::{export_to, port, Checked};
use super::names::{is_dns_label, object_key};
use crate::duration::at_least_1ms;
use crate::mesh::traffic::{
    ClientTls, ConnectionPool, ConsistentHash, DestinationRule, HashAlgorithm, HashKey, LbPolicy,
    LoadBalancer, LocalityLb, OutlierDetection, PortPolicy, Subset, TcpKeepalive, TlsMode,
    TrafficPolicy,
};
use crate::source::objects::networking as wire;

pub fn check(dr: &wire::IstioObject<wire::DestinationRuleSpec>) -> Checked<DestinationRule> {
    let key = object_key(&dr.metadata, false)?;
    let ns = key.namespace.as_str();
    let spec = &dr.spec;
    let host = spec
        .host
        .as_deref()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| invalid("spec.host", "host is required"))?;
    check_host(host).map_err(|e| invalid("spec.host", e))?;
    let top_policy = spec
        .traffic_policy
        .as_ref()
        .map(|p| traffic_policy(p, "spec.trafficPolicy"))
        .transpose()?;
    let mut subsets: Vec<Subset> = Vec::with_capacity(spec.subsets.len());
    for (i, s) in spec.subsets.iter().enumerate() {
        let field = format!("spec.subsets[{i}]");
        let name = s
            .name
            .clone()
            .filter(|n| !n.is_empty())
            .ok_or_else(|| invalid(format!("{field}.name"), "name is required"))?;
        if !is_dns_label(&name) {
            return Err(invalid(
                format!("{field}.name"),
                format!("{name:?} is not a valid subset name (a DNS-1123 label)"),
            ));
        }
        if subsets.iter().any(|earlier| earlier.name == name) {
            return Err(invalid(
                format!("{field}.name"),
                format!("subset {name:?} is defined twice"),
            ));
        }
        subsets.push(Subset {
            name,
            labels: s.labels.clone(),
            traffic_policy: s
                .traffic_policy
                .as_ref()
                .map(|p| traffic_policy(p, &format!("{field}.trafficPolicy")))
                .transpose()?,
        });
    }
    Ok(DestinationRule {
        host: resolve(host, ns),
        traffic_policy: top_policy,
        subsets,
        export_to: export_to(&spec.export_to, ns, "spec.exportTo")?,
        workload_selector: spec.workload_selector.as_ref().map(|w| w.labels.clone()),
        key,
    })
}

fn traffic_policy(p: &wire::TrafficPolicy, field: &str) -> Checked<TrafficPolicy> {
    let mut port_level = BTreeMap::new();
    for (i, s) in p.port_level_settings.iter().enumerate() {
        let f = format!("{field}.portLevelSettings[{i}]");
        let number = port(
            s.port.as_ref().and_then(|p| p.number),
            &format!("{f}.port.number"),
        )?
        .ok_or_else(|| invalid(format!("{f}.port.number"), "port number is required"))?;
        let policy = PortPolicy {
            load_balancer: opt(&s.load_balancer, &f, "loadBalancer", load_balancer)?,
            connection_pool: opt(&s.connection_pool, &f, "connectionPool", connection_pool)?,
            outlier_detection: opt(&s.outlier_detection, &f, "outlierDetection", outlier)?,
            tls: opt(&s.tls, &f, "tls", client_tls)?,
        };
        if port_level.insert(number, policy).is_some() {
            return Err(invalid(
                format!("{f}.port.number"),
                format!("port {number} has settings twice"),
            ));
        }
    }
    let policy = TrafficPolicy {
        load_balancer: opt(&p.load_balancer, field, "loadBalancer", load_balancer)?,
        connection_pool: opt(&p.connection_pool, field, "connectionPool", connection_pool)?,
        outlier_detection: opt(&p.outlier_detection, field, "outlierDetection", outlier)?,
        tls: opt(&p.tls, field, "tls", client_tls)?,
        port_level,
    };
    if policy == TrafficPolicy::default() {
        return Err(invalid(
            field,
            "a traffic policy needs at least one setting",
        ));
    }
    Ok(policy)
}

/// Checks an optional sub-message with `check`, its field path `parent.name`.
fn opt<W, M>(
    value: &Option<W>,
    parent: &str,
    name: &str,
    check: fn(&W, &str) -> Checked<M>,
) -> Checked<Option<M>> {
    value
        .as_ref()
        .map(|v| check(v, &format!("{parent}.{name}")))
        .transpose()
}

fn count(value: Option<i64>, field: &str) -> Checked<Option<u32>> {
    value
        .map(|v| {
            u32::try_from(v)
                .ok()
                .filter(|v| *v <= i32::MAX as u32)
                .ok_or_else(|| invalid(field, format!("{v} is negative or too large")))
        })
        .transpose()
}

fn duration(value: &Option<String>, field: &str) -> Checked<Option<Duration>> {
    value
        .as_deref()
        .map(|d| at_least_1ms(d).map_err(|e| invalid(field, e)))
        .transpose()
}

fn load_balancer(lb: &wire::LoadBalancerSettings, field: &str) -> Checked<LoadBalancer> {
    let policy = match (&lb.simple, &lb.consistent_hash) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                field,
                "only one of simple or consistentHash may be set",
            ))
        }
        (Some(simple), None) => match simple.as_str() {
            "UNSPECIFIED" => LbPolicy::Default,
            "LEAST_REQUEST" | "LEAST_CONN" => LbPolicy::LeastRequest,
            "ROUND_ROBIN" => LbPolicy::RoundRobin,
            "RANDOM" => LbPolicy::Random,
            "PASSTHROUGH" => LbPolicy::Passthrough,
            other => {
                return Err(invalid(
                    format!("{field}.simple"),
                    format!(
                        "{other:?} is not one of LEAST_REQUEST, ROUND_ROBIN, RANDOM, PASSTHROUGH"
                    ),
                ))
            }
        },
        (None, Some(hash)) => {
            LbPolicy::ConsistentHash(consistent_hash(hash, &format!("{field}.consistentHash"))?)
        }
        (None, None) => LbPolicy::Default,
    };
    let locality = lb
        .locality_lb_setting
        .as_ref()
        .map(|l| locality(l, &format!("{field}.localityLbSetting")))
        .transpose()?;
    let warmup = duration(
        &lb.warmup_duration_secs,
        &format!("{field}.warmupDurationSecs"),
    )?;
    Ok(LoadBalancer {
        policy,
        locality,
        warmup,
    })
}

fn consistent_hash(h: &wire::ConsistentHash, field: &str) -> Checked<ConsistentHash> {
    let mut keys = Vec::new();
    if let Some(name) = &h.http_header_name {
        keys.push(HashKey::Header(name.to_ascii_lowercase()));
    }
    if let Some(cookie) = &h.http_cookie {
        let f = format!("{field}.httpCookie");
        let name = cookie
            .name
            .clone()
            .filter(|n| !n.is_empty())
            .ok_or_else(|| invalid(format!("{f}.name"), "cookie name is required"))?;
        keys.push(HashKey::Cookie {
            name,
            path: cookie.path.clone(),
            ttl: cookie
                .ttl
                .as_deref()
                .map(crate::duration::parse_duration)
                .transpose()
                .map_err(|e| invalid(format!("{f}.ttl"), e))?,
        });
    }
    if h.use_source_ip == Some(true) {
        keys.push(HashKey::SourceIp);
    }
    if let Some(name) = &h.http_query_parameter_name {
        keys.push(HashKey::QueryParameter(name.clone()));
    }
    if keys.len() != 1 {
        return Err(invalid(
            field,
            "exactly one of httpHeaderName, httpCookie, useSourceIp or httpQueryParameterName is required",
        ));
    }
    let algorithm = match (&h.ring_hash, &h.maglev) {
        (Some(_), Some(_)) => {
            return Err(invalid(field, "only one of ringHash or maglev may be set"))
        }
        (None, Some(m)) => {
            let table_size = m
                .table_size
                .map(|t| {
                    u64::try_from(t)
                        .ok()
                        .filter(|t| is_prime(*t))
                        .ok_or_else(|| {
                            invalid(
                                format!("{field}.maglev.tableSize"),
                                format!("{t} is not a prime number"),
                            )
                        })
                })
                .transpose()?;
            HashAlgorithm::Maglev { table_size }
        }
        (ring, None) => {
            let size = ring
                .as_ref()
                .and_then(|r| r.minimum_ring_size)
                .or(h.minimum_ring_size);
            let minimum_ring_size = size
                .map(|s| {
                    u64::try_from(s).map_err(|_| {
                        invalid(
                            format!("{field}.ringHash.minimumRingSize"),
                            format!("{s} is negative"),
                        )
                    })
                })
                .transpose()?;
            HashAlgorithm::RingHash { minimum_ring_size }
        }
    };
    Ok(ConsistentHash {
        key: keys.remove(0),
        algorithm,
    })
}

fn is_prime(n: u64) -> bool {
    n >= 2
        && (2..)
            .take_while(|d| d * d <= n)
            .all(|d| !n.is_multiple_of(d))
}

fn locality(l: &wire::LocalityLbSetting, field: &str) -> Checked<LocalityLb> {
    if !l.distribute.is_empty() && (!l.failover.is_empty() || !l.failover_priority.is_empty()) {
        return Err(invalid(
            field,
            "distribute may not be combined with failover",
        ));
    }
    let mut distribute = Vec::new();
    for (i, d) in l.distribute.iter().enumerate() {
        let f = format!("{field}.distribute[{i}]");
        let from = d
            .from
            .clone()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| invalid(format!("{f}.from"), "from is required"))?;
        let mut to = BTreeMap::new();
        for (locality, weight) in &d.to {
            match u32::try_from(*weight) {
                Ok(w @ 1..=100) => {
                    to.insert(locality.clone(), w);
                }
                _ => {
                    return Err(invalid(
                        format!("{f}.to.{locality}"),
                        format!("weight {weight} is not in 1-100"),
                    ))
                }
            }
        }
        if to.values().sum::<u32>() != 100 {
            return Err(invalid(format!("{f}.to"), "the weights must add up to 100"));
        }
        distribute.push((from, to));
    }
    let failover = l
        .failover
        .iter()
        .enumerate()
        .map(|(i, x)| match (&x.from, &x.to) {
            (Some(from), Some(to)) if from != to => Ok((from.clone(), to.clone())),
            (Some(_), Some(_)) => Err(invalid(
                format!("{field}.failover[{i}]"),
                "from and to must differ",
            )),
            _ => Err(invalid(
                format!("{field}.failover[{i}]"),
                "from and to are required",
            )),
        })
        .collect::<Checked<Vec<_>>>()?;
    Ok(LocalityLb {
        distribute,
        failover,
        failover_priority: l.failover_priority.clone(),
        enabled: l.enabled,
    })
}

fn connection_pool(p: &wire::ConnectionPoolSettings, field: &str) -> Checked<ConnectionPool> {
    let mut out = ConnectionPool::default();
    if let Some(tcp) = &p.tcp {
        let f = format!("{field}.tcp");
        out.max_connections = count(tcp.max_connections, &format!("{f}.maxConnections"))?;
        out.connect_timeout = duration(&tcp.connect_timeout, &format!("{f}.connectTimeout"))?;
        out.max_connection_duration = duration(
            &tcp.max_connection_duration,
            &format!("{f}.maxConnectionDuration"),
        )?;
        out.tcp_idle_timeout = duration(&tcp.idle_timeout, &format!("{f}.idleTimeout"))?;
        if let Some(k) = &tcp.tcp_keepalive {
            let fk = format!("{f}.tcpKeepalive");
            out.tcp_keepalive = Some(TcpKeepalive {
                probes: count(k.probes, &format!("{fk}.probes"))?,
                time: duration(&k.time, &format!("{fk}.time"))?,
                interval: duration(&k.interval, &format!("{fk}.interval"))?,
            });
        }
    }
    if let Some(http) = &p.http {
        let f = format!("{field}.http");
        out.http1_max_pending_requests = count(
            http.http1_max_pending_requests,
            &format!("{f}.http1MaxPendingRequests"),
        )?;
        out.http2_max_requests = count(http.http2_max_requests, &format!("{f}.http2MaxRequests"))?;
        out.max_requests_per_connection = count(
            http.max_requests_per_connection,
            &format!("{f}.maxRequestsPerConnection"),
        )?;
        out.max_retries = count(http.max_retries, &format!("{f}.maxRetries"))?;
        out.http_idle_timeout = duration(&http.idle_timeout, &format!("{f}.idleTimeout"))?;
        out.max_concurrent_streams = count(
            http.max_concurrent_streams,
            &format!("{f}.maxConcurrentStreams"),
        )?;
        out.use_client_protocol = http.use_client_protocol.unwrap_or(false);
        out.h2_upgrade = match http.h2_upgrade_policy.as_deref() {
            None | Some("DEFAULT") => None,
            Some("UPGRADE") => Some(true),
            Some("DO_NOT_UPGRADE") => Some(false),
            Some(other) => {
                return Err(invalid(
                    format!("{f}.h2UpgradePolicy"),
                    format!("{other:?} is not DEFAULT, UPGRADE or DO_NOT_UPGRADE"),
                ))
            }
        };
    }
    Ok(out)
}

fn outlier(o: &wire::OutlierDetection, field: &str) -> Checked<OutlierDetection> {
    let percent = |v: Option<i64>, name: &str| -> Checked<Option<u32>> {
        match v {
            None => Ok(None),
            Some(p @ 0..=100) => Ok(Some(p as u32)),
            Some(p) => Err(invalid(
                format!("{field}.{name}"),
                format!("{p} is not in 0-100"),
            )),
        }
    };
    Ok(OutlierDetection {
        // `consecutiveErrors` is Istio's deprecated name of the same setting.
        consecutive_5xx_errors: count(
            o.consecutive_5xx_errors.or(o.consecutive_errors),
            &format!("{field}.consecutive5xxErrors"),
        )?,
        consecutive_gateway_errors: count(
            o.consecutive_gateway_errors,
            &format!("{field}.consecutiveGatewayErrors"),
        )?,
        split_external_local_origin_errors: o.split_external_local_origin_errors.unwrap_or(false),
        consecutive_local_origin_failures: count(
            o.consecutive_local_origin_failures,
            &format!("{field}.consecutiveLocalOriginFailures"),
        )?,
        interval: duration(&o.interval, &format!("{field}.interval"))?,
        base_ejection_time: duration(&o.base_ejection_time, &format!("{field}.baseEjectionTime"))?,
        max_ejection_percent: percent(o.max_ejection_percent, "maxEjectionPercent")?,
        min_health_percent: percent(o.min_health_percent, "minHealthPercent")?,
    })
}

fn client_tls(t: &wire::ClientTlsSettings, field: &str) -> Checked<ClientTls> {
    let mode = match t.mode.as_deref() {
        None | Some("DISABLE") => TlsMode::Disable,
        Some("SIMPLE") => TlsMode::Simple,
        Some("MUTUAL") => TlsMode::Mutual,
        Some("ISTIO_MUTUAL") => TlsMode::IstioMutual,
        Some(other) => {
            return Err(invalid(
                format!("{field}.mode"),
                format!("{other:?} is not one of DISABLE, SIMPLE, MUTUAL, ISTIO_MUTUAL"),
            ))
        }
    };
    let has_files =
        t.client_certificate.is_some() || t.private_key.is_some() || t.ca_certificates.is_some();
    if t.credential_name.is_some() && has_files {
        return Err(invalid(
            field,
            "credentialName may not be combined with clientCertificate, privateKey or caCertificates",
        ));
    }
    if mode == TlsMode::Mutual
        && t.credential_name.is_none()
        && (t.client_certificate.is_none() || t.private_key.is_none())
    {
        return Err(invalid(
            field,
            "MUTUAL needs clientCertificate and privateKey, or credentialName",
        ));
    }
    if mode == TlsMode::IstioMutual && (has_files || t.credential_name.is_some()) {
        return Err(invalid(
            field,
            "ISTIO_MUTUAL uses the mesh certificates: no certificate files or credentialName",
        ));
    }
    Ok(ClientTls {
        mode,
        client_certificate: t.client_certificate.clone(),
        private_key: t.private_key.clone(),
        ca_certificates: t.ca_certificates.clone(),
        credential_name: t.credential_name.clone(),
        subject_alt_names: t.subject_alt_names.clone(),
        sni: t.sni.clone(),
        insecure_skip_verify: t.insecure_skip_verify.unwrap_or(false),
    })
}

#[cfg(test)]
#[path = "destination_rule_tests.rs"]
mod tests;
