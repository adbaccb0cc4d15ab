#!/usr/bin/env bash
# Builds Istio's control plane, `pilot-discovery` (istiod), from the Go module istio.io/istio
# at a pinned version, for the side-by-side benchmark benches/load/compare-istiod.sh.
#
#   scripts/build-istiod.sh          build once (cached) and print the path of the binary
#   scripts/build-istiod.sh dir      print the cache directory (binary, crds/, go.mod) only
#
# Everything lives outside the checkout under ${MESHD_CACHE:-/var/cache/meshd}:
#   istiod-<version>/bin/pilot-discovery   the binary
#   istiod-<version>/crd-all.gen.yaml      Istio's full CRDs, from the same module version
#   go/mod, go/build                       GOMODCACHE and GOCACHE, so reruns are cheap
# A throwaway module (go mod init + go get) pins the version; nothing is vendored here.
# The build is niced: the machine is shared, and a cold build takes many minutes.
set -euo pipefail

# The newest pseudo-version of istio.io/istio the Go module proxy served when this was
# written; its go.mod asks for a Go the local toolchain may not have (see GOTOOLCHAIN below).
ISTIO_VERSION=${ISTIO_VERSION:-v0.0.0-20260827124520-eed52ebb66ad}
CACHE=${MESHD_CACHE:-/var/cache/meshd}
OUT=$CACHE/istiod-$ISTIO_VERSION

die() { echo "build-istiod: $*" >&2; exit 1; }
log() { echo "build-istiod: $*" >&2; }

if [[ ${1:-} == dir ]]; then echo "$OUT"; exit 0; fi
[[ $# -eq 0 ]] || die "usage: $0 [dir]"

if [[ -x $OUT/bin/pilot-discovery && -s $OUT/crd-all.gen.yaml ]]; then
    echo "$OUT/bin/pilot-discovery"; exit 0
fi
command -v go >/dev/null || die "go not found"

export GOMODCACHE=$CACHE/go/mod GOCACHE=$CACHE/go/build GOFLAGS=-modcacherw
# Istio's go.mod may name a newer Go than the machine's; the go command then fetches that
# toolchain from the module proxy. Callers may pin another (GOTOOLCHAIN=go1.27.3 is known
# to be served); `auto` lets go.mod decide.
export GOTOOLCHAIN=${GOTOOLCHAIN:-auto}
mkdir -p "$OUT" "$GOMODCACHE" "$GOCACHE"

exec 9>"$OUT/.lock"
flock 9
if [[ ! -x $OUT/bin/pilot-discovery ]]; then
    start=$SECONDS
    mod=$(mktemp -d "$OUT/mod.XXXXXX")
    trap 'rm -rf "$mod"' EXIT
    log "building pilot-discovery from istio.io/istio@$ISTIO_VERSION into $OUT (cold: a long while)"
    (
        cd "$mod"
        go mod init meshd.local/istiod-build >/dev/null 2>&1
        go get "istio.io/istio@$ISTIO_VERSION"
        # Istio pins some dependencies with replace directives that a dependent module does
        # not inherit; copy them so the build sees the same versions Istio tested.
        istio_dir=$(go list -m -f '{{.Dir}}' istio.io/istio)
        go mod edit -go="$(go mod edit -json "$istio_dir/go.mod" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Go"])')"
        python3 - "$istio_dir/go.mod" <<'EOF' | while read -r r; do go mod edit -replace="$r"; done
import json, subprocess, sys
mod = json.loads(subprocess.check_output(["go", "mod", "edit", "-json", sys.argv[1]]))
for r in mod.get("Replace") or []:
    old, new = r["Old"], r["New"]
    if new["Path"].startswith((".", "/")):
        continue  # local paths inside Istio's own tree do not apply here
    lhs = old["Path"] + ("@" + old["Version"] if old.get("Version") else "")
    print(lhs + "=" + new["Path"] + "@" + new["Version"])
EOF
        # Resolves the package's own imports (go.sum entries) under those replacements.
        go get "istio.io/istio/pilot/cmd/pilot-discovery@$ISTIO_VERSION"
        nice -n 10 go build -trimpath -ldflags '-s -w' -o "$OUT/bin.tmp/pilot-discovery" \
            istio.io/istio/pilot/cmd/pilot-discovery
        cp go.mod "$OUT/go.mod"
    )  # errexit applies inside: a failed step ends the script here
    mkdir -p "$OUT/bin"
    mv "$OUT/bin.tmp/pilot-discovery" "$OUT/bin/pilot-discovery"
    rmdir "$OUT/bin.tmp"
    log "built in $((SECONDS - start))s"
fi
if [[ ! -s $OUT/crd-all.gen.yaml ]]; then
    crd=$GOMODCACHE/istio.io/istio@$ISTIO_VERSION/manifests/charts/base/files/crd-all.gen.yaml
    [[ -s $crd ]] || die "Istio CRDs not found at $crd"
    cp "$crd" "$OUT/crd-all.gen.yaml.tmp" && mv "$OUT/crd-all.gen.yaml.tmp" "$OUT/crd-all.gen.yaml"
fi
exec 9>&-
echo "$OUT/bin/pilot-discovery"
