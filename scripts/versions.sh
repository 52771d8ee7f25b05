# shellcheck shell=bash
# shellcheck disable=SC2034  # this file only defines pins and helpers for the scripts that source it
# Pinned versions and names for kind mode, sourced by every scripts/*.sh. Move a pin only with a
# reason in the commit message; names follow manifests/README.md.
set -o errexit -o nounset -o pipefail

# --- tools ----------------------------------------------------------------------------------
KIND_VERSION="v0.33.0"
# Images built for kind v0.33.0 (its release notes; use the digest, the tag alone can point to a
# build for another kind release). 1.35: Seldon Core v1 1.19 is validated up to Kubernetes 1.35.
KIND_NODE_IMAGE="kindest/node:v1.35.8@sha256:07b2536e30b803ed61d1677a79df6115f798ce64c80f9e22f6ed45afd09323c0"
KUBECTL_VERSION="v1.35.9"   # same minor as the node image (kubectl supports ±1 minor)
HELM_VERSION="v3.21.2"      # Helm 3; the charts below install with it
# NOTE: nvkind publishes no tagged releases (its README installs @latest); optional GPU path only.
NVKIND_VERSION="latest"

# --- cluster and local registry -------------------------------------------------------------
CLUSTER_NAME="fraud-lab"
KUBE_CONTEXT="kind-${CLUSTER_NAME}"
REGISTRY_NAME="kind-registry"
REGISTRY_PORT="5001"
REGISTRY_HOST="localhost:${REGISTRY_PORT}"
REGISTRY_IMAGE="registry:3"
# NodePorts mapped to 127.0.0.1 (manifests/README.md, "Host ports"): MLflow, model REST, model
# gRPC, Prometheus, Grafana.
HOST_PORTS=(30500 30080 30081 30090 30030)

# --- Helm charts (installed by deploy.sh / gpu-cluster.sh) -----------------------------------
SELDON_CHART_REPO="https://storage.googleapis.com/seldon-charts"
SELDON_CHART="seldon-core-operator"
SELDON_CHART_VERSION="1.19.0"        # Seldon Core v1, BSL-1.1: free for non-production use
SELDON_RELEASE="seldon-core"
SELDON_NAMESPACE="seldon-system"

KPS_CHART_REPO="https://prometheus-community.github.io/helm-charts"
KPS_CHART="kube-prometheus-stack"
KPS_CHART_VERSION="91.5.0"
KPS_RELEASE="kube-prometheus-stack"
KPS_NAMESPACE="monitoring"

# KEDA (Apache-2.0), lab 16: Seldon's kedaSpec becomes a ScaledObject that scales the model on its
# request rate from Prometheus. Chart 2.20.2 ships appVersion 2.20.2 (kedacore/charts
# keda/Chart.yaml). Installed before seldon-core: the operator reads ScaledObjects (keda.enabled).
KEDA_CHART_REPO="https://kedacore.github.io/charts"
KEDA_CHART="keda"
KEDA_CHART_VERSION="2.20.2"
KEDA_RELEASE="keda"
KEDA_NAMESPACE="keda"

# Argo Workflows v4.1 (Apache-2.0): the pipeline DAG and the weekly retraining CronWorkflow. Chart
# 2.0.1 ships appVersion v4.1.0 (argo-helm charts/argo-workflows/Chart.yaml).
ARGO_CHART_REPO="https://argoproj.github.io/argo-helm"
ARGO_CHART="argo-workflows"
ARGO_CHART_VERSION="2.0.1"
ARGO_APP_VERSION="v4.1.0"
ARGO_RELEASE="argo-workflows"
ARGO_NAMESPACE="argo"

# KubeRay v1.7 (Apache-2.0): the operator of lab 14's RayJob (RayCluster, RayJob, RayService CRDs).
# ray-project/kuberay helm-chart/kuberay-operator/Chart.yaml at tag v1.7.0: chart 1.7.0, image
# quay.io/kuberay/operator:v1.7.0 (values.yaml); the chart repository is the project's kuberay-helm.
KUBERAY_CHART_REPO="https://ray-project.github.io/kuberay-helm/"
KUBERAY_CHART="kuberay-operator"
KUBERAY_CHART_VERSION="1.7.0"
KUBERAY_RELEASE="kuberay-operator"
KUBERAY_NAMESPACE="ray-system"

NVDP_CHART_REPO="https://nvidia.github.io/k8s-device-plugin"
NVDP_CHART="nvidia-device-plugin"
NVDP_CHART_VERSION="0.19.2"
NVDP_RELEASE="nvidia-device-plugin"
NVDP_NAMESPACE="nvidia"

# --- the app image ----------------------------------------------------------------------------
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
APP_NAMESPACE="fraud-lab"
APP_IMAGE_REPO="${REGISTRY_HOST}/fraud-lab/app"
# The package version (pyproject.toml [project] version), recorded as an image label. The image
# TAG is the content: see app_image_tag (never `latest`, never a fixed tag that a rebuild reuses).
APP_VERSION="$(sed -n 's/^version *= *"\([^"]*\)".*/\1/p' "${REPO_ROOT}/pyproject.toml" | head -n 1)"
# Where make images records the tag it pushed, for make deploy (git-ignored).
APP_IMAGE_RECORD="${REPO_ROOT}/.app-image"

# --8<-- [start:image-tag]
# The build context (.dockerignore) takes in reference_app/ whole: a new module that is not yet
# committed ships in the image, so it makes the tree dirty too (untracked, not git-ignored).
APP_CONTEXT_PATHS=(reference_app pyproject.toml README.md requirements.lock)
app_untracked() {
  git -C "${REPO_ROOT}" ls-files --others --exclude-standard -- "${APP_CONTEXT_PATHS[@]}" 2>/dev/null
}

# app_commit: the git commit of the work tree, `-dirty` when tracked files changed or the build
# context has untracked files, else unknown.
app_commit() {
  local commit
  commit="$(git -C "${REPO_ROOT}" rev-parse HEAD 2>/dev/null)" || { echo unknown; return; }
  if [[ -n "$(git -C "${REPO_ROOT}" status --porcelain --untracked-files=no 2>/dev/null)$(app_untracked)" ]]; then
    commit="${commit}-dirty"
  fi
  echo "${commit}"
}

# app_tree_diff: what makes the tree dirty: the diff of tracked files, then each untracked file of
# the build context with its name and content.
app_tree_diff() {
  local file
  git -C "${REPO_ROOT}" diff HEAD
  while IFS= read -r file; do
    [[ -n "${file}" ]] || continue
    printf 'untracked %s\n' "${file}"
    cat "${REPO_ROOT}/${file}"
  done < <(app_untracked)
}

# app_image_tag: the image tag for the current tree: git-<12 hex>, plus -dirty-<hash of the diff>
# when the tree is dirty (app_commit), so every different tree gets a different tag and a rebuilt image
# reaches the pods even with imagePullPolicy IfNotPresent.
app_image_tag() {
  local commit
  commit="$(app_commit)"
  if [[ "${commit}" == unknown ]]; then
    echo "nogit-$(date -u +%Y%m%d%H%M%S)"
  elif [[ "${commit}" == *-dirty ]]; then
    echo "git-${commit:0:12}-dirty-$(app_tree_diff | sha256sum | cut -c1-8)"
  else
    echo "git-${commit:0:12}"
  fi
}
# --8<-- [end:image-tag]

# --8<-- [start:image-labels]
# app_image_labels: the build's labels, one KEY=VALUE a line (scripts/images.sh and
# podman-image.sh pass each as --label): the revision (app_commit) and the serving runtime's
# versions that requirements.lock pins, from `fraudlab image-labels` — lab 08's image_labels when
# FRAUD_LAB_CODE names its folder, which the label io.fraud-lab.lab-code records.
app_image_labels() {
  local fraudlab="${REPO_ROOT}/.venv/bin/fraudlab"
  [[ -x "${fraudlab}" ]] || die "no ${fraudlab}: the image's labels come from the app's CLI" "make install"
  "${fraudlab}" image-labels --commit "$(app_commit)" --lock "${REPO_ROOT}/requirements.lock"
}

# app_label_args: the build's label flags in the global array LABEL_ARGS (`--label` and one
# KEY=VALUE line of app_image_labels, each an element) and the lines in APP_LABELS; stops with
# fraudlab's message when image_labels fails (a TODO(lab-08) not written yet, a missing pin).
app_label_args() {
  local line
  APP_LABELS="$(app_image_labels)" ||
    die "fraudlab image-labels: ${APP_LABELS:-failed}" "FRAUD_LAB_CODE=${FRAUD_LAB_CODE:-} .venv/bin/fraudlab image-labels --commit $(app_commit)"
  LABEL_ARGS=()
  while IFS= read -r line; do
    if [[ -n "${line}" ]]; then LABEL_ARGS+=(--label "${line}"); fi
  done <<<"${APP_LABELS}"
}
# --8<-- [end:image-labels]

# --- helpers ----------------------------------------------------------------------------------
# One line per message; `die` exits with the message and, optionally, the command to run next.
say() { printf '%s\n' "$*"; }
step() { printf '\n==> %s\n' "$*"; }
warn() { printf '! %s\n' "$*" >&2; }
die() {
  printf '✗ %s\n' "$1" >&2
  if [[ $# -gt 1 ]]; then printf '  next: %s\n' "$2" >&2; fi
  exit 1
}

# docker_running: true when the docker client reaches a daemon.
docker_running() { command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; }

require_docker() {
  command -v docker >/dev/null 2>&1 || die "docker is not installed" "install Docker (https://docs.docker.com/get-docker/), then: make doctor"
  docker_running || die "the Docker daemon is not running (docker info failed)" "start Docker (Docker Desktop, or: sudo systemctl start docker), then: make doctor"
}

require_tool() {
  command -v "$1" >/dev/null 2>&1 || die "$1 is not installed" "make doctor   (prints the install command)"
}

# require_kind_api: stop unless context KUBE_CONTEXT exists, points at a local kind API server
# and answers — never any other cluster (kubectl without a context may reach localhost:8080,
# which is MLServer's port in local mode). Sets KUBE_SERVER.
require_kind_api() {
  require_tool kubectl
  if ! kubectl config get-contexts -o name 2>/dev/null | grep -qx "${KUBE_CONTEXT}"; then
    die "no kubectl context ${KUBE_CONTEXT} in your kubeconfig (refusing to use any other cluster)" "make cluster"
  fi
  KUBE_SERVER="$(kubectl --context "${KUBE_CONTEXT}" config view --minify -o jsonpath='{.clusters[0].cluster.server}' 2>/dev/null || true)"
  if [[ "${KUBE_SERVER}" != https://127.0.0.1:* && "${KUBE_SERVER}" != https://localhost:* ]]; then
    die "context ${KUBE_CONTEXT} points at '${KUBE_SERVER:-nothing}', not a local kind API server" "make cluster-down && make cluster"
  fi
  kubectl --context "${KUBE_CONTEXT}" get --raw /readyz >/dev/null 2>&1 ||
    die "the API server of ${KUBE_CONTEXT} (${KUBE_SERVER}) does not answer" "docker start ${CLUSTER_NAME}-control-plane ${CLUSTER_NAME}-worker ${CLUSTER_NAME}-worker2, or: make cluster"
}

# cluster_exists: true when kind knows the fraud-lab cluster.
cluster_exists() { kind get clusters 2>/dev/null | grep -qx "${CLUSTER_NAME}"; }
