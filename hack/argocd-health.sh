#!/usr/bin/env bash
# Builds hack/argocd-health (gopher-lua, the Lua interpreter Argo CD embeds, pinned in its go.mod) into the
# cache, so tests can run deploy/gitops/argocd-health.lua the way Argo CD does. Prints the binary's path.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache_root=${IVSCHAT_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ivschat-operator}
# Rebuilt when the source changes.
hash=$(cat "$here/argocd-health/go.mod" "$here/argocd-health/go.sum" "$here/argocd-health/main.go" | sha256sum | cut -c1-16)
out="$cache_root/argocd-health/$hash/argocd-health"
if [ -x "$out" ]; then echo "$out"; exit 0; fi
mkdir -p "$(dirname "$out")"
(cd "$here/argocd-health" && CGO_ENABLED=0 go build -trimpath -o "$out.tmp" .)
mv "$out.tmp" "$out"
echo "$out"
