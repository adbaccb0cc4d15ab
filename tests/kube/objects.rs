//! Objects the kube tests apply with kubectl, as YAML.

/// Istio's VirtualService CRD reduced to what the API server needs, served at v1.
pub const VIRTUAL_SERVICE_CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: virtualservices.networking.istio.io
spec:
  group: networking.istio.io
  scope: Namespaced
  names:
    kind: VirtualService
    listKind: VirtualServiceList
    plural: virtualservices
    singular: virtualservice
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
"#;

pub fn namespace(name: &str) -> String {
    format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n")
}

/// A Service with one HTTP port, selecting pods labelled `app: <name>`.
pub fn service(name: &str, namespace: &str, port: u16) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  namespace: {namespace}\n\
         spec:\n  selector:\n    app: {name}\n  ports:\n  - name: http\n    port: {port}\n"
    )
}

/// An EndpointSlice of Service `service` with one ready endpoint at `ip`.
pub fn endpoint_slice(name: &str, namespace: &str, service: &str, port: u16, ip: &str) -> String {
    format!(
        "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: {name}\n  \
         namespace: {namespace}\n  labels:\n    kubernetes.io/service-name: {service}\n\
         addressType: IPv4\nports:\n- name: http\n  port: {port}\n  protocol: TCP\n\
         endpoints:\n- addresses: [\"{ip}\"]\n  conditions:\n    ready: true\n"
    )
}

/// A VirtualService for `host` adding a response header naming `tag` (routes change with it).
pub fn virtual_service(name: &str, namespace: &str, host: &str, tag: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: {name}\n  \
         namespace: {namespace}\nspec:\n  hosts: [{host}]\n  http:\n  - headers:\n      \
         response:\n        set:\n          x-tag: {tag}\n    route:\n    - destination:\n        \
         host: {host}\n"
    )
}
