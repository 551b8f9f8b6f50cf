#!/usr/bin/env bash
# Builds the `helm` binary of the pinned version from its Go module (no release downloads are reachable
# here) and caches it outside the checkout, like hack/k8s-bins.sh does for the control plane.
#
# Prints the path of the binary. Idempotent: with the cache in place it only prints the path.
set -euo pipefail

# The pinned Helm version: this line and nowhere else.
HELM_VERSION=v3.22.0

cache_root=${IVSCHAT_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ivschat-operator}
out="$cache_root/helm/$HELM_VERSION/bin"

if [ -x "$out/helm" ]; then echo "$out/helm"; exit 0; fi

mkdir -p "$cache_root/helm"
exec 9>"$cache_root/helm/.build.lock"
flock 9
if [ -x "$out/helm" ]; then echo "$out/helm"; exit 0; fi

command -v go >/dev/null || { echo "helm.sh: the go toolchain is needed to build helm" >&2; exit 1; }

start=$(date +%s)
mkdir -p "$out.tmp"
# Helm's go.mod has no replace directives, so `go install module@version` works as is. The version is
# stamped the way Helm's own Makefile does, so `helm version` reports it.
GOBIN="$out.tmp" CGO_ENABLED=0 go install -trimpath \
  -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" \
  "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
rm -rf "$out" && mv "$out.tmp" "$out"
echo "helm.sh: built helm $HELM_VERSION in $(( $(date +%s) - start ))s" >&2
echo "$out/helm"
