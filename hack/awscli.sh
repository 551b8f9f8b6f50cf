#!/usr/bin/env bash
# Installs the AWS CLI v1 (the `awscli` package from PyPI, version pinned below) and boto3 (pinned too) into
# a virtualenv in the cache, outside the checkout, so tests can drive the emulator with the real CLI and the
# real Python SDK (the CLI brings its own copy of botocore; boto3 brings the released one).
#
# Prints the path of the `aws` executable on stdout (everything else goes to stderr). Idempotent: with the
# cache in place it only prints the path. Safe to run concurrently (test binaries run in parallel): one
# process installs under an flock, the others wait and then reuse its result. An install interrupted half
# way leaves no completion marker, so the next run starts it again from scratch.
set -euo pipefail

# Pinned: the CLI's bundled examples (awscli/examples/ivschat/*.rst) and botocore's ivschat model are part
# of what tests/emulator/cli.rs checks, so they must not drift with whatever PyPI serves today.
AWSCLI_VERSION=1.46.3
BOTO3_VERSION=1.44.8

cache_root=${IVSCHAT_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ivschat-operator}
venv="$cache_root/awscli-$AWSCLI_VERSION-boto3-$BOTO3_VERSION"
aws="$venv/bin/aws"
marker="$venv/.installed"

installed() { [ -f "$marker" ] && [ -x "$aws" ]; }
if installed; then echo "$aws"; exit 0; fi

mkdir -p "$cache_root"
exec 9>"$venv.lock"
flock 9
if installed; then echo "$aws"; exit 0; fi

python=${PYTHON:-python3}
command -v "$python" >/dev/null || { echo "awscli: $python is needed to install the AWS CLI" >&2; exit 1; }

# A venv is not relocatable (its scripts name its interpreter by absolute path), so it is built in place;
# the lock and the marker stand in for an atomic rename.
rm -rf "$venv"
echo "awscli: installing awscli==$AWSCLI_VERSION into $venv" >&2
"$python" -m venv "$venv" >&2
"$venv/bin/python" -m pip install --disable-pip-version-check --no-input --quiet "awscli==$AWSCLI_VERSION" \
  "boto3==$BOTO3_VERSION" >&2
# A CLI that cannot start is not installed, whatever pip said.
"$aws" --version >&2
"$venv/bin/python" -c "import boto3; print('boto3', boto3.__version__)" >&2
touch "$marker"
echo "$aws"
