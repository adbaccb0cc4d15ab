//! Kubernetes objects for meshd's config directory, written as `kubectl get -o yaml`
//! would print them.

/// A Service port: name (its prefix gives the protocol), port, target port.
pub struct Port<'a> {
    pub name: &'a str,
    pub port: u16,
    pub target: u16,
}

pub fn namespace(name: &str) -> String {
    format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n")
}

/// A ClusterIP Service selecting pods with label `app: <app>`.
pub fn service(name: &str, namespace: &str, cluster_ip: &str, app: &str, ports: &[Port]) -> String {
    let mut y = format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  namespace: {namespace}\n  \
         labels:\n    app: {app}\nspec:\n  type: ClusterIP\n  clusterIP: {cluster_ip}\n  \
         clusterIPs:\n  - {cluster_ip}\n  selector:\n    app: {app}\n  ports:\n"
    );
    for p in ports {
        y.push_str(&format!(
            "  - name: {}\n    port: {}\n    protocol: TCP\n    targetPort: {}\n",
            p.name, p.port, p.target
        ));
    }
    y
}

/// A running, ready Pod with label `app: <app>` and the given container ports.
pub fn pod(name: &str, namespace: &str, ip: &str, app: &str, ports: &[Port]) -> String {
    let mut y = format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: {namespace}\n  \
         labels:\n    app: {app}\nspec:\n  serviceAccountName: {app}\n  containers:\n  \
         - name: app\n    image: echo\n    ports:\n"
    );
    for p in ports {
        y.push_str(&format!(
            "    - name: {}\n      containerPort: {}\n      protocol: TCP\n",
            p.name, p.target
        ));
    }
    y.push_str(&format!(
        "status:\n  phase: Running\n  podIP: {ip}\n  podIPs:\n  - ip: {ip}\n  conditions:\n  \
         - type: Ready\n    status: \"True\"\n"
    ));
    y
}
