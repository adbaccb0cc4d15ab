#!/usr/bin/env bash
# The whole test suite: installs the test dependencies (Envoy 1.40, iptables, ...), then
# runs unit, golden, protocol and end-to-end tests. Exits non-zero on any failure.
# The e2e tests need root; they serialize themselves, so plain `cargo test` works.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-test-deps.sh
cargo test --all-targets "$@"
