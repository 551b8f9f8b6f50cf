#!/usr/bin/env bash
# The one-node cluster of the tests (and of `testenv up --with-node`): containerd, runc and the bridge CNI
# plugin from Debian, kubelet, kube-controller-manager, kube-scheduler and kube-proxy of the pinned version
# (hack/k8s-bins.sh --node), joined to a control plane testenv started with its node flags.
#
# A node changes host-wide state: sysctls, iptables chains, a bridge, an address on lo, cgroups, mounts and
# fixed paths (/run/containerd, /var/lib/kubelet, /var/log/pods, /var/lib/cni, /run/netns, ...). So there
# is one node per machine, behind a lock, and everything it changes is recorded before it is changed and
# restored by `teardown`, which also runs at the start of every node (a node killed with SIGKILL leaves its
# record behind, and the next one cleans up after it).
#
#   node.sh run CONTROL_PLANE_DIR [--until-eof|--until-term]
#       Waits for the lock (prints `locked`), starts the node, prints `ready` once the node is Ready, then
#       waits: for EOF on stdin (the test process's lifeline: however the owner ends, the kernel closes it)
#       or for SIGTERM (a person's node, `testenv down`). Then tears down and exits, releasing the lock.
#   node.sh down CONTROL_PLANE_DIR
#                     Stops the node of that control plane (started with --until-term), waits for its teardown.
#   node.sh teardown  Restores the host from a left-behind record (takes the lock; no-op when clean).
#   node.sh dirty     Exit 0 if anything a node owns is present on the host (prints what), 1 otherwise.
#
# Host-wide names, all owned by a node and by nothing else on a test machine:
#   state dir $NODE_DIR, lo address $NODE_IP, bridge $BRIDGE, pod network $POD_CIDR, netns cni-*,
#   iptables chains KUBE-* and CNI-*, cgroups kubepods*.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
NODE_DIR=/var/lib/ivschat-operator-node
LOCK=/run/ivschat-operator-node.lock
NODE_NAME=ivschat-node
NODE_IP=10.199.0.1
BRIDGE=ivschat0
POD_CIDR=10.200.0.0/24
SERVICE_CIDR=10.0.0.0/24
PAUSE_IMAGE=registry.k8s.io/pause:ivschat-operator
CNI_BIN_DIR=/usr/lib/cni
# Sysctls the kubelet (vm.*, kernel.*) and the bridge plugin (ip_forward) set; restored from the record.
SYSCTLS=(vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops kernel.keys.root_maxkeys
  kernel.keys.root_maxbytes net.ipv4.ip_forward net.ipv4.conf.all.route_localnet)
# Fixed paths the components create whatever their configuration says; each is removed only if the record
# says it did not exist before the node started.
FIXED_PATHS=(/run/containerd /var/lib/kubelet /var/log/pods /var/log/containers /var/lib/cni /run/netns
  /var/run/netns /etc/cni /opt/cni /opt/containerd /var/lib/containerd /run/ivschat-operator-node-containerd)
CGROUP_NAMES=(kubepods kubepods.slice k8s.io)

log() { echo "node: $*" >&2; }
die() { log "$*"; exit 1; }

record=$NODE_DIR/host-before
components=(kube-proxy kubelet kube-scheduler kube-controller-manager containerd)

# The PID recorded for a component, if that process still runs with the node dir on its command line
# (a reused PID is never signalled).
live_pid() {
  local f=$NODE_DIR/$1.pid pid mark=$NODE_DIR
  # The supervisor is this script; its command line names the control plane, not the node dir.
  [ "$1" = supervisor ] && mark=node.sh
  [ -r "$f" ] || return 1
  read -r pid <"$f" || return 1
  case $pid in '' | *[!0-9]*) return 1 ;; esac
  grep -qaF -- "$mark" "/proc/$pid/cmdline" 2>/dev/null && echo "$pid"
}

stop_pid() {
  local pid=$1 n=0
  kill -TERM "$pid" 2>/dev/null || return 0
  while kill -0 "$pid" 2>/dev/null && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
  kill -KILL "$pid" 2>/dev/null
  n=0
  while kill -0 "$pid" 2>/dev/null && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
}

# Every process in a cgroup subtree of any hierarchy (the containers and sandboxes of the node's pods).
cgroup_pids() {
  local name dir
  for name in "${CGROUP_NAMES[@]}"; do
    for dir in /sys/fs/cgroup/*/"$name" /sys/fs/cgroup/"$name"; do
      [ -d "$dir" ] && find "$dir" -name cgroup.procs -exec cat {} + 2>/dev/null
    done
  done | sort -un
}

# Processes started by the node's containerd: shims (their command line names its socket) and anything
# left in the pod cgroups.
container_pids() {
  local pid
  for pid in /proc/[0-9]*; do
    pid=${pid#/proc/}
    grep -qaF -- "$NODE_DIR/containerd/containerd.sock" "/proc/$pid/cmdline" 2>/dev/null && echo "$pid"
  done
  cgroup_pids
}

# iptables front ends present on this host (nft and legacy, IPv4 and IPv6): a node's components may use
# either, and the teardown must leave both as they were.
iptables_tools() {
  local tool
  for tool in iptables-nft ip6tables-nft iptables-legacy ip6tables-legacy; do
    command -v "$tool" >/dev/null && echo "$tool"
  done
}

# The rules of every table, without packet counters, for the record and for `dirty`.
iptables_state() {
  local tool
  for tool in $(iptables_tools); do
    echo "## $tool"
    "$tool-save" 2>/dev/null | grep -v '^#' | sed -E 's/\[[0-9]+:[0-9]+\]//'
  done
}

# Removes the node's chains (KUBE-*, CNI-*) and every rule that jumps to them, in every table of every
# iptables front end.
remove_chains() {
  local tool table chain rule tables
  for tool in $(iptables_tools); do
    tables="filter nat mangle raw security"
    # Listing a legacy table the kernel has not instantiated creates it, and a kernel without modules
    # cannot drop it again: only the ones that exist are looked at.
    case $tool in
      iptables-legacy) tables=$(cat /proc/net/ip_tables_names 2>/dev/null) ;;
      ip6tables-legacy) tables=$(cat /proc/net/ip6_tables_names 2>/dev/null) ;;
    esac
    for table in $tables; do
      "$tool" -t "$table" -S >/dev/null 2>&1 || continue
      # Rules in any chain that jump to one of ours, deleted by their exact spec.
      "$tool" -t "$table" -S 2>/dev/null | grep -E '^-A .* -j (KUBE-|CNI-)' | while read -r rule; do
        eval "\"$tool\" -t \"$table\" -D ${rule#-A }" 2>/dev/null
      done
      for chain in $("$tool" -t "$table" -S 2>/dev/null | awk '$1 == "-N" && $2 ~ /^(KUBE-|CNI-)/ {print $2}'); do
        "$tool" -t "$table" -F "$chain" 2>/dev/null
      done
      for chain in $("$tool" -t "$table" -S 2>/dev/null | awk '$1 == "-N" && $2 ~ /^(KUBE-|CNI-)/ {print $2}'); do
        "$tool" -t "$table" -X "$chain" 2>/dev/null
      done
    done
  done
}

# Mount points under the node's paths, deepest first.
node_mounts() {
  awk '{print $5}' /proc/self/mountinfo | sed 's/\\040/ /g' |
    grep -E "^($NODE_DIR|/run/containerd|/var/lib/kubelet|/run/netns|/var/run/netns)(/|$)" | sort -r
}

# What a node owns that is present on the host now, one line each; empty when the host is clean.
leftovers() {
  local name dir path
  [ -e "$NODE_DIR" ] && echo "state dir $NODE_DIR"
  for name in "${components[@]}"; do live_pid "$name" >/dev/null && echo "process $name"; done
  [ -n "$(container_pids)" ] && echo "container processes: $(container_pids | tr '\n' ' ')"
  ip -br addr show dev lo 2>/dev/null | grep -qw "$NODE_IP/32" && echo "address $NODE_IP on lo"
  ip link show "$BRIDGE" >/dev/null 2>&1 && echo "bridge $BRIDGE"
  iptables_state | grep -qE '(^:| -j )(KUBE-|CNI-)' && echo "iptables chains KUBE-*/CNI-*"
  for name in "${CGROUP_NAMES[@]}"; do
    for dir in /sys/fs/cgroup/*/"$name" /sys/fs/cgroup/"$name"; do [ -d "$dir" ] && echo "cgroup $dir"; done
  done
  node_mounts | sed 's/^/mount /'
  for path in /run/netns/cni-* /var/run/netns/cni-*; do [ -e "$path" ] && echo "netns $path"; done
  if [ -r "$record/paths" ]; then
    while read -r path; do [ -e "$path" ] && echo "path $path"; done <"$record/paths"
  fi
}

# Restores the host from the record (what existed and which values held before the node started). Safe
# to run twice, and on a host where a node died half-way through starting.
teardown() {
  local name pid path dir table
  [ -d "$NODE_DIR" ] || return 0
  log "tearing down"
  # The cluster components first, so no kubelet restarts a container that is being killed below.
  for name in "${components[@]}"; do
    [ "$name" = containerd ] && continue
    pid=$(live_pid "$name") && stop_pid "$pid"
  done
  # Then the containers (SIGKILL: the pods' data is thrown away), the shims, containerd itself.
  for pid in $(container_pids); do kill -KILL "$pid" 2>/dev/null; done
  sleep 0.2
  for pid in $(container_pids); do kill -KILL "$pid" 2>/dev/null; done
  pid=$(live_pid containerd) && stop_pid "$pid"
  # kube-proxy removes its own chains in every mode it knows.
  if [ -x "$NODE_DIR/bin/kube-proxy" ]; then
    "$NODE_DIR/bin/kube-proxy" --cleanup >>"$NODE_DIR/kube-proxy-cleanup.log" 2>&1 || true
  fi
  # The netns of sandboxes (bind mounts: unmounting the last reference destroys the netns and its veth).
  for path in $(node_mounts); do umount "$path" 2>/dev/null || umount -l "$path" 2>/dev/null; done
  for path in /run/netns/cni-* /var/run/netns/cni-*; do [ -e "$path" ] && rm -f "$path"; done
  ip link del "$BRIDGE" 2>/dev/null
  ip addr del "$NODE_IP/32" dev lo 2>/dev/null
  remove_chains
  # nft tables the iptables-nft front end created for the node: only those the record does not have and
  # that hold no rule any more (a table someone else made meanwhile, with rules in it, stays).
  if command -v nft >/dev/null && [ -r "$record/nft-tables" ]; then
    nft list tables 2>/dev/null | while read -r _ family table; do
      grep -qxF "table $family $table" "$record/nft-tables" && continue
      nft list table "$family" "$table" 2>/dev/null |
        grep -qvE '^[[:space:]]*(table |chain |type |policy |\}|$)' && continue
      nft delete table "$family" "$table" 2>/dev/null
    done
  fi
  # Pod cgroups, deepest first (rmdir of a cgroup with no processes).
  for name in "${CGROUP_NAMES[@]}"; do
    for dir in /sys/fs/cgroup/*/"$name" /sys/fs/cgroup/"$name"; do
      [ -d "$dir" ] && find "$dir" -depth -type d -exec rmdir {} \; 2>/dev/null
    done
  done
  if [ -r "$record/sysctl" ]; then
    while IFS='=' read -r name value; do
      [ "$(sysctl -n "$name" 2>/dev/null)" = "$value" ] || sysctl -qw "$name=$value" >/dev/null 2>&1
    done <"$record/sysctl"
  fi
  if [ -r "$record/paths" ]; then
    while read -r path; do
      [ -e "$path" ] || continue
      # A mount that survived (busy) would take the host's data with it: never rm across one.
      if awk '{print $5}' /proc/self/mountinfo | grep -qE "^$path(/|$)"; then
        log "not removing $path: something is still mounted under it"
        continue
      fi
      rm -rf -- "$path"
    done <"$record/paths"
  fi
  local rest
  rest=$(NODE_DIR=$NODE_DIR leftovers | grep -v "^state dir ")
  if [ -n "$rest" ]; then
    log "teardown left behind (kept $NODE_DIR for another try):"
    printf '%s\n' "$rest" >&2
    return 1
  fi
  rm -rf -- "$NODE_DIR"
  log "host restored"
}

# Writes what teardown needs to put back: sysctl values, which fixed paths existed, the nft tables.
record_host() {
  local name path
  mkdir -p "$record"
  for name in "${SYSCTLS[@]}"; do
    [ -e "/proc/sys/${name//.//}" ] && echo "$name=$(sysctl -n "$name")"
  done >"$record/sysctl"
  for path in "${FIXED_PATHS[@]}"; do [ -e "$path" ] || echo "$path"; done >"$record/paths"
  if command -v nft >/dev/null; then nft list tables >"$record/nft-tables" 2>/dev/null; fi
}

spawn() {
  local name=$1
  shift
  # Not the lock's descriptor: a component left behind by a killed supervisor must not keep holding the
  # lock, or the next node could never take it to clean up after them.
  "$@" </dev/null >>"$NODE_DIR/$name.log" 2>&1 8>&- &
  echo $! >"$NODE_DIR/$name.pid"
}

wait_for() {
  local what=$1 timeout=$2
  shift 2
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || { log "timed out after ${timeout}s waiting for $what"; return 1; }
    sleep 0.2
  done
}

tail_logs() {
  local name
  for name in "${components[@]}"; do
    [ -r "$NODE_DIR/$name.log" ] && { echo "--- last lines of $NODE_DIR/$name.log"; tail -n 15 "$NODE_DIR/$name.log"; }
  done >&2
}

start_node() {
  local cp=$1 bins=$2 ca=$1/pki/ca.crt
  for tool in containerd containerd-shim-runc-v2 runc ctr iptables ip sysctl; do
    command -v "$tool" >/dev/null || die "$tool is missing (Debian: apt-get install containerd runc containernetworking-plugins iptables iproute2 procps)"
  done
  [ -x "$CNI_BIN_DIR/bridge" ] || die "$CNI_BIN_DIR/bridge is missing (Debian: containernetworking-plugins)"
  record_host
  mkdir -p "$NODE_DIR"/{bin,cni/net.d,cni/ipam,kubelet,kubelet-pki,pod-logs,containerd}
  # The components read the node dir's copies (their command lines name the node dir, which is how the
  # teardown recognises them).
  cp "$bins"/{kubelet,kube-controller-manager,kube-scheduler,kube-proxy,kubectl} "$NODE_DIR/bin/"
  cp "$cp/kubeconfig" "$NODE_DIR/kubeconfig"
  # Each component as the user a real cluster gives it (testenv's PKI has their client certificates):
  # the kubelet is authorised by the Node authorizer, the others by the bootstrap RBAC roles.
  local server component
  server=$(awk '$1 == "server:" {print $2; exit}' "$cp/kubeconfig")
  for component in kubelet kube-controller-manager kube-scheduler kube-proxy; do
    [ -r "$cp/pki/$component.crt" ] || die "$cp/pki/$component.crt is missing"
    cp "$cp/pki/$component.crt" "$cp/pki/$component.key" "$NODE_DIR/"
    cat >"$NODE_DIR/$component.kubeconfig" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters: [{name: node, cluster: {server: "$server", certificate-authority: "$NODE_DIR/ca.crt"}}]
users: [{name: $component, user: {client-certificate: "$NODE_DIR/$component.crt", client-key: "$NODE_DIR/$component.key"}}]
contexts: [{name: node, context: {cluster: node, user: $component}}]
current-context: node
KUBECONFIG
  done
  cp "$ca" "$NODE_DIR/ca.crt"
  cp "$cp/pki/sa.key" "$NODE_DIR/sa.key"
  local kubectl=("$NODE_DIR/bin/kubectl" --kubeconfig "$NODE_DIR/kubeconfig")

  ip addr add "$NODE_IP/32" dev lo || return 1

  cat >"$NODE_DIR/containerd.toml" <<EOF
version = 2
root = "$NODE_DIR/containerd/root"
state = "$NODE_DIR/containerd/state"
# The opt plugin would create /opt/containerd.
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]
[grpc]
  address = "$NODE_DIR/containerd/containerd.sock"
[ttrpc]
  address = "$NODE_DIR/containerd/containerd.sock.ttrpc"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  # The VM's capability bounding set lacks CAP_SYS_RESOURCE: the -998 the kubelet asks for sandboxes
  # would make runc fail with "can't get final child's PID from pipe: EOF".
  restrict_oom_score_adj = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$NODE_DIR/containerd/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$CNI_BIN_DIR"
    conf_dir = "$NODE_DIR/cni/net.d"
EOF
  cat >"$NODE_DIR/cni/net.d/10-ivschat.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "ivschat-node",
  "plugins": [{
    "type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "ipMasq": true, "hairpinMode": true,
    "ipam": {"type": "host-local", "dataDir": "$NODE_DIR/cni/ipam",
             "ranges": [[{"subnet": "$POD_CIDR"}]], "routes": [{"dst": "0.0.0.0/0"}]}
  }]
}
EOF
  spawn containerd containerd --config "$NODE_DIR/containerd.toml"
  local ctr=(ctr --address "$NODE_DIR/containerd/containerd.sock" -n k8s.io)
  wait_for containerd 30 "${ctr[@]}" version || return 1
  python3 "$here/pause-image.py" --binary "$bins/pause" --name "$PAUSE_IMAGE" --output "$NODE_DIR/pause.oci.tar" || return 1
  "${ctr[@]}" images import "$NODE_DIR/pause.oci.tar" >/dev/null || return 1

  cat >"$NODE_DIR/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# This machine type has cgroup v1 hierarchies; kubelet 1.35+ refuses them unless told otherwise.
failCgroupV1: false
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://$NODE_DIR/containerd/containerd.sock
address: $NODE_IP
port: 10250
readOnlyPort: 0
healthzPort: 0
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $NODE_DIR/ca.crt}
authorization: {mode: Webhook}
podLogsDir: $NODE_DIR/pod-logs
failSwapOn: false
# No eviction surprises from a test machine's disk or memory figures.
evictionHard: {memory.available: "50Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
clusterDomain: cluster.local
serializeImagePulls: false
EOF
  spawn kubelet "$NODE_DIR/bin/kubelet" --config "$NODE_DIR/kubelet.yaml" \
    --kubeconfig "$NODE_DIR/kubelet.kubeconfig" --root-dir "$NODE_DIR/kubelet" --cert-dir "$NODE_DIR/kubelet-pki" \
    --hostname-override "$NODE_NAME" --node-ip "$NODE_IP"
  # Each controller with its own service account's token, as kubeadm runs it.
  spawn kube-controller-manager "$NODE_DIR/bin/kube-controller-manager" \
    --kubeconfig "$NODE_DIR/kube-controller-manager.kubeconfig" \
    --root-ca-file "$NODE_DIR/ca.crt" --service-account-private-key-file "$NODE_DIR/sa.key" \
    --leader-elect=false --secure-port=0 --use-service-account-credentials=true \
    --service-cluster-ip-range "$SERVICE_CIDR" --controllers='*'
  spawn kube-scheduler "$NODE_DIR/bin/kube-scheduler" --kubeconfig "$NODE_DIR/kube-scheduler.kubeconfig" \
    --leader-elect=false --secure-port=0
  cat >"$NODE_DIR/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $NODE_DIR/kube-proxy.kubeconfig}
mode: iptables
hostnameOverride: $NODE_NAME
clusterCIDR: $POD_CIDR
bindAddress: $NODE_IP
healthzBindAddress: ""
metricsBindAddress: ""
# Zero keeps kube-proxy from changing the host's conntrack sysctls; route_localnet stays as it is.
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
iptables: {localhostNodePorts: false}
EOF
  spawn kube-proxy "$NODE_DIR/bin/kube-proxy" --config "$NODE_DIR/kube-proxy.yaml"

  wait_for "node $NODE_NAME Ready" 120 "${kubectl[@]}" wait --for=condition=Ready --timeout=2s "node/$NODE_NAME" || return 1
  # The projected service-account token volume needs both; kube-controller-manager creates them.
  wait_for "the default ServiceAccount" 60 "${kubectl[@]}" -n default get serviceaccount default || return 1
  wait_for "the kube-root-ca.crt ConfigMap" 60 "${kubectl[@]}" -n default get configmap kube-root-ca.crt || return 1
  for name in "${components[@]}"; do
    live_pid "$name" >/dev/null || { log "$name exited"; return 1; }
  done
}

supervise() {
  local cp=$1 mode=${2:---until-eof} started=$SECONDS bins
  [ -r "$cp/kubeconfig" ] || die "$cp is not a control plane data dir (no kubeconfig)"
  [ "$(id -u)" = 0 ] || die "a node needs root"
  bins=$(bash "$here/k8s-bins.sh" --node) || die "building the node binaries failed"
  # Ctrl-C and a closing terminal reach the owner's process group; the teardown must still run.
  trap '' INT HUP QUIT PIPE
  exec 8>"$LOCK"
  if ! flock -n 8; then
    log "waiting for the node lock $LOCK (another node runs on this machine)"
    flock 8
  fi
  echo locked
  teardown || die "the host is not clean and the teardown failed"
  # Only now, with the lock held and the host clean, does a TERM mean "tear down".
  local stop=0
  trap 'stop=1' TERM
  if ! start_node "$cp" "$bins"; then
    tail_logs
    teardown
    die "the node did not start"
  fi
  echo $$ >"$NODE_DIR/supervisor.pid"
  log "node $NODE_NAME Ready in $((SECONDS - started))s"
  echo ready
  if [ "$mode" = --until-term ]; then
    while [ $stop = 0 ]; do sleep 1; done
  else
    while [ $stop = 0 ] && read -r _; do :; done
  fi
  teardown
}

# Everything above is definitions; bash parses this function whole before it runs, so a checkout that
# changes this file while a node runs (its supervisor lives for the whole run) cannot derail the teardown.
main() {
  case ${1:-} in
    run) shift; supervise "$@" ;;
    down)
      # Only the node of the given control plane (a person's, from `testenv down`): never a test binary's
      # node that happens to run now.
      cp=${2:?usage: node.sh down CONTROL_PLANE_DIR}
      pid=$(live_pid supervisor) && grep -qaF -- "$cp" "/proc/$pid/cmdline" 2>/dev/null || {
        log "no node of $cp is running"
        exit 0
      }
      kill -TERM "$pid"
      while kill -0 "$pid" 2>/dev/null; do sleep 0.2; done
      [ ! -e "$NODE_DIR" ] || die "the node's teardown did not finish (see above)"
      ;;
    teardown)
      exec 8>"$LOCK"
      flock 8
      teardown
      ;;
    dirty)
      out=$(leftovers)
      [ -n "$out" ] && { printf '%s\n' "$out"; exit 0; }
      exit 1
      ;;
    *) die "usage: node.sh run CONTROL_PLANE_DIR [--until-eof|--until-term] | down CONTROL_PLANE_DIR | teardown | dirty" ;;
  esac
}

main "$@"; exit
