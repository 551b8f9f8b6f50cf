#!/usr/bin/env bash
# Proves an archive from `make image` in a real containerd and runc, the way a kubelet's containerd would see
# it: imported with `ctr -n k8s.io images import`, then run with a read-only root filesystem, seccomp and the
# image's own user (no --user given), checking
#   - `--version` and `crds` (the output must equal crds/ivschat.dev.yaml),
#   - the entrypoint with its default command `run` starts the operator (which, with no cluster, stops on
#     its missing configuration),
#   - a long-running process (the emulator, host network) runs as uid/gid 65532 with no capabilities on a
#     read-only root, and answers HTTP.
# A private containerd does it (its own root, state and sockets, the CRI plugin off), so a containerd the
# host runs is not touched; on exit it is stopped and what it created outside its directory is removed
# (/run/containerd/s and the k8s.io cgroups, when they were absent before).
# Needs root, containerd and runc (Debian: apt-get install containerd). Usage: hack/image-smoke.sh ARCHIVE
set -euo pipefail

archive=$(realpath "${1:?usage: hack/image-smoke.sh ARCHIVE}")
repo=$(cd "$(dirname "$0")/.." && pwd)
[ "$(id -u)" = 0 ] || { echo "image-smoke: needs root" >&2; exit 1; }
for tool in containerd ctr runc curl; do
  command -v "$tool" >/dev/null || { echo "image-smoke: $tool is missing (apt-get install containerd)" >&2; exit 1; }
done

name=$(python3 -c 'import json, sys, tarfile
index = json.load(tarfile.open(sys.argv[1]).extractfile("index.json"))
print(index["manifests"][0]["annotations"]["io.containerd.image.name"])' "$archive")
version=$(python3 -c 'import tomllib, sys; print(tomllib.load(open(sys.argv[1], "rb"))["package"]["version"])' \
  "$repo/Cargo.toml")

# The test node (hack/node.sh) shares /run/containerd/s and the k8s.io cgroups, which this script removes
# when it created them: never both at once, so it waits for the machine's node lock.
exec 8>/run/ivschat-operator-node.lock
flock 8

work=$(mktemp -d /tmp/ivschat-image-smoke.XXXXXX)
absent_before=()
for path in /run/containerd /run/containerd/s /sys/fs/cgroup/*/; do
  case $path in /sys/*) path=${path}k8s.io ;; esac
  [ -e "$path" ] || absent_before+=("$path")
done
containerd_pid=
ctr_() { ctr --address "$work/containerd.sock" -n k8s.io "$@"; }

cleanup() {
  set +e
  for id in $(ctr_ containers ls -q 2>/dev/null); do
    ctr_ task kill -s SIGKILL "$id" >/dev/null 2>&1
    ctr_ task delete -f "$id" >/dev/null 2>&1
    ctr_ containers rm "$id" >/dev/null 2>&1
  done
  if [ -n "$containerd_pid" ]; then
    kill "$containerd_pid" 2>/dev/null
    wait "$containerd_pid" 2>/dev/null
  fi
  grep -q " $work/" /proc/mounts && grep " $work/" /proc/mounts | awk '{print $2}' | sort -r | xargs -r umount
  # Deepest first, and only empty directories: anything another user of them put there stays.
  for ((i = ${#absent_before[@]} - 1; i >= 0; i--)); do
    [ -d "${absent_before[i]}" ] && rmdir "${absent_before[i]}" 2>/dev/null
  done
  rm -rf "$work"
}
trap cleanup EXIT

cat > "$work/config.toml" <<EOF
version = 2
root = "$work/root"
state = "$work/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$work/containerd.sock"
[ttrpc]
  address = "$work/containerd.sock.ttrpc"
[debug]
  address = "$work/debug.sock"
EOF
containerd --config "$work/config.toml" > "$work/containerd.log" 2>&1 &
containerd_pid=$!
for _ in $(seq 50); do ctr_ version >/dev/null 2>&1 && break; sleep 0.1; done
ctr_ version >/dev/null || { cat "$work/containerd.log" >&2; exit 1; }

fail() { echo "image-smoke: FAIL: $*" >&2; exit 1; }
start=$(date +%s%N)
ctr_ images import "$archive" >/dev/null
echo "ok: ctr -n k8s.io images import: $((($(date +%s%N) - start) / 1000000)) ms; images: $(ctr_ images ls -q | tr '\n' ' ')"
ctr_ images ls -q | grep -qx "$name" || fail "$name is not among the imported images"

mkdir -p "$work/fifo" "$work/runc"
run() { ctr_ run --rm --read-only --seccomp --fifo-dir "$work/fifo" --runc-root "$work/runc" "$@"; }
bin=/usr/local/bin/ivschat-operator

out=$(run "$name" smoke-version "$bin" --version)
[ "$out" = "ivschat-operator $version" ] || fail "--version printed: $out"
echo "ok: --version: $out"

run "$name" smoke-crds "$bin" crds > "$work/crds.yaml"
cmp -s "$work/crds.yaml" "$repo/crds/ivschat.dev.yaml" || fail "crds differs from crds/ivschat.dev.yaml"
echo "ok: crds: the same $(wc -l < "$work/crds.yaml") lines as crds/ivschat.dev.yaml"

# No command given: the image's entrypoint and command (`run`).
set +e
out=$(run "$name" smoke-default 2>&1)
status=$?
set -e
[ "$status" != 0 ] && grep -q "Failed to infer configuration" <<<"$out" \
  || fail "the default command did not start the operator (status $status): $out"
echo "ok: entrypoint + cmd: the operator starts and stops on its missing cluster configuration (status $status)"

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
ctr_ run -d --read-only --seccomp --net-host --fifo-dir "$work/fifo" --runc-root "$work/runc" \
  "$name" smoke-emulator "$bin" emulator --listen "127.0.0.1:$port" >/dev/null
code=000
for _ in $(seq 50); do
  code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/") && [ "$code" != 000 ] && break
  sleep 0.1
done
pid=$(ctr_ task ls | awk '$1 == "smoke-emulator" { print $2 }')
[ -n "$pid" ] || fail "the emulator is not running"
ids=$(awk '/^(Uid|Gid|CapEff):/ { printf "%s %s ", $1, $2 }' "/proc/$pid/status")
[ "$ids" = "Uid: 65532 Gid: 65532 CapEff: 0000000000000000 " ] || fail "process identity: $ids"
root_options=$(awk '$5 == "/" { print $6 }' "/proc/$pid/mountinfo")
[[ $root_options == ro,* ]] || fail "the root filesystem is mounted $root_options"
[ "$code" != 000 ] || fail "the emulator in the image did not answer HTTP"
echo "ok: a running process: ${ids}root mounted $root_options, HTTP answered $code"
echo "image-smoke: $name passed"
