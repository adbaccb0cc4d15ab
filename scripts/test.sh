#!/usr/bin/env bash
# The whole test suite: installs the test dependencies (Envoy 1.40, iptables, ...) and
# builds the local Kubernetes API server (scripts/kube-testenv.sh, cached), then
# runs unit, golden, protocol and end-to-end tests. Exits non-zero on any failure.
# The e2e tests need root; they serialize themselves, so plain `cargo test` works.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-test-deps.sh
# Tests that load config into Envoy use this binary (see tests/common/envoy.rs).
if [[ -z "${MESHD_ENVOY:-}" ]]; then
    MESHD_ENVOY=$(python3 -c "import envoy, os; print(os.path.join(os.path.dirname(envoy.__file__), '_bin', 'envoy'))")
    export MESHD_ENVOY
fi
# tests/kube_source.rs runs a real kube-apiserver: build it once (minutes on a fresh
# machine, cached under ${MESHD_CACHE:-/var/cache/meshd} afterwards).
scripts/kube-testenv.sh build >/dev/null
# Format and lint as DESIGN.md asks: a dirty tree fails the suite.
cargo fmt --check
cargo clippy --all-targets -- -D warnings
cargo test --all-targets "$@"
