#!/usr/bin/env bash
# istiod beside meshd on one mesh, one API server and one load generator (issue 9, item 6).
#
#   benches/load/compare-istiod.sh [PROXIES] [DELTA_FRACTION]      (defaults: 1000, 0)
#
# One run: starts etcd + kube-apiserver (scripts/kube-testenv.sh, without meshd's minimal
# CRDs) and installs Istio's own CRDs from the pinned istio.io/istio module, loads the
# synthetic mesh (benches/load/kube-mesh.py: SERVICES services over 10 namespaces, 3 Pods
# and one EndpointSlice each), then for each server in turn (istiod first, then meshd
# `--kubernetes`) starts it on free loopback ports, waits until it is ready, and runs
# meshd-load against its plaintext ADS port with the same options: PROXIES simulated
# sidecars (Istio node ids, one source address each), and as the change one endpoint added
# to svc-0's EndpointSlice with `kubectl patch`. Each server is stopped before the next
# starts. Prints both reports and the ratios istiod / meshd; everything is kept in WORK.
#
# Environment: WORK (default /tmp/compare-istiod; emptied first), SERVICES (1000),
# ONLY (istiod or meshd: run one server), ISTIOD_ENV (extra VAR=value words for istiod),
# MESHD_ARGS (extra words for meshd serve), LOAD_ARGS (extra words for meshd-load),
# SYNC_TIMEOUT (600s), CHANGE_TIMEOUT (120s).
# Builds what is missing first: istiod (scripts/build-istiod.sh, long when cold), the test
# API server, and `cargo build --release --bin meshd --bin meshd-load`.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PROXIES=${1:-1000}
DELTA=${2:-0}
SERVICES=${SERVICES:-1000}
WORK=${WORK:-/tmp/compare-istiod}
SYNC_TIMEOUT=${SYNC_TIMEOUT:-600s}
CHANGE_TIMEOUT=${CHANGE_TIMEOUT:-120s}

log() { echo "compare-istiod: $*" >&2; }
die() { log "$*"; exit 1; }

PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    if [[ -d $WORK/kube ]]; then
        "$ROOT/scripts/kube-testenv.sh" stop "$WORK/kube" >/dev/null 2>&1 || true
    fi
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Polls URL until it answers 200, for at most $2 seconds, while pid $3 lives.
wait_ready() {
    local url=$1 limit=$2 pid=$3 start=$SECONDS
    until curl -fsS -o /dev/null "$url" 2>/dev/null; do
        kill -0 "$pid" 2>/dev/null || return 1
        ((SECONDS - start < limit)) || return 1
        sleep 0.5
    done
}

stop_server() { # pid
    kill -TERM "$1" 2>/dev/null || true
    local _
    for _ in $(seq 1 40); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.5; done
    kill -KILL "$1" 2>/dev/null || true
}

# --- builds ---------------------------------------------------------------------------
ISTIOD=$("$ROOT/scripts/build-istiod.sh")
ISTIO_CRDS=$("$ROOT/scripts/build-istiod.sh" dir)/crd-all.gen.yaml
KUBE_BIN=$("$ROOT/scripts/kube-testenv.sh" build)
(cd "$ROOT" && cargo build --release --bin meshd --bin meshd-load >&2)
TARGET=$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
MESHD=$TARGET/release/meshd
LOAD=$TARGET/release/meshd-load

# --- the API server and the mesh ------------------------------------------------------
rm -rf "$WORK"
mkdir -p "$WORK"
"$ROOT/scripts/kube-testenv.sh" start "$WORK/kube" --no-crds >/dev/null
export KUBECONFIG=$WORK/kube/kubeconfig
kubectl() { "$KUBE_BIN/kubectl" "$@"; }
# Server-side: some of Istio's CRDs are too large for client-side apply's annotation.
kubectl apply --server-side -f "$ISTIO_CRDS" >/dev/null
kubectl wait --for=condition=Established --timeout=120s crd --all >/dev/null
kubectl create namespace istio-system >/dev/null
start=$SECONDS
python3 "$ROOT/benches/load/kube-mesh.py" "$WORK/kube" "$SERVICES" 10
log "mesh loaded in $((SECONDS - start))s"

# One more endpoint for svc-0 (ns-0) per run, so each server sees a real change.
change_cmd() { # n
    local patch
    patch='[{"op":"add","path":"/endpoints/-","value":{"addresses":["242.0.0.'$1'"],"conditions":{"ready":true}}}]'
    printf '%q ' "$KUBE_BIN/kubectl" --kubeconfig "$KUBECONFIG" -n ns-0 patch endpointslice svc-0 \
        --type=json -p "$patch"
}

run_load() { # name xds-port pid change-number
    log "$1: meshd-load, $PROXIES proxies (delta fraction $DELTA)"
    # shellcheck disable=SC2086
    "$LOAD" --xds-addr "127.0.0.1:$2" --proxies "$PROXIES" --delta-fraction "$DELTA" \
        --server-pid "$3" --source-ip-base 127.1.0.0 --sync-timeout "$SYNC_TIMEOUT" \
        --change-cmd "$(change_cmd "$4")" --change-timeout "$CHANGE_TIMEOUT" ${LOAD_ARGS:-} \
        | tee "$WORK/$1.out"
    tail -n 1 "$WORK/$1.out" >"$WORK/$1.json"
}

# --- istiod ---------------------------------------------------------------------------
run_istiod() {
    local grpc http mon secure https
    grpc=$(free_port) http=$(free_port) mon=$(free_port) secure=$(free_port) https=$(free_port)
    mkdir -p "$WORK/istiod"
    # Defaults except what a bare API server cannot give: no webhook configurations to
    # patch, no injector templates, and istiod's identity as a Pod would get it by env.
    # shellcheck disable=SC2086
    (cd "$WORK/istiod" && exec env POD_NAMESPACE=istio-system POD_NAME=istiod-bench \
        REVISION=default KUBECONFIG="$KUBECONFIG" \
        INJECTION_WEBHOOK_CONFIG_NAME= VALIDATION_WEBHOOK_CONFIG_NAME= \
        ${ISTIOD_ENV:-} \
        "$ISTIOD" discovery --kubeconfig "$KUBECONFIG" --registries Kubernetes \
        --grpcAddr "127.0.0.1:$grpc" --httpAddr "127.0.0.1:$http" \
        --monitoringAddr "127.0.0.1:$mon" --secureGRPCAddr "127.0.0.1:$secure" \
        --httpsAddr "127.0.0.1:$https" --log_output_level default:info \
        >"$WORK/istiod.log" 2>&1) &
    local pid=$!
    PIDS+=("$pid")
    start=$SECONDS
    wait_ready "http://127.0.0.1:$http/ready" 300 "$pid" \
        || { tail -n 30 "$WORK/istiod.log" >&2; die "istiod did not become ready (log: $WORK/istiod.log)"; }
    log "istiod ready in $((SECONDS - start))s (pid $pid, ADS 127.0.0.1:$grpc)"
    sleep 5 # let start-up work (CA, namespace ConfigMaps) settle before the idle reading
    run_load istiod "$grpc" "$pid" 1
    curl -fsS "http://127.0.0.1:$mon/metrics" >"$WORK/istiod.metrics" 2>/dev/null || true
    stop_server "$pid"
}

# --- meshd ----------------------------------------------------------------------------
run_meshd() {
    local xds admin secure
    # meshd starts as on a fresh cluster and makes its own root, as in the recorded runs
    # (it now reads istiod's RSA root in istio-ca-secret too; see BENCHMARKS.md).
    kubectl -n istio-system delete secret istio-ca-secret --ignore-not-found >&2
    xds=$(free_port) admin=$(free_port) secure=$(free_port)
    # shellcheck disable=SC2086
    "$MESHD" serve --kubernetes --kubeconfig "$KUBECONFIG" --xds-addr "127.0.0.1:$xds" \
        --admin-addr "127.0.0.1:$admin" --secure-xds-addr "127.0.0.1:$secure" ${MESHD_ARGS:-} \
        >"$WORK/meshd.log" 2>&1 &
    local pid=$!
    PIDS+=("$pid")
    start=$SECONDS
    wait_ready "http://127.0.0.1:$admin/ready" 300 "$pid" \
        || { tail -n 30 "$WORK/meshd.log" >&2; die "meshd did not become ready (log: $WORK/meshd.log)"; }
    log "meshd ready in $((SECONDS - start))s (pid $pid, ADS 127.0.0.1:$xds)"
    sleep 5
    run_load meshd "$xds" "$pid" 2
    curl -fsS "http://127.0.0.1:$admin/metrics" >"$WORK/meshd.metrics" 2>/dev/null || true
    stop_server "$pid"
}

uptime | tee "$WORK/uptime-start"
[[ ${ONLY:-istiod} == istiod ]] && run_istiod
[[ ${ONLY:-meshd} == meshd ]] && run_meshd
uptime | tee "$WORK/uptime-end"
python3 "$ROOT/benches/load/compare-report.py" "$WORK" "$PROXIES"
