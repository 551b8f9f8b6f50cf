#!/usr/bin/env bash
# Installs what the test node (hack/node.sh) needs from Debian when it is missing: containerd, runc, the
# CNI plugins, iptables, conntrack, iproute2, procps (sysctl), gcc (the pause binary) and nftables. Only as
# root with apt-get (a fresh CI machine); elsewhere it says what is missing and exits 0, and the node
# tier then reports itself as not run.
set -uo pipefail

packages=(containerd runc containernetworking-plugins iptables conntrack iproute2 procps gcc libc6-dev nftables)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "node-deps: not installing ${missing[*]} (needs root and apt-get); the node tier will not run" >&2
  exit 0
fi
echo "node-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null ||
  { apt-get update >/dev/null && apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null; } ||
  echo "node-deps: apt-get could not install ${missing[*]}; the node tier will not run" >&2
# The Debian package starts containerd where an init system runs; the node runs its own, with its own
# socket and state, so a system one is left alone but is not needed.
exit 0
