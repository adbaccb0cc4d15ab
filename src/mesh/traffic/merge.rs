//! Several DestinationRules for one host in one namespace act as one, as istiod merges
//! them: taken in name order (istiod takes them by creation time, which files do not
//! have), the first rule's traffic policy and settings stay, later rules add the subsets
//! the first does not define, and give their traffic policy only when the first has none.
//! Rules merge only when neither has a workload selector and their `exportTo` are the
//! same; others stay separate rules, as in istiod.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::DestinationRule;

/// `rules` sorted by namespace and name, with mergeable rules merged into the first of
/// them (which keeps its place and key).
pub fn merge_destination_rules(rules: &[Arc<DestinationRule>]) -> Vec<Arc<DestinationRule>> {
    let mut out: Vec<Arc<DestinationRule>> = Vec::with_capacity(rules.len());
    for rule in rules {
        let target = out.iter_mut().find(|r| {
            r.key.namespace == rule.key.namespace
                && r.host == rule.host
                && r.workload_selector.is_none()
                && rule.workload_selector.is_none()
                && r.export_to == rule.export_to
        });
        match target {
            None => out.push(rule.clone()),
            Some(first) => {
                let merged = Arc::make_mut(first);
                let names: BTreeSet<String> =
                    merged.subsets.iter().map(|s| s.name.clone()).collect();
                merged.subsets.extend(
                    rule.subsets
                        .iter()
                        .filter(|s| !names.contains(&s.name))
                        .cloned(),
                );
                if merged.traffic_policy.is_none() {
                    merged.traffic_policy = rule.traffic_policy.clone();
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::traffic::{ExportTo, Subset, TrafficPolicy};
    use crate::mesh::ObjectKey;

    fn rule(
        ns: &str,
        name: &str,
        host: &str,
        subsets: &[&str],
        policy: bool,
    ) -> Arc<DestinationRule> {
        Arc::new(DestinationRule {
            key: ObjectKey {
                namespace: ns.into(),
                name: name.into(),
            },
            host: host.into(),
            traffic_policy: policy.then(TrafficPolicy::default),
            subsets: subsets
                .iter()
                .map(|s| Subset {
                    name: s.to_string(),
                    labels: Default::default(),
                    traffic_policy: None,
                })
                .collect(),
            export_to: ExportTo::All,
            workload_selector: None,
        })
    }

    #[test]
    fn rules_for_one_host_in_one_namespace_add_up_their_subsets() {
        let rules = vec![
            rule("a", "first", "web", &["v1"], false),
            rule("a", "second", "web", &["v1", "v2"], true),
            rule("a", "third", "other", &["x"], false),
            rule("b", "fourth", "web", &["v3"], false),
        ];
        let merged = merge_destination_rules(&rules);
        assert_eq!(merged.len(), 3);
        assert_eq!(merged[0].key.name, "first");
        let subsets: Vec<&str> = merged[0].subsets.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(subsets, ["v1", "v2"]);
        assert!(merged[0].traffic_policy.is_some(), "taken from the second");
        assert_eq!(merged[1].key.name, "third");
        assert_eq!(merged[2].subsets[0].name, "v3");
        // The inputs are untouched.
        assert_eq!(rules[0].subsets.len(), 1);
    }

    #[test]
    fn different_export_to_stays_separate() {
        let mut private = (*rule("a", "second", "web", &["v2"], false)).clone();
        private.export_to = ExportTo::Namespaces(vec!["a".into()]);
        let rules = vec![rule("a", "first", "web", &["v1"], false), Arc::new(private)];
        assert_eq!(merge_destination_rules(&rules).len(), 2);
    }
}
