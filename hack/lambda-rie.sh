#!/usr/bin/env bash
# Builds the AWS Lambda Runtime Interface Emulator (RIE) from its Go module and installs the Python runtime
# interface client `awslambdaric` from PyPI into a virtualenv, both pinned below and cached outside the
# checkout, so tests run real message review handlers (Python functions) behind the real Lambda Invoke API.
#
# Prints the install directory on stdout: `bin/aws-lambda-rie` and `venv/bin/python` (with awslambdaric)
# are in it; everything else goes to stderr. A handler then runs, from its own directory, as
#   DIR/bin/aws-lambda-rie --runtime-interface-emulator-address 127.0.0.1:PORT \
#       DIR/venv/bin/python -m awslambdaric MODULE.FUNCTION
# and answers POST http://127.0.0.1:PORT/2015-03-31/functions/function/invocations (RIE serves one function,
# always named `function`). No container is needed: RIE runs the runtime as a child process.
#
# Idempotent: with the cache in place it only prints the path. Safe to run concurrently (test binaries run
# in parallel): one process installs under an flock, the others wait and reuse its result. An interrupted
# install leaves no completion marker, so the next run starts again from scratch.
set -euo pipefail

# The RIE's git tags (v1.30, ...) are not semver, so the Go module proxy serves pseudo-versions only; this
# is the one `@latest` resolved to (its go.mod needs go 1.26.6).
RIE_MODULE=github.com/aws/aws-lambda-runtime-interface-emulator
RIE_VERSION=v0.0.0-20261030222936-bef5c4ba774d
AWSLAMBDARIC_VERSION=4.2.2

cache_root=${IVSCHAT_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ivschat-operator}
dir="$cache_root/lambda-rie-${RIE_VERSION##*-}-awslambdaric-$AWSLAMBDARIC_VERSION"
marker="$dir/.installed"

installed() { [ -f "$marker" ] && [ -x "$dir/bin/aws-lambda-rie" ] && [ -x "$dir/venv/bin/python" ]; }
if installed; then echo "$dir"; exit 0; fi

mkdir -p "$cache_root"
exec 9>"$dir.lock"
flock 9
if installed; then echo "$dir"; exit 0; fi

command -v go >/dev/null || { echo "lambda-rie: the go toolchain is needed to build the Lambda RIE" >&2; exit 1; }
python=${PYTHON:-python3}
command -v "$python" >/dev/null || { echo "lambda-rie: $python is needed to install awslambdaric" >&2; exit 1; }

rm -rf "$dir"
mkdir -p "$dir/bin"
echo "lambda-rie: building $RIE_MODULE@$RIE_VERSION into $dir/bin" >&2
# As the RIE's own Makefile builds it: static, no cgo.
CGO_ENABLED=0 GOBIN="$dir/bin" GOFLAGS=-trimpath go install -ldflags "-s -w" \
  "$RIE_MODULE/cmd/aws-lambda-rie@$RIE_VERSION" >&2

# A venv is not relocatable (its scripts name its interpreter by absolute path), so it is built in place.
echo "lambda-rie: installing awslambdaric==$AWSLAMBDARIC_VERSION into $dir/venv" >&2
"$python" -m venv "$dir/venv" >&2
"$dir/venv/bin/python" -m pip install --disable-pip-version-check --no-input --quiet \
  "awslambdaric==$AWSLAMBDARIC_VERSION" >&2
# A runtime that cannot be imported is not installed, whatever pip said.
"$dir/venv/bin/python" -c "import awslambdaric" >&2
touch "$marker"
echo "$dir"
