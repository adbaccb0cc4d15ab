#!/usr/bin/env python3
"""Loads the synthetic mesh of synthetic-mesh.py (same names, ports and pod addresses) into a
Kubernetes API server, for `meshd serve --kubernetes` and istiod alike: SERVICES Services
over NAMESPACES namespaces (ns-0..), 3 Pods each with a Ready status and a pod IP, and one
EndpointSlice per Service naming those Pods, since the test API server has no controllers to
derive them (istiod reads endpoints from EndpointSlices only; meshd prefers them too).

usage: kube-mesh.py TESTENV_DIR [SERVICES] [NAMESPACES]

TESTENV_DIR is the directory of `scripts/kube-testenv.sh start` (its kubeconfig, token and
CA). The slices carry no `managed-by` of Kubernetes' controller, so a later `kubectl patch`
of one (benches/load/compare-istiod.sh's one-endpoint change) is the only writer. Objects that exist already are left as they are,
so a second run is cheap. Plain HTTP/1.1 keep-alive connections from a few threads: about
8,000 requests for 1,000 services."""
import http.client
import json
import os
import ssl
import sys
import threading


class Api:
    def __init__(self, testenv):
        with open(os.path.join(testenv, "token")) as f:
            self.token = f.read().strip()
        with open(os.path.join(testenv, "kubeconfig")) as f:
            server = next(line.split()[1] for line in f if "server:" in line)
        self.host, self.port = server.removeprefix("https://").split(":")
        self.context = ssl.create_default_context(
            cafile=os.path.join(testenv, "pki", "ca.crt")
        )
        self.local = threading.local()

    def call(self, method, path, body=None, content_type="application/json"):
        conn = getattr(self.local, "conn", None)
        if conn is None:
            conn = http.client.HTTPSConnection(
                self.host, int(self.port), context=self.context, timeout=60
            )
            self.local.conn = conn
        headers = {"Authorization": f"Bearer {self.token}"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = content_type
        conn.request(method, path, body=data, headers=headers)
        response = conn.getresponse()
        text = response.read()
        return response.status, text

    def create(self, path, obj):
        status, text = self.call("POST", path, obj)
        if status == 409:
            return False  # already there from an earlier run
        if status >= 300:
            name = obj["metadata"]["name"]
            raise SystemExit(f"kube-mesh: POST {path} ({name}): {status} {text[:300]!r}")
        return True


def mesh(services, namespaces):
    """(namespace, service, pods) in creation order; pods as (name, ip)."""
    for i in range(services):
        ns = f"ns-{i % namespaces}"
        pods = [(f"svc-{i}-{p}", f"241.{(i >> 8) & 255}.{i & 255}.{p}") for p in range(3)]
        port_name = "tcp" if i % 4 == 3 else "http"
        service = {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": f"svc-{i}", "namespace": ns},
            "spec": {
                # In the test API server's service range (10.96.0.0/16), past its own
                # `kubernetes` Service; synthetic-mesh.py's 240.x would be refused.
                "clusterIP": f"10.96.{16 + ((i >> 8) & 255)}.{i & 255}",
                "selector": {"app": f"svc-{i}"},
                "ports": [
                    {"name": port_name, "port": 8000 + i % 50, "targetPort": 8080}
                ],
            },
        }
        yield ns, service, pods


def pod(name, ns, app):
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": {"app": app}},
        "spec": {
            "serviceAccountName": "default",
            "containers": [
                {"name": "app", "image": "app", "ports": [{"containerPort": 8080}]}
            ],
        },
    }


def pod_status(ip):
    return {
        "status": {
            "phase": "Running",
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "conditions": [{"type": "Ready", "status": "True"}],
        }
    }


def endpoint(ip, ns=None, pod_name=None):
    e = {"addresses": [ip], "conditions": {"ready": True, "serving": True}}
    if pod_name:
        e["targetRef"] = {"kind": "Pod", "namespace": ns, "name": pod_name}
    return e


def slice_for(ns, service, pods):
    name = service["metadata"]["name"]
    port = service["spec"]["ports"][0]
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": name,
            "namespace": ns,
            "labels": {
                "kubernetes.io/service-name": name,
                "endpointslice.kubernetes.io/managed-by": "kube-mesh.py",
            },
        },
        "addressType": "IPv4",
        "ports": [{"name": port["name"], "port": 8080, "protocol": "TCP"}],
        "endpoints": [endpoint(ip, ns, p) for p, ip in pods],
    }


def load(api, services, namespaces):
    for n in range(namespaces):
        api.create(
            "/api/v1/namespaces",
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": f"ns-{n}"}},
        )
    work = list(mesh(services, namespaces))
    errors = []

    def worker(part):
        try:
            for ns, service, pods in part:
                api.create(f"/api/v1/namespaces/{ns}/services", service)
                for name, ip in pods:
                    if api.create(f"/api/v1/namespaces/{ns}/pods", pod(name, ns, service["metadata"]["name"])):
                        status, text = api.call(
                            "PATCH",
                            f"/api/v1/namespaces/{ns}/pods/{name}/status",
                            pod_status(ip),
                            "application/merge-patch+json",
                        )
                        if status >= 300:
                            raise SystemExit(f"kube-mesh: status of pod {ns}/{name}: {status} {text[:300]!r}")
                api.create(
                    f"/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices",
                    slice_for(ns, service, pods),
                )
        except BaseException as e:  # noqa: BLE001 - reported by the main thread
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(work[t::4],)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise SystemExit(str(errors[0]))
    print(f"kube-mesh: {services} services, {3 * services} pods, {services} EndpointSlices "
          f"in {namespaces} namespaces", file=sys.stderr)


def main():
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    api = Api(sys.argv[1])
    services = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    namespaces = int(sys.argv[3]) if len(sys.argv) > 3 else 10
    load(api, services, namespaces)


main()
