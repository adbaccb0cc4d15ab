#!/usr/bin/env python3
"""Writes a synthetic mesh as Kubernetes YAML for `meshd serve --config-dir`: SERVICES
services spread over NAMESPACES namespaces (ns-0..), 3 ready pods each (endpoints derived
from the pods), every fourth service TCP and the rest HTTP, like benches/traffic_support.
Also writes <out>.extra-pod.yaml beside the directory: one more pod of svc-0, for a
one-endpoint change (`cp` it into the directory).

usage: synthetic-mesh.py OUT_DIR [SERVICES] [NAMESPACES]"""
import os
import sys


def pod(name, ns, app, ip):
    return f"""apiVersion: v1
kind: Pod
metadata:
  name: {name}
  namespace: {ns}
  labels:
    app: {app}
spec:
  serviceAccountName: default
  containers:
  - name: app
    ports:
    - containerPort: 8080
status:
  phase: Running
  podIP: {ip}
  conditions:
  - type: Ready
    status: "True"
"""


def main():
    out = sys.argv[1]
    services = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    namespaces = int(sys.argv[3]) if len(sys.argv) > 3 else 10
    os.makedirs(out, exist_ok=True)
    per_ns = {f"ns-{n}": [] for n in range(namespaces)}
    for ns in per_ns:
        per_ns[ns].append(
            f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n"
        )
    for i in range(services):
        ns = f"ns-{i % namespaces}"
        name = f"svc-{i}"
        port_name = "tcp" if i % 4 == 3 else "http"
        port = 8000 + i % 50
        per_ns[ns].append(
            f"""apiVersion: v1
kind: Service
metadata:
  name: {name}
  namespace: {ns}
spec:
  clusterIP: 240.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}
  selector:
    app: {name}
  ports:
  - name: {port_name}
    port: {port}
    targetPort: 8080
"""
        )
        for p in range(3):
            ip = f"241.{(i >> 8) & 255}.{i & 255}.{p}"
            per_ns[ns].append(pod(f"{name}-{p}", ns, name, ip))
    for ns, docs in per_ns.items():
        with open(os.path.join(out, f"{ns}.yaml"), "w") as f:
            f.write("---\n".join(docs))
    with open(out.rstrip("/") + ".extra-pod.yaml", "w") as f:
        f.write(pod("svc-0-extra", "ns-0", "svc-0", "242.0.0.1"))


main()
