//! Reading a sidecar's `/stats/prometheus` (the bootstrap's listener on 15090) as samples:
//! metric name, labels and value.

use std::collections::BTreeMap;

use super::envoy::http_get_in;
use super::netns::Netns;

#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// The samples Envoy exposes on 15090 inside `ns`; panics when it does not answer.
pub fn scrape(ns: &Netns) -> Vec<Sample> {
    let text = http_get_in(ns, "http://127.0.0.1:15090/stats/prometheus")
        .expect("/stats/prometheus on 15090");
    parse(&text)
}

/// Prometheus text format: `name{k="v",...} value` or `name value`; comments skipped.
pub fn parse(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(parse_line)
        .collect()
}

fn parse_line(line: &str) -> Option<Sample> {
    let (head, value) = line.rsplit_once(' ')?;
    let value = value.parse().ok()?;
    let Some((name, rest)) = head.split_once('{') else {
        return Some(Sample {
            name: head.to_string(),
            labels: BTreeMap::new(),
            value,
        });
    };
    let body = rest.strip_suffix('}')?;
    let mut labels = BTreeMap::new();
    let mut chars = body.chars().peekable();
    loop {
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            break;
        }
        if chars.next() != Some('"') {
            return None;
        }
        let mut val = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next()? {
                    'n' => val.push('\n'),
                    other => val.push(other),
                },
                '"' => break,
                c => val.push(c),
            }
        }
        labels.insert(key.trim_start_matches(',').to_string(), val);
        if chars.peek() == Some(&',') {
            chars.next();
        }
    }
    Some(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

/// The value of the sample with exactly this name and these labels.
pub fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let want: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    samples
        .iter()
        .find(|s| s.name == name && s.labels == want)
        .map(|s| s.value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_labels_and_values() {
        let text = "# TYPE envoy_cluster_upstream_rq_total counter\n\
            envoy_cluster_upstream_rq_total{cluster_name=\"outbound|9080||a.b.svc.cluster.local\"} 12\n\
            envoy_server_live 1\n\
            envoy_cluster_upstream_rq{response_code=\"200\",cluster_name=\"x\\\"y\"} 3\n";
        let samples = parse(text);
        assert_eq!(samples.len(), 3);
        assert_eq!(
            value(
                &samples,
                "envoy_cluster_upstream_rq_total",
                &[("cluster_name", "outbound|9080||a.b.svc.cluster.local")]
            ),
            Some(12.0)
        );
        assert_eq!(value(&samples, "envoy_server_live", &[]), Some(1.0));
        assert_eq!(
            value(
                &samples,
                "envoy_cluster_upstream_rq",
                &[("cluster_name", "x\"y"), ("response_code", "200")]
            ),
            Some(3.0)
        );
    }
}
