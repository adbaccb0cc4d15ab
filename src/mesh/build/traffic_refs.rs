//! Checks across Istio objects, reported without dropping anything (a missing
//! DestinationRule may be applied a moment later, and Istio accepts these too, its analyzers
//! warn): route destinations naming a subset no applicable DestinationRule defines, and two
//! VirtualServices bound to the mesh claiming one host in one namespace.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::mesh::model::{MeshModel, ObjectKey};
use crate::mesh::traffic::select::destination_rule_for;
use crate::mesh::traffic::{Destination, DestinationRule, GatewayRef, HttpAction, VirtualService};
use crate::problem::Problem;
use crate::source::{KubeObject, SourceObject};

/// Istio's root configuration namespace (mesh-wide defaults live there).
pub const ROOT_NAMESPACE: &str = "istio-system";

pub fn report(sources: &[&SourceObject], model: &MeshModel, problems: &mut Vec<Problem>) {
    // Rules for one host in one namespace add up their subsets (as translation sees them).
    let all: Vec<Arc<DestinationRule>> = model.destination_rules.values().cloned().collect();
    let rules = crate::mesh::traffic::merge::merge_destination_rules(&all);
    let mut hosts: BTreeMap<(&str, &str), &ObjectKey> = BTreeMap::new();
    for source in sources {
        let KubeObject::VirtualService(wire) = &*source.object else {
            continue;
        };
        let key = ObjectKey {
            namespace: wire.metadata.namespace.clone().unwrap_or_default(),
            name: wire.metadata.name.clone().unwrap_or_default(),
        };
        // The model's version: the last valid one when this one was rejected.
        let Some(vs) = model.virtual_services.get(&key) else {
            continue;
        };
        let mut report = |field: String, reason: String| {
            problems.push(Problem {
                origin: source.origin.clone(),
                object: Some(source.object.object_ref()),
                field: Some(field),
                reason,
            })
        };
        for (field, destination) in subset_references(vs) {
            let service_ns = model
                .service_by_hostname(&destination.host)
                .map(|s| s.key.namespace.as_str());
            let subset = destination.subset.as_deref().unwrap_or_default();
            let rule = destination_rule_for(
                &rules,
                &destination.host,
                service_ns,
                &vs.key.namespace,
                ROOT_NAMESPACE,
            );
            let defined = rule.is_some_and(|r| r.subsets.iter().any(|s| s.name == subset));
            if !defined {
                let which = match rule {
                    Some(r) => format!("DestinationRule {} (the one that applies)", r.key),
                    None => "no DestinationRule applies to it".to_string(),
                };
                report(
                    field,
                    format!(
                        "subset {subset:?} of {} is not defined: {which}; requests routed there fail with 503",
                        destination.host
                    ),
                );
            }
        }
        if vs.gateways.contains(&GatewayRef::Mesh) {
            for (i, host) in vs.hosts.iter().enumerate() {
                match hosts.get(&(vs.key.namespace.as_str(), host.as_str())) {
                    Some(first) => report(
                        format!("spec.hosts[{i}]"),
                        format!(
                            "host {host} is also routed for the mesh by VirtualService {first}; sidecars use one of them only"
                        ),
                    ),
                    None => {
                        hosts.insert((vs.key.namespace.as_str(), host.as_str()), &vs.key);
                    }
                }
            }
        }
    }
}

/// Every destination of `vs` that names a subset, with its field path.
fn subset_references(vs: &VirtualService) -> Vec<(String, &Destination)> {
    let mut out = Vec::new();
    for (i, route) in vs.http.iter().enumerate() {
        if let HttpAction::Route(dests) = &route.action {
            for (j, d) in dests.iter().enumerate() {
                out.push((
                    format!("spec.http[{i}].route[{j}].destination.subset"),
                    &d.destination,
                ));
            }
        }
    }
    for (kind, routes) in [
        ("tls", vs.tls.iter().map(|r| &r.route).collect::<Vec<_>>()),
        ("tcp", vs.tcp.iter().map(|r| &r.route).collect()),
    ] {
        for (i, dests) in routes.into_iter().enumerate() {
            for (j, d) in dests.iter().enumerate() {
                out.push((
                    format!("spec.{kind}[{i}].route[{j}].destination.subset"),
                    &d.destination,
                ));
            }
        }
    }
    out.retain(|(_, d)| d.subset.is_some());
    out
}

#[cfg(test)]
mod tests {
    use crate::source::parse::parse_file;
    use crate::source::InputSet;

    const RULES: &str = "apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: bookinfo}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: a-reviews, namespace: bookinfo}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v1}
      weight: 50
    - destination: {host: reviews, subset: v3}
      weight: 50
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: b-reviews, namespace: bookinfo}
spec:
  hosts: [reviews.bookinfo.svc.cluster.local]
  tcp:
  - route:
    - destination: {host: ratings, subset: v1}
";

    #[test]
    fn missing_subsets_and_conflicting_hosts_are_reported_and_kept() {
        let parsed = parse_file(std::path::Path::new("traffic.yaml"), RULES);
        let input = InputSet {
            objects: parsed.objects,
            problems: parsed.problems,
        };
        let built = crate::mesh::build::build_model(&input);
        assert_eq!(built.model.virtual_services.len(), 2, "both kept");
        let messages: Vec<String> = built.problems.iter().map(|p| p.to_string()).collect();
        assert_eq!(messages.len(), 3, "{messages:#?}");
        assert!(messages[0].contains("VirtualService bookinfo/a-reviews: field spec.http[0].route[1].destination.subset: subset \"v3\" of reviews.bookinfo.svc.cluster.local is not defined: DestinationRule bookinfo/reviews"), "{}", messages[0]);
        assert!(messages[1].contains("VirtualService bookinfo/b-reviews: field spec.tcp[0].route[0].destination.subset: subset \"v1\" of ratings.bookinfo.svc.cluster.local is not defined: no DestinationRule applies"), "{}", messages[1]);
        assert!(messages[2].contains("VirtualService bookinfo/b-reviews: field spec.hosts[0]: host reviews.bookinfo.svc.cluster.local is also routed for the mesh by VirtualService bookinfo/a-reviews"), "{}", messages[2]);
    }
}
