#!/usr/bin/env bash
# Builds kube-apiserver, kubectl and etcd of the pinned Kubernetes version from their Go modules
# (no release downloads are reachable here) and caches them outside the checkout.
#
# With --node it builds, into the same directory, what a one-node cluster adds (testsupport's node module
# runs them): kubelet, kube-controller-manager, kube-scheduler, kube-proxy, and the pause binary the
# sandbox image carries, compiled from the kubernetes module's own build/pause/linux/pause.c.
#
# Prints the directory holding the binaries. Idempotent: a second run with the cache in place
# only prints the directory. The pinned version lives in hack/k8s-version and nowhere else.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=k8s-version
. "$here/k8s-version"
cache_root=${IVSCHAT_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ivschat-operator}
out="$cache_root/k8s/$KUBE_VERSION/bin"

control_plane_bins=(kube-apiserver kubectl etcd)
node_bins=(kubelet kube-controller-manager kube-scheduler kube-proxy pause)
wanted=("${control_plane_bins[@]}")
[ "${1:-}" = --node ] && wanted+=("${node_bins[@]}")

have_all() {
  local bin
  for bin in "${wanted[@]}"; do [ -x "$out/$bin" ] || return 1; done
}
if have_all; then echo "$out"; exit 0; fi

mkdir -p "$cache_root/k8s"
exec 9>"$cache_root/k8s/.build.lock"
flock 9
if have_all; then echo "$out"; exit 0; fi

command -v go >/dev/null || { echo "k8s-bins: the go toolchain is needed to build kube-apiserver/etcd/kubectl" >&2; exit 1; }

start=$(date +%s)
work=$(mktemp -d "$cache_root/k8s/wrapper.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"

# The kubernetes go.mod replaces its staging modules with ./staging/src/... paths, which `go install pkg@v`
# refuses. A throw-away wrapper module requires k8s.io/kubernetes and points each staging module at its
# published v0.Y.Z tag instead, the list read from the go.mod that the proxy serves.
gomod_json=$(go mod download -json "k8s.io/kubernetes@$KUBE_VERSION")
gomod_file=$(printf '%s\n' "$gomod_json" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
[ -f "$gomod_file" ] || { echo "k8s-bins: could not read the go.mod of k8s.io/kubernetes@$KUBE_VERSION" >&2; exit 1; }
staging_version="v0.${KUBE_VERSION#v1.}"
go_line=$(grep -m1 '^go ' "$gomod_file")
godebug_line=$(grep -m1 '^godebug ' "$gomod_file" || true)

{
  echo "module ivschat-operator.local/k8s-bins"
  echo
  echo "$go_line"
  [ -n "$godebug_line" ] && echo "$godebug_line"
  echo
  echo "require k8s.io/kubernetes $KUBE_VERSION"
  echo
  grep -E '=>[[:space:]]+\./staging/src/' "$gomod_file" | awk -v v="$staging_version" '{print "replace " $1 " => " $1 " " v}'
} > go.mod
cat > tools.go <<'GO'
//go:build tools

package tools

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
GO
# etcd at the version this Kubernetes release itself depends on.
etcd_version=$(awk '$1 == "go.etcd.io/etcd/server/v3" {print $2; exit}' "$gomod_file")
[ -n "$etcd_version" ] || { echo "k8s-bins: no etcd version in the kubernetes go.mod" >&2; exit 1; }
GOFLAGS=-mod=mod go get "k8s.io/kubernetes@$KUBE_VERSION" "go.etcd.io/etcd/server/v3@$etcd_version"
GOFLAGS=-mod=mod go mod tidy

minor=${KUBE_VERSION#v1.}; minor=${minor%%.*}
build_date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
ldflags=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$build_date"
done

# Binaries already cached are kept (a --node run after a plain one builds only the node's), each one
# written under a temporary name first so an interrupted build never leaves a half-written binary.
mkdir -p "$out"
export CGO_ENABLED=0 GOFLAGS=-mod=mod
built=()
for bin in "${wanted[@]}"; do
  [ -x "$out/$bin" ] && continue
  case $bin in
    etcd) go build -trimpath -ldflags "-s -w" -o "$out/.$bin.tmp" go.etcd.io/etcd/server/v3 ;;
    # The pause process of every Pod sandbox, static so the image needs nothing else. The kubelet never
    # checks its version string; the source's own default is used.
    pause)
      gomod_dir=$(printf '%s\n' "$gomod_json" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
      gcc -Os -static -o "$out/.$bin.tmp" "$gomod_dir/build/pause/linux/pause.c"
      strip "$out/.$bin.tmp" ;;
    *) go build -trimpath -ldflags "-s -w $ldflags" -o "$out/.$bin.tmp" "k8s.io/kubernetes/cmd/$bin" ;;
  esac
  mv "$out/.$bin.tmp" "$out/$bin"
  built+=("$bin")
done
echo "k8s-bins: built $KUBE_VERSION (${built[*]}) in $(( $(date +%s) - start ))s" >&2
echo "$out"
