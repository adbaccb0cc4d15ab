use std::path::Path;

use super::*;
use crate::source::objects::IntOrString;
use crate::source::KubeObject;

fn parse(name: &str, text: &str) -> Parsed {
    parse_file(Path::new(name), text)
}

fn names(parsed: &Parsed) -> Vec<String> {
    parsed
        .objects
        .iter()
        .map(|o| o.object.object_ref().to_string())
        .collect()
}

const SERVICE: &str = "apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  ports:
  - name: http
    port: 80
    targetPort: http
";

#[test]
fn reads_multi_document_yaml_with_origins() {
    let text = format!(
        "# leading comment\n---\n{SERVICE}---\n\n---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n---\n"
    );
    let parsed = parse("a.yaml", &text);
    assert!(parsed.problems.is_empty(), "{:?}", parsed.problems);
    assert_eq!(names(&parsed), ["Service default/web", "Namespace shop"]);
    let service = &parsed.objects[0];
    assert_eq!(service.origin.document, 0);
    assert_eq!(service.origin.line, Some(3));
    let ns = &parsed.objects[1];
    assert_eq!(ns.origin.document, 2);
    assert_eq!(ns.origin.line, Some(15));
    let KubeObject::Service(svc) = &*service.object else {
        panic!("not a service")
    };
    assert_eq!(svc.metadata.namespace.as_deref(), Some("default"));
    assert_eq!(
        svc.spec.ports[0].target_port,
        Some(IntOrString::String("http".into()))
    );
}

#[test]
fn a_broken_document_does_not_hide_the_others() {
    let text = format!(
        "{SERVICE}---\nkind: [oops\n---\n{}",
        SERVICE.replace("web", "api")
    );
    let parsed = parse("b.yaml", &text);
    assert_eq!(
        names(&parsed),
        ["Service default/web", "Service default/api"]
    );
    assert_eq!(parsed.problems.len(), 1);
    let p = &parsed.problems[0];
    assert_eq!(p.origin.document, 1);
    // The unclosed `[` of `kind: [oops`, on the line after the separator.
    assert_eq!((p.origin.line, p.origin.column), (Some(11), Some(7)), "{p}");
    assert!(p.reason.starts_with("not valid yaml"), "{p}");
}

#[test]
fn type_errors_carry_field_path_and_absolute_line() {
    let text = format!(
        "{SERVICE}---\napiVersion: v1\nkind: Service\nmetadata:\n  name: bad\n  namespace: shop\nspec:\n  ports:\n  - port: 80\n  - port: eighty\n"
    );
    let parsed = parse("c.yaml", &text);
    assert_eq!(names(&parsed), ["Service default/web"]);
    let p = &parsed.problems[0];
    assert_eq!(p.field.as_deref(), Some("spec.ports[1].port"));
    assert_eq!(p.origin.document, 1);
    assert_eq!(p.origin.line, Some(19));
    assert_eq!(p.object.as_ref().unwrap().to_string(), "Service shop/bad");
}

#[test]
fn reads_kind_list_items() {
    let text = "apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Pod
  metadata:
    name: a
- apiVersion: v1
  kind: ConfigMap
  metadata:
    name: skipped
- apiVersion: v1
  kind: Pod
  metadata:
    name: b
  spec:
    containers:
    - name: c
      ports:
      - containerPort: many
";
    let parsed = parse("list.yml", text);
    assert_eq!(names(&parsed), ["Pod default/a"]);
    assert_eq!(parsed.objects[0].origin.line, Some(4));
    let p = &parsed.problems[0];
    assert_eq!(
        p.field.as_deref(),
        Some("items[2].spec.containers[0].ports[0].containerPort")
    );
    assert_eq!(p.origin.line, Some(12));
}

#[test]
fn reads_json_objects_and_lists() {
    let single = r#"{"apiVersion": "v1", "kind": "Service",
  "metadata": {"name": "s", "namespace": "n"},
  "spec": {"ports": [{"port": "x"}]}}"#;
    let parsed = parse("s.json", single);
    let p = &parsed.problems[0];
    assert_eq!(p.field.as_deref(), Some("spec.ports[0].port"));
    assert_eq!(p.origin.line, Some(3));

    let list = r#"{"kind": "List", "apiVersion": "v1", "items": [
  {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n"}},
  {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": {"name": "e"}}
]}"#;
    let parsed = parse("l.JSON", list);
    assert!(parsed.problems.is_empty(), "{:?}", parsed.problems);
    assert_eq!(names(&parsed), ["Namespace n", "EndpointSlice default/e"]);
    assert_eq!(parsed.objects[1].origin.line, Some(3));

    let parsed = parse("bad.json", "{\n  \"kind\": \n");
    assert_eq!(parsed.problems[0].origin.line, Some(3));
    assert!(parsed.problems[0].reason.starts_with("not valid json"));
}

#[test]
fn unknown_kinds_and_empty_documents_are_skipped() {
    let text = "---\n# nothing\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: v\n---\napiVersion: serving.knative.dev/v1\nkind: Service\nmetadata:\n  name: k\n";
    let parsed = parse("u.yaml", text);
    assert!(parsed.objects.is_empty());
    assert!(parsed.problems.is_empty(), "{:?}", parsed.problems);
}

#[test]
fn missing_kind_and_scalars_are_problems() {
    let parsed = parse(
        "m.yaml",
        "metadata:\n  name: x\n---\njust a string\n---\nkind: List\nitems: 3\n",
    );
    assert_eq!(parsed.problems.len(), 3, "{:?}", parsed.problems);
    assert_eq!(
        parsed.problems[1].reason,
        "expected a kubernetes object (a mapping)"
    );
    assert_eq!(parsed.problems[2].field.as_deref(), Some("items"));
    assert_eq!(parsed.problems[2].origin.line, Some(7));
    assert_eq!(parsed.problems[0].field.as_deref(), Some("kind"));
    assert_eq!(parsed.problems[1].origin.document, 1);
}
