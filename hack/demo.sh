#!/usr/bin/env bash
# `make demo`: a local control plane, the IVS Chat emulator and the operator, with the examples applied
# and shown Ready beside AWS's (the emulator's) own view. `make demo-down` (this script with `down`) stops it all.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cache=${IVSCHAT_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ivschat-operator}
state="$cache/demo"
target=${CARGO_TARGET_DIR:-$root/target}
bin="$target/debug/ivschat-operator"
testenv_bin="$target/debug/testenv"
emulator_addr=127.0.0.1:4510
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-west-2 AWS_DEFAULT_REGION=us-west-2

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
  stop_pid operator
  stop_pid emulator
  # Through cargo, so the control plane is stopped even when this checkout's build is gone.
  (cd "$root" && cargo run --quiet --locked -p testenv -- down)
  rm -rf "$state"
  echo "demo stopped"
  exit 0
fi

if [ -d "$state" ]; then
  echo "==> a demo is already running: restarting it from scratch"
  bash "$0" down >/dev/null
fi
mkdir -p "$state"
echo "==> building the operator and the control-plane launcher"
(cd "$root" && cargo build --quiet --locked --bin ivschat-operator -p ivschat-operator && cargo build --quiet --locked -p testenv --bin testenv)

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
echo "The demo keeps running. Try:"
echo "  $kubeconfig_line"
echo "  export PATH=$(dirname "$kubectl_bin"):\$PATH"
echo "  kubectl get ivschat; kubectl describe chatroom test-room-1"
echo "Stop it with: make demo-down"
