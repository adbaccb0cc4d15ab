#!/usr/bin/env bash
# A local Kubernetes API server for tests and for trying `meshd serve --kubernetes`
# without a cluster: etcd + kube-apiserver on loopback, no nodes, no controllers.
#
#   scripts/kube-testenv.sh build              build etcd, kube-apiserver, kubectl (once; cached)
#   scripts/kube-testenv.sh bin                print the directory holding the binaries
#   scripts/kube-testenv.sh start DIR [--no-crds]   start both, wait for /readyz, write
#                                              DIR/kubeconfig, apply the Istio CRDs of testenv/crds
#   scripts/kube-testenv.sh stop DIR           stop both (data stays in DIR)
#   scripts/kube-testenv.sh restart-apiserver DIR   stop and start kube-apiserver only
#   scripts/kube-testenv.sh status DIR         exit 0 when both processes run
#
# The binaries are built from the Go module in testenv/kube (versions pinned there) into
# ${MESHD_CACHE:-/var/cache/meshd}/kube-<versions>-<hash>/bin, outside the checkout, and
# reused while go.mod, go.sum and this script's build settings are unchanged.
# Extra flags: KUBE_TESTENV_APISERVER_ARGS and KUBE_TESTENV_ETCD_ARGS (word-split).
# KUBE_TESTENV_NO_CRDS=1 is the same as --no-crds.
# See testenv/README.md.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
MODDIR=$ROOT/testenv/kube
CACHE=${MESHD_CACHE:-/var/cache/meshd}
KUBE_VERSION=v1.37.2   # must match k8s.io/kubernetes in testenv/kube/go.mod
ETCD_VERSION=v3.7.3    # must match go.etcd.io/etcd/server/v3 in testenv/kube/go.mod

die() { echo "kube-testenv: $*" >&2; exit 1; }
log() { echo "kube-testenv: $*" >&2; }

# Linker flags: the version strings a release build stamps, so `kubectl version` and the
# server's /version report the real release instead of v0.0.0-master.
ldflags() {
    local minor=${KUBE_VERSION#v1.}; minor=${minor%%.*}
    local v
    for v in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
        printf -- '-X %s.gitVersion=%s -X %s.gitMajor=1 -X %s.gitMinor=%s -X %s.gitTreeState=clean ' \
            "$v" "$KUBE_VERSION" "$v" "$v" "$minor" "$v"
    done
    printf -- '-s -w'
}

bin_dir() {
    grep -q "k8s.io/kubernetes $KUBE_VERSION" "$MODDIR/go.mod" || die "KUBE_VERSION differs from testenv/kube/go.mod"
    grep -q "go.etcd.io/etcd/server/v3 $ETCD_VERSION" "$MODDIR/go.mod" || die "ETCD_VERSION differs from testenv/kube/go.mod"
    local hash
    hash=$( { cat "$MODDIR/go.mod" "$MODDIR/go.sum" "$MODDIR/etcd/main.go"; ldflags; go env GOVERSION; } \
        | sha256sum | cut -c1-12)
    echo "$CACHE/kube-$KUBE_VERSION-etcd-$ETCD_VERSION-$hash/bin"
}

cmd_build() {
    local bin; bin=$(bin_dir)
    if [[ -x $bin/kube-apiserver && -x $bin/etcd && -x $bin/kubectl ]]; then
        echo "$bin"; return
    fi
    command -v go >/dev/null || die "go not found (needs Go >= 1.26)"
    mkdir -p "$(dirname "$bin")"
    # One build at a time per cache entry; a second caller waits and then reuses it.
    exec 9>"$(dirname "$bin")/.lock"
    flock 9
    if [[ ! -x $bin/kube-apiserver ]]; then
        log "building kube-apiserver $KUBE_VERSION, kubectl, etcd $ETCD_VERSION into $bin (cold: several minutes)"
        local tmp start=$SECONDS
        tmp=$(mktemp -d "$(dirname "$bin")/bin.tmp.XXXXXX")
        (cd "$MODDIR" && CGO_ENABLED=0 go build -trimpath -ldflags "$(ldflags)" -o "$tmp/" \
            k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kubectl ./etcd) \
            || { rm -rf "$tmp"; die "go build failed"; }
        chmod 755 "$tmp"; rm -rf "$bin"; mv "$tmp" "$bin"
        log "built in $((SECONDS - start))s"
    fi
    exec 9>&-
    echo "$bin"
}

# N free TCP ports on 127.0.0.1 (the kernel picks them; they are released right away, so
# another process could take one before we bind it: good enough for a test machine).
free_ports() {
    python3 -c '
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))' "$1"
}

# Is the pid in file $1 alive and running binary $2?
running() {
    local pid
    [[ -f $1 ]] || return 1
    pid=$(<"$1")
    [[ -n $pid && -r /proc/$pid/cmdline ]] || return 1
    tr '\0' '\n' <"/proc/$pid/cmdline" | head -1 | grep -q "/$2\$"
}

stop_one() { # pidfile name
    running "$1" "$2" || { rm -f "$1"; return 0; }
    local pid; pid=$(<"$1")
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do
        running "$1" "$2" || { rm -f "$1"; return 0; }
        sleep 0.1
    done
    log "$2 (pid $pid) ignored SIGTERM for 10s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$1"
}

# Certificates and credentials, made once per DIR with openssl.
make_credentials() {
    local d=$1/pki
    [[ -f $d/done ]] && return
    mkdir -p "$d"; chmod 700 "$d"
    # A CA and a serving certificate for 127.0.0.1/localhost signed by it (clients such as
    # rustls refuse a CA certificate used as a server certificate, so keep them apart).
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=meshd-testenv-ca" \
        -keyout "$d/ca.key" -out "$d/ca.crt" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
        2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" \
        -keyout "$d/apiserver.key" -out "$d/apiserver.csr" 2>/dev/null
    openssl x509 -req -in "$d/apiserver.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial \
        -days 3650 -out "$d/apiserver.crt" -extfile <(printf '%s\n' \
            "basicConstraints=critical,CA:FALSE" \
            "keyUsage=critical,digitalSignature,keyEncipherment" \
            "extendedKeyUsage=serverAuth" \
            "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc") \
        2>/dev/null
    # The service-account token signing key pair.
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$d/sa.key" 2>/dev/null
    openssl pkey -in "$d/sa.key" -pubout -out "$d/sa.pub"
    # Static bearer tokens: token,user,uid,"groups".
    local token; token=$(openssl rand -hex 32)
    printf '%s,meshd,meshd,"system:masters"\n' "$token" >"$d/tokens.csv"
    printf '%s\n' "$token" >"$1/token"
    chmod 600 "$1/token"
    touch "$d/done"
}

write_kubeconfig() { # DIR port
    local ca; ca=$(base64 -w0 <"$1/pki/ca.crt")
    cat >"$1/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: testenv
  cluster:
    server: https://127.0.0.1:$2
    certificate-authority-data: $ca
users:
- name: meshd
  user:
    token: $(<"$1/token")
contexts:
- name: testenv
  context:
    cluster: testenv
    user: meshd
current-context: testenv
EOF
    chmod 600 "$1/kubeconfig"
}

start_etcd() { # DIR bin
    local dir=$1 bin=$2
    # shellcheck disable=SC2086
    setsid "$bin/etcd" --name testenv --data-dir "$dir/etcd" \
        --listen-client-urls "http://127.0.0.1:$ETCD_PORT" \
        --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
        --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
        --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
        --initial-cluster "testenv=http://127.0.0.1:$ETCD_PEER_PORT" \
        --unsafe-no-fsync \
        ${KUBE_TESTENV_ETCD_ARGS:-} \
        </dev/null >>"$dir/etcd.log" 2>&1 &
    echo $! >"$dir/etcd.pid"
}

start_apiserver() { # DIR bin
    local dir=$1 bin=$2
    mkdir -p "$dir/apiserver"
    # The endpoint reconciler (endpoints of Service `kubernetes`) refuses a loopback
    # address, so it is off. No webhooks; no ServiceAccount admission (no controller creates the `default`
    # ServiceAccount here, and Pods would be refused without it).
    # shellcheck disable=SC2086
    setsid "$bin/kube-apiserver" \
        --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
        --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$APISERVER_PORT" \
        --endpoint-reconciler-type none \
        --cert-dir "$dir/apiserver" \
        --tls-cert-file "$dir/pki/apiserver.crt" --tls-private-key-file "$dir/pki/apiserver.key" \
        --client-ca-file "$dir/pki/ca.crt" \
        --token-auth-file "$dir/pki/tokens.csv" \
        --service-account-issuer https://kubernetes.default.svc.cluster.local \
        --service-account-key-file "$dir/pki/sa.pub" \
        --service-account-signing-key-file "$dir/pki/sa.key" \
        --service-cluster-ip-range 10.96.0.0/16 \
        --authorization-mode RBAC \
        --disable-admission-plugins MutatingAdmissionWebhook,ValidatingAdmissionWebhook,ServiceAccount \
        --allow-privileged=true \
        --profiling=false \
        ${KUBE_TESTENV_APISERVER_ARGS:-} \
        </dev/null >>"$dir/apiserver.log" 2>&1 &
    echo $! >"$dir/apiserver.pid"
}

# Wait for /readyz; on failure print the log's tail and return 1 (the caller cleans up).
wait_ready() { # DIR timeout-seconds
    local dir=$1 deadline=$((SECONDS + $2))
    while ((SECONDS < deadline)); do
        if ! running "$dir/etcd.pid" etcd; then
            tail -20 "$dir/etcd.log" >&2; log "etcd exited (log: $dir/etcd.log)"; return 1
        fi
        if ! running "$dir/apiserver.pid" kube-apiserver; then
            tail -20 "$dir/apiserver.log" >&2; log "kube-apiserver exited (log: $dir/apiserver.log)"; return 1
        fi
        if [[ $(curl -s --max-time 2 --cacert "$dir/pki/ca.crt" -H "Authorization: Bearer $(<"$dir/token")" \
            "https://127.0.0.1:$APISERVER_PORT/readyz" 2>/dev/null) == ok ]]; then
            return 0
        fi
        sleep 0.2
    done
    tail -20 "$dir/apiserver.log" >&2
    log "kube-apiserver not ready after $2s (log: $dir/apiserver.log)"; return 1
}

load_ports() { # DIR
    [[ -f $1/ports ]] || die "$1 has no ports file: not started with this script"
    # shellcheck disable=SC1091
    source "$1/ports"
}

# Apply testenv/crds (Istio's kinds, schema-less) and wait until the server serves them.
apply_crds() { # DIR bin
    local kubectl=("$2/kubectl" --kubeconfig "$1/kubeconfig")
    "${kubectl[@]}" apply -f "$ROOT/testenv/crds/" >/dev/null || return 1
    "${kubectl[@]}" wait --for=condition=Established --timeout=60s \
        crd -l app.kubernetes.io/part-of=meshd-testenv >/dev/null || return 1
}

cmd_start() {
    local dir=${1:?usage: start DIR [--no-crds]} crds=1
    [[ ${2:-} == --no-crds || ${KUBE_TESTENV_NO_CRDS:-} == 1 ]] && crds=0
    [[ -z ${2:-} || ${2:-} == --no-crds ]] || die "start: unknown option ${2}"
    mkdir -p "$dir"; dir=$(cd "$dir" && pwd)
    if running "$dir/etcd.pid" etcd || running "$dir/apiserver.pid" kube-apiserver; then
        die "already running in $dir (stop it first)"
    fi
    local bin; bin=$(cmd_build)
    local t0=$SECONDS
    make_credentials "$dir"
    printf '%s\n' "$bin" >"$dir/bin"
    # The free ports are released before etcd and kube-apiserver bind them, so a process
    # started at the same moment (tests start several servers in parallel) may take one:
    # a start that fails is retried on fresh ports, with etcd's data made anew.
    local attempt
    for attempt in 1 2 3; do
        local ports; read -r -a ports <<<"$(free_ports 3)"
        ETCD_PORT=${ports[0]} ETCD_PEER_PORT=${ports[1]} APISERVER_PORT=${ports[2]}
        printf 'ETCD_PORT=%s\nETCD_PEER_PORT=%s\nAPISERVER_PORT=%s\n' \
            "$ETCD_PORT" "$ETCD_PEER_PORT" "$APISERVER_PORT" >"$dir/ports"
        start_etcd "$dir" "$bin"
        start_apiserver "$dir" "$bin"
        write_kubeconfig "$dir" "$APISERVER_PORT"
        wait_ready "$dir" "${KUBE_TESTENV_TIMEOUT:-90}" && break
        cmd_stop "$dir"
        ((attempt < 3)) || exit 1
        log "start attempt $attempt failed; retrying on new ports"
        rm -rf "$dir/etcd" "$dir/apiserver"
    done
    if ((crds)); then
        apply_crds "$dir" "$bin" || { log "applying testenv/crds failed"; cmd_stop "$dir"; exit 1; }
    fi
    log "ready in $((SECONDS - t0))s: https://127.0.0.1:$APISERVER_PORT"
    echo "export KUBECONFIG=$dir/kubeconfig PATH=$bin:\$PATH"
}

cmd_restart_apiserver() {
    local dir=${1:?usage: restart-apiserver DIR}
    dir=$(cd "$dir" && pwd)
    load_ports "$dir"
    local bin; bin=$(<"$dir/bin")
    stop_one "$dir/apiserver.pid" kube-apiserver
    start_apiserver "$dir" "$bin"
    wait_ready "$dir" "${KUBE_TESTENV_TIMEOUT:-90}" || exit 1
}

cmd_stop() {
    local dir=${1:?usage: stop DIR}
    [[ -d $dir ]] || return 0
    stop_one "$dir/apiserver.pid" kube-apiserver
    stop_one "$dir/etcd.pid" etcd
}

cmd_status() {
    local dir=${1:?usage: status DIR}
    running "$dir/etcd.pid" etcd && running "$dir/apiserver.pid" kube-apiserver
}

case ${1:-} in
build) cmd_build ;;
bin) bin_dir ;;
start) cmd_start "${2:-}" "${3:-}" ;;
stop) cmd_stop "${2:-}" ;;
restart-apiserver) cmd_restart_apiserver "${2:-}" ;;
status) cmd_status "${2:-}" ;;
*) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
