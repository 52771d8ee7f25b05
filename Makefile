# Fraud Lab — `make help` lists the targets. Python work goes through .venv and the `fraudlab` CLI.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# checkov downgrades packages the app needs (STACK.md): it gets a venv of its own.
TOOLS := .venv-tools
TOOLS_STAMP := $(TOOLS)/.installed
CHECKOV_VERSION := 3.3.30
MODEL ?= logistic_regression
DAY ?= 2018-08-08
PYTEST_ARGS ?=
TORCH_VARIANT ?= cpu
KEEP_REGISTRY ?=
OVERLAY ?= kind

.PHONY: help install tools demo up down test test-fast mlflow serve simulate validate features train replay report docs docs-serve bench clean clean-data \
        doctor cluster cluster-down gpu-cluster images deploy undeploy secrets

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml requirements.lock
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.11 or run make PYTHON=/path/to/python3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first, exactly pinned: a looser spec pulls a multi-GB CUDA build (see STACK.md).
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet --constraint requirements.lock --editable '.[test]'
	@touch $(STAMP)

install: $(STAMP) ## Create .venv and install the package, pinned (≈ 5 min the first time)

$(TOOLS_STAMP):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --upgrade pip
	$(TOOLS)/bin/pip install --quiet checkov==$(CHECKOV_VERSION)
	@touch $(TOOLS_STAMP)

tools: $(TOOLS_STAMP) ## Create .venv-tools with checkov (the manifests' second opinion)

demo: $(STAMP) ## The whole system locally: data → features → 3 models → champion → MLServer → replay → report
	$(BIN)/fraudlab demo

test: $(STAMP) $(TOOLS_STAMP) ## Run every test (unit, data, static manifests, integration with real MLflow and MLServer)
	@$(BIN)/pytest $(PYTEST_ARGS); rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "error: pytest collected no tests"; exit 1; fi; exit $$rc

test-fast: $(STAMP) ## Run the tests not marked slow
	$(BIN)/pytest -m "not slow" $(PYTEST_ARGS)

up: $(STAMP) ## Start the local stack in the background: MLflow :5000, MLServer :8080 with the champion
	$(BIN)/fraudlab up

down: $(STAMP) ## Stop the local stack started by `make up`
	$(BIN)/fraudlab down

mlflow: $(STAMP) ## Run a local MLflow server on 127.0.0.1:5000 (foreground)
	$(BIN)/fraudlab mlflow

serve: $(STAMP) ## Serve models:/fraud-detector@champion with MLServer on 127.0.0.1:8080 (needs `make mlflow`)
	$(BIN)/fraudlab serve

simulate: $(STAMP) ## Simulate the handbook's transactions into data/raw
	$(BIN)/fraudlab simulate

validate: $(STAMP) ## Check data/raw against the data contract; quarantine bad rows
	$(BIN)/fraudlab validate

features: $(STAMP) ## Compute the 15 features into data/features
	$(BIN)/fraudlab features

train: $(STAMP) ## Train MODEL=logistic_regression|random_forest|mlp and register it (needs `make mlflow`)
	$(BIN)/fraudlab train --model $(MODEL)

replay: $(STAMP) ## Replay DAY=2018-08-08 against the server; check skew and latency
	$(BIN)/fraudlab replay --day $(DAY)

report: $(STAMP) ## Write the HTML report for the replayed DAY
	$(BIN)/fraudlab report --day $(DAY)

docs: $(STAMP) ## Build the course site into site/ (mkdocs build --strict)
	$(BIN)/mkdocs build --strict

docs-serve: $(STAMP) ## Serve the course site on http://127.0.0.1:8000 with live reload
	$(BIN)/mkdocs serve --dev-addr 127.0.0.1:8000

bench: $(STAMP) ## Throughput and latency benchmarks (ratios against simple references)
	$(BIN)/python -m reference_app.bench

# --- kind mode (the course's cluster): scripts/, versions pinned in scripts/versions.sh ---------
doctor: ## kind mode: check Docker, kind/kubectl/helm versions, CPUs, memory, inotify, ports, cgroup v2, GPU
	@scripts/doctor.sh

cluster: ## kind mode: create the fraud-lab cluster, the registry on localhost:5001 and the namespaces
	@scripts/cluster-up.sh

cluster-down: ## kind mode: delete the cluster and the registry (KEEP_REGISTRY=1 keeps the registry)
	@scripts/cluster-down.sh $(if $(KEEP_REGISTRY),--keep-registry)

gpu-cluster: ## kind mode, optional: the cluster with the host's NVIDIA GPUs (nvkind) and the device plugin
	@scripts/gpu-cluster.sh

images: ## kind mode: build the app image and push it to localhost:5001 (TORCH_VARIANT=cu130 for CUDA)
	@TORCH_VARIANT="$(TORCH_VARIANT)" scripts/images.sh

secrets: ## kind mode: write random credentials to manifests/overlays/kind/secrets/*.env if missing
	@scripts/secrets.sh

deploy: ## kind mode: install the pinned Helm charts and the kind overlay (OVERLAY=kind-gpu for GPUs), wait until ready
	@OVERLAY="$(OVERLAY)" scripts/deploy.sh

undeploy: ## kind mode: remove the kind overlay and the Helm releases (the cluster stays)
	@OVERLAY="$(OVERLAY)" scripts/undeploy.sh

clean-data: ## Delete data/ (datasets, local MLflow state, reports)
	rm -rf data

clean: clean-data ## Delete data/ and .venv
	rm -rf $(VENV)
