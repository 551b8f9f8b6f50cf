# ivschat-operator: the two commands a newcomer needs are `make demo` and `make test`.
# Every target does its own setup (Kubernetes binaries, AWS CLI) and caches it under ~/.cache.

SHELL := /bin/bash
CACHE_DIR ?= $(HOME)/.cache/ivschat-operator
export IVSCHAT_CACHE_DIR := $(CACHE_DIR)
CARGO ?= cargo

.PHONY: test lint unit k8s-bins node-bins awscli lambda-rie helm release image crds cluster-up cluster-down demo demo-down bench help

help:
	@echo "make demo         start a local control plane + emulator + operator, apply the examples, show kubectl ivschat"
	@echo "                  (token, tail) and print the KUBECONFIG, PATH and AWS_* lines to paste; make demo-down stops it"
	@echo "                  IVSCHAT_DEMO_PORT (4510), IVSCHAT_DEMO_STATE_DIR: a second demo beside the first"
	@echo "make test         lint and run every test (builds what it needs the first time)"
	@echo "make cluster-up   start a local kube-apiserver + etcd; prints export KUBECONFIG=..."
	@echo "                  WITH_NODE=1: also this machine's one node (kubelet, containerd, ...; root), so Pods run"
	@echo "make cluster-down stop it and remove its data"
	@echo "make crds         regenerate crds/ from the Rust types"
	@echo "make bench        run the benchmarks (release build) and print their figures"
	@echo "make release      the release build the Dockerfile uses (target/release/ivschat-operator)"
	@echo "make image        the image as an archive, no container engine (target/image/; IMAGE=name:tag)"
	@echo "make helm         build the pinned helm into the cache (tests/cluster/deploy.rs renders the chart with it)"
	@echo "make lambda-rie   build the Lambda RIE and install awslambdaric into the cache (message review handlers, offline)"

## Kubernetes binaries (kube-apiserver, etcd, kubectl) of the pinned version, built once and cached.
k8s-bins:
	@bash hack/k8s-bins.sh >/dev/null

## What the node tier (tests/node, hack/node.sh) needs: the Debian packages (hack/node-deps.sh, as root) and
## kubelet, kube-controller-manager, kube-scheduler, kube-proxy and the pause binary (hack/k8s-bins.sh --node).
## Without root it only says so; the node tier then reports itself as not run.
node-bins:
	@bash hack/node-deps.sh
	@if [ "$$(id -u)" = 0 ]; then bash hack/k8s-bins.sh --node >/dev/null; fi

## The AWS CLI v1 from PyPI, in a cached venv (its ivschat examples are run against the emulator).
awscli:
	@bash hack/awscli.sh >/dev/null

## The AWS Lambda Runtime Interface Emulator (built from its Go module) and awslambdaric (PyPI), cached: the
## message review handlers of tests/emulator/review.rs run under them.
lambda-rie:
	@bash hack/lambda-rie.sh >/dev/null

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

# The last lines add up every test binary's result line, so the run ends on one total (cargo's own last
# line is the doc-tests' count, usually 0), then say whether the node tier ran: where it cannot (not root,
# no cgroups), tests/node prints `node tier: NOT RUN: <why>` and no result line, so none of its tests counts.
test: k8s-bins node-bins awscli lambda-rie helm lint
	@log=$$(mktemp); set -o pipefail; \
	$(CARGO) test --workspace --locked --no-fail-fast 2>&1 | tee "$$log"; status=$$?; \
	awk '/^test result:/ { passed += $$4; failed += $$6 } \
	     /^node tier:/ { node = $$0 } \
	     END { printf "tests: %d passed, %d failed\n", passed, failed; \
	           print (node != "" ? node : "node tier: NO RESULT: tests/node printed no summary (not built, or it crashed)") }' "$$log"; \
	rm -f "$$log"; exit $$status

TESTENV = $(CARGO) run --quiet --locked -p testenv --

## A control plane for a person: `eval "$$(make -s cluster-up)"` sets KUBECONFIG and PATH (kubectl).
cluster-up: k8s-bins $(if $(WITH_NODE),node-bins)
	@$(TESTENV) up $(if $(WITH_NODE),--with-node)

cluster-down:
	@$(TESTENV) down

demo: k8s-bins
	@bash hack/demo.sh up

demo-down:
	@bash hack/demo.sh down

crds:
	$(CARGO) run --quiet --locked -- crds > crds/ivschat.dev.yaml
	cp crds/ivschat.dev.yaml deploy/base/crds.yaml
	cp crds/ivschat.dev.yaml deploy/helm/ivschat-operator/crds/ivschat.dev.yaml

## The release build (the Dockerfile runs exactly this): target/release/ivschat-operator and kubectl-ivschat.
release:
	$(CARGO) build --release --locked --bin ivschat-operator --bin kubectl-ivschat

## The Dockerfile's image built without a container engine or registry (hack/image.py), for docker load,
## podman load and ctr images import: target/image/ivschat-operator-<version>.oci.tar; IMAGE=name:tag renames it.
image: release
	@python3 hack/image.py $(if $(IMAGE),--name '$(IMAGE)')

## helm of the pinned version (hack/helm.sh), built from its Go module and cached; tests/cluster/deploy.rs uses it.
helm:
	@bash hack/helm.sh >/dev/null

bench:
	$(CARGO) bench --locked --bench emulator
	$(CARGO) bench --locked --bench operator
