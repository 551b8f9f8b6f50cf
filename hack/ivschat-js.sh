#!/usr/bin/env bash
# Installs the official IVS Chat JavaScript client (`amazon-ivs-chat-messaging`, version pinned below) and the
# `ws` WebSocket implementation it needs under Node 20, into a directory in the cache, outside the checkout, so
# tests can run the real client against the emulator's messaging endpoint.
#
# Prints the install directory (holding node_modules/) on stdout; everything else goes to stderr. Idempotent:
# with the cache in place it only prints the path. Safe to run concurrently: one process installs under an
# flock, the others wait and reuse its result. An interrupted install leaves no completion marker, so the next
# run starts again from scratch.
set -euo pipefail

# Pinned: ivschat-messaging.md describes what this version requires of the server.
CHAT_MESSAGING_VERSION=1.1.1
WS_VERSION=8.18.3

cache_root=${IVSCHAT_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ivschat-operator}
dir="$cache_root/ivschat-js-$CHAT_MESSAGING_VERSION-ws-$WS_VERSION"
marker="$dir/.installed"

installed() { [ -f "$marker" ] && [ -d "$dir/node_modules/amazon-ivs-chat-messaging" ]; }
if installed; then echo "$dir"; exit 0; fi

mkdir -p "$cache_root"
exec 9>"$dir.lock"
flock 9
if installed; then echo "$dir"; exit 0; fi

command -v node >/dev/null || { echo "ivschat-js: node is needed to run the JS client" >&2; exit 1; }
command -v npm >/dev/null || { echo "ivschat-js: npm is needed to install the JS client" >&2; exit 1; }

rm -rf "$dir"
mkdir -p "$dir"
echo "ivschat-js: installing amazon-ivs-chat-messaging@$CHAT_MESSAGING_VERSION and ws@$WS_VERSION into $dir" >&2
# A private package.json keeps npm from walking up into another project.
echo '{"name": "ivschat-js-client", "private": true}' >"$dir/package.json"
npm install --prefix "$dir" --no-audit --no-fund --loglevel=error --save-exact \
    "amazon-ivs-chat-messaging@$CHAT_MESSAGING_VERSION" "ws@$WS_VERSION" >&2
# A client that cannot be loaded is not installed, whatever npm said.
(cd "$dir" && node -e 'require("ws"); import("amazon-ivs-chat-messaging").then(() => {})') >&2
touch "$marker"
echo "$dir"
