#!/usr/bin/env bash
# `make demo`: a local control plane, the IVS Chat emulator and the operator, with the examples applied
# and shown Ready beside AWS's (the emulator's) own view, then `kubectl ivschat` at work (a token, a short tail),
# and every line a newcomer needs to go on. `make demo-down` (this script with `down`) stops it all.
#
# IVSCHAT_DEMO_PORT (default 4510) is the emulator's port; IVSCHAT_DEMO_STATE_DIR (default
# $IVSCHAT_CACHE_DIR/demo) holds everything the demo starts: its pids, logs, the emulator's state and the
# control plane's data (in cluster/), so two demos with different settings run side by side and `down` with the
# same settings stops exactly one. CARGO_TARGET_DIR is honoured, so a built tree is not rebuilt;
# IVSCHAT_DEMO_BIN_DIR names a directory of built ivschat-operator, kubectl-ivschat and testenv binaries to use
# instead, without cargo at all (tests/cluster/demo.rs: a build from inside `cargo test` would differ in features
# from the test's own and rebuild half the tree).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cache=${IVSCHAT_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ivschat-operator}
state=${IVSCHAT_DEMO_STATE_DIR:-$cache/demo}
port=${IVSCHAT_DEMO_PORT:-4510}
target=${CARGO_TARGET_DIR:-$root/target}
prebuilt=${IVSCHAT_DEMO_BIN_DIR:-}
bin_dir=${prebuilt:-$target/debug}
bin="$bin_dir/ivschat-operator"
plugin_dir="$bin_dir"
testenv_bin="$bin_dir/testenv"
emulator_addr=127.0.0.1:$port
# The control plane lives in the demo's state dir (testenv's --state-dir, through its environment variable), not
# in the one `make cluster-up` uses, so `make demo-down` never stops someone's cluster.
export IVSCHAT_CLUSTER_DIR="$state/cluster"
# What the newcomer is told to export at the end, used here too, so what is shown is what works.
aws_env="AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-west-2 AWS_DEFAULT_REGION=us-west-2 AWS_ENDPOINT_URL=http://$emulator_addr"
export $aws_env

stop_pid() { # stop_pid NAME: stop a process started by this script, if it still runs
  local f="$state/$1.pid"
  if [ -f "$f" ]; then
    local pid; pid=$(cat "$f")
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -f "$f"
  fi
}

if [ "${1:-up}" = down ]; then
  stop_pid tail
  stop_pid operator
  stop_pid emulator
  # Through cargo (unless prebuilt), so the control plane is stopped even when this checkout's build is gone.
  if [ -n "$prebuilt" ]; then "$testenv_bin" down; else (cd "$root" && cargo run --quiet --locked -p testenv -- down); fi
  rm -rf "$state"
  echo "demo stopped"
  exit 0
fi

if [ -d "$state" ]; then
  echo "==> a demo is already running: restarting it from scratch"
  bash "$0" down >/dev/null
fi
mkdir -p "$state"
if [ -n "$prebuilt" ]; then
  echo "==> using the operator, the kubectl ivschat plugin and the control-plane launcher in $prebuilt"
else
  echo "==> building the operator, the kubectl ivschat plugin and the control-plane launcher"
  (cd "$root" && cargo build --quiet --locked -p ivschat-operator --bin ivschat-operator --bin kubectl-ivschat \
  && cargo build --quiet --locked -p testenv --bin testenv)
fi

echo "==> starting the control plane (kube-apiserver + etcd; built from source the first time)"
kubeconfig_line=$("$testenv_bin" up | grep '^export KUBECONFIG=')
eval "$kubeconfig_line"
kubectl_bin="$("$testenv_bin" bin-dir)/kubectl"
kubectl() { "$kubectl_bin" "$@"; }

echo "==> starting the IVS Chat emulator on $emulator_addr"
stop_pid emulator
"$bin" emulator --listen "$emulator_addr" --logging-transition-delay 2s --state-file "$state/emulator.json" \
  >"$state/emulator.log" 2>&1 &
echo $! >"$state/emulator.pid"
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/${emulator_addr%:*}/${emulator_addr#*:}") 2>/dev/null && break
  kill -0 "$(cat "$state/emulator.pid")" 2>/dev/null || { cat "$state/emulator.log"; exit 1; }
  sleep 0.1
done

echo "==> installing the CRDs"
kubectl apply --server-side -f "$root/crds/" >/dev/null
kubectl wait --for=condition=Established crd/chatrooms.ivschat.dev crd/chatloggingconfigurations.ivschat.dev \
  crd/chataccounts.ivschat.dev --timeout=60s >/dev/null

echo "==> starting the operator (logs: $state/operator.log)"
stop_pid operator
"$bin" run --aws-endpoint-url "http://$emulator_addr" --messaging-endpoint "ws://$emulator_addr" \
  --region us-west-2 --resync-period 1m >"$state/operator.log" 2>&1 &
echo $! >"$state/operator.pid"

aws_bin=$(bash "$root/hack/awscli.sh")
aws() { "$aws_bin" --endpoint-url "http://$emulator_addr" "$@"; }

echo "==> creating, with the AWS CLI, the room and logging configuration that the adoption examples take over"
adopt_room=$(aws ivschat create-room --name made-outside-kubernetes --query arn --output text)
observe_room=$(aws ivschat create-room --name managed-by-someone-else --query arn --output text)
outside_logging=$(aws ivschat create-logging-configuration --name made-outside-kubernetes \
  --destination-configuration 's3={bucketName=outside-logging-bucket}' --query arn --output text)

echo "==> applying examples/"
for f in "$root"/examples/*.yaml; do
  case "$(basename "$f")" in
    chatroom-adopt.yaml)
      sed -e "s#adoptArn: .*#adoptArn: $adopt_room#" \
          -e "s#arn: arn:aws:ivschat:[^ ]*logging-configuration/[A-Za-z0-9]*#arn: $outside_logging#" "$f" ;;
    chatroom-observe-only.yaml)
      sed -e "s#adoptArn: .*#adoptArn: $observe_room#" "$f" ;;
    chataccount.yaml)
      sed -e "s#endpointUrl: http://127.0.0.1:4510#endpointUrl: http://$emulator_addr#" "$f" ;;
    *) cat "$f" ;;
  esac
  echo "---"
done | kubectl apply -f -
echo "==> waiting until everything is Ready"
kubectl wait --for=condition=Ready chataccounts,chatloggingconfigurations,chatrooms --all --timeout=120s >/dev/null

echo
echo "==> Kubernetes' view: kubectl get ivschat"
kubectl get ivschat -o wide
echo
echo "==> the account and where its room lives: kubectl get chataccounts; the room's status.region and status.accountId"
kubectl get chataccounts
kubectl get chatroom europe-room -o jsonpath='{.metadata.name}: {.status.accountId} {.status.region} {.status.arn}{"\n"}'
echo
echo "==> what the lobby room exports for envFrom: kubectl get configmap lobby-chat"
kubectl get configmap lobby-chat -o go-template='{{range $k, $v := .data}}{{$k}}={{$v}}{{"\n"}}{{end}}'
echo
echo "==> AWS's view (the emulator), through the AWS CLI"
aws ivschat list-logging-configurations --output table \
  --query 'loggingConfigurations[].{Name:name, Id:id, State:state, Owner:tags."ivschat.dev/name"}'
aws ivschat list-rooms --output table \
  --query 'rooms[].{Name:name, Id:id, LoggingConfigurations:length(loggingConfigurationIdentifiers), Owner:tags."ivschat.dev/name"}'
aws ivschat list-rooms --region eu-west-1 --output table --query 'rooms[].{Name:name, Id:id, Owner:tags."ivschat.dev/name"}'
echo
echo "==> the plugin: kubectl ivschat token test-room-1 --user-id ada --capability SEND_MESSAGE"
export PATH="$(dirname "$kubectl_bin"):$plugin_dir:$PATH"
kubectl ivschat token test-room-1 --user-id ada --capability SEND_MESSAGE
echo
echo "==> kubectl ivschat tail test-room-1 (in the background) while kubectl ivschat send-event test-room-1 --name app:demo"
# exec (kubectl execs its plugins too), so that $! is the tail itself, which the Ctrl-C below must reach.
(exec "$kubectl_bin" ivschat tail test-room-1) >"$state/tail.out" 2>"$state/tail.err" &
echo $! >"$state/tail.pid"
wait_for_line() { # wait_for_line FILE TEXT: until FILE has a line with TEXT (10 s), else show the tail's stderr
  for _ in $(seq 100); do grep -q -- "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
  echo "the tail did not print $2:" >&2; cat "$state/tail.err" >&2; exit 1
}
wait_for_line "$state/tail.err" "connected to room"
kubectl ivschat send-event test-room-1 --name app:demo --attribute greeting=hello >/dev/null
wait_for_line "$state/tail.out" "app:demo"
tail_pid=$(cat "$state/tail.pid")
kill -INT "$tail_pid"
wait "$tail_pid"
rm -f "$state/tail.pid"
echo "the tail printed (then stopped on Ctrl-C):"
sed 's/^/  /' "$state/tail.out"
echo "and said on stderr:"
sed 's/^/  /' "$state/tail.err"
echo
echo "The demo keeps running. In another shell, paste:"
echo "  $kubeconfig_line"
echo "  export PATH=$(dirname "$kubectl_bin"):$plugin_dir:\$PATH"
echo "  export $aws_env"
echo "Then try:"
echo "  kubectl get ivschat; kubectl describe chatroom test-room-1"
echo "  kubectl ivschat status test-room-1"
echo "  kubectl ivschat tail test-room-1        # and, in a third shell: kubectl ivschat send-event test-room-1 --name app:hi"
echo "  $aws_bin ivschat list-rooms       # the AWS CLI the demo installed; any AWS CLI works with these exports"
if [ "$port" = 4510 ] && [ -z "${IVSCHAT_DEMO_STATE_DIR:-}" ]; then
  echo "Stop it with: make demo-down"
else
  echo "Stop it with: IVSCHAT_DEMO_PORT=$port IVSCHAT_DEMO_STATE_DIR=$state make demo-down"
fi
