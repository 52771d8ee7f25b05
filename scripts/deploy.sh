#!/usr/bin/env bash
# make deploy: the third-party operators from pinned Helm charts (Seldon Core v1 operator,
# kube-prometheus-stack), the Secrets' env files, then the kustomize overlay manifests/overlays/kind;
# waits for each workload with a timeout and, on a timeout, prints what is not ready and the
# commands to find out why.
#
# Every kubectl and helm call names the context kind-fraud-lab: without it, kubectl falls back to
# the current context, or with no kubeconfig to localhost:8080 (MLServer's port in local mode).
#
# Timeouts (seconds) can be raised for slow machines, e.g. `make deploy WAIT_MODEL=1800`.
set -o errexit -o nounset -o pipefail
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/versions.sh
source "${SCRIPT_DIR}/versions.sh"

# OVERLAY=kind-gpu (after make gpu-cluster) adds the gpu component to the kind overlay.
OVERLAY_NAME="${OVERLAY:-kind}"
[[ "${OVERLAY_NAME}" =~ ^kind(-[a-z0-9-]+)?$ ]] || die "OVERLAY=${OVERLAY_NAME}: expected kind or kind-<variant>" "make deploy OVERLAY=kind"
OVERLAY="${REPO_ROOT}/manifests/overlays/${OVERLAY_NAME}"
NAMESPACES_DIR="${REPO_ROOT}/manifests/base/namespaces"
HELM_VALUES="${REPO_ROOT}/manifests/helm"
WAIT_STORE="${WAIT_STORE:-300}"    # PostgreSQL, S3 store, bucket Job, MLflow
WAIT_MODEL="${WAIT_MODEL:-900}"    # the SeldonDeployment: needs a trained, promoted champion
NS="${APP_NAMESPACE}"

k() { kubectl --context "${KUBE_CONTEXT}" "$@"; }
h() { helm --kube-context "${KUBE_CONTEXT}" "$@"; }

# --- preflight: the right cluster, explicitly ------------------------------------------------
require_kind_api
require_tool helm
[[ -d "${OVERLAY}" ]] || die "${OVERLAY} is missing" "git pull (the overlay comes with the repository)"
say "cluster ${KUBE_CONTEXT} at ${KUBE_SERVER}"

step "Namespaces (manifests/base/namespaces)"
k apply -k "${NAMESPACES_DIR}"

step "Seldon Core v1 operator: chart ${SELDON_CHART} ${SELDON_CHART_VERSION} (BSL-1.1, non-production use)"
h upgrade --install "${SELDON_RELEASE}" "${SELDON_CHART}" --repo "${SELDON_CHART_REPO}" \
  --version "${SELDON_CHART_VERSION}" --namespace "${SELDON_NAMESPACE}" \
  --values "${HELM_VALUES}/seldon-core-operator.values.yaml" --wait --timeout 5m

step "kube-prometheus-stack ${KPS_CHART_VERSION}"
h upgrade --install "${KPS_RELEASE}" "${KPS_CHART}" --repo "${KPS_CHART_REPO}" \
  --version "${KPS_CHART_VERSION}" --namespace "${KPS_NAMESPACE}" \
  --values "${HELM_VALUES}/kube-prometheus-stack.values.yaml" --wait --timeout 10m

step "Secrets' env files (scripts/secrets.sh: kept if present)"
"${SCRIPT_DIR}/secrets.sh"

step "The fraud system (manifests/overlays/${OVERLAY_NAME})"
k apply -k "${OVERLAY}"

# --- wait, with timeouts -------------------------------------------------------------------------
NOT_READY=()

# debug_hints KIND/NAME: the commands that show why an object is not ready.
debug_hints() {
  local logs="$1"
  # A SeldonDeployment has no logs of its own: its pods carry seldon-deployment-id=<name>.
  if [[ "$1" == seldondeployment/* ]]; then logs="-l seldon-deployment-id=${1#*/}"; fi
  say "    kubectl --context ${KUBE_CONTEXT} -n ${NS} describe $1"
  say "    kubectl --context ${KUBE_CONTEXT} -n ${NS} logs ${logs} --all-containers --tail=50"
  say "    kubectl --context ${KUBE_CONTEXT} -n ${NS} get events --sort-by=.lastTimestamp | tail -n 20"
}

# wait_for LABEL TIMEOUT KUBECTL-ARGS...: one ✓ or ✗ line; a ✗ is remembered for the summary.
wait_for() {
  local label="$1" timeout="$2"
  shift 2
  if k -n "${NS}" "$@" --timeout="${timeout}s" >/dev/null 2>&1; then
    say "✓ ${label}"
  else
    say "✗ ${label}: not ready after ${timeout}s"
    NOT_READY+=("${label}")
  fi
}

step "Waiting for the workloads (namespace ${NS})"
wait_for "statefulset/postgres" "${WAIT_STORE}" rollout status statefulset/postgres
wait_for "statefulset/s3" "${WAIT_STORE}" rollout status statefulset/s3
if k -n "${NS}" get job/s3-buckets >/dev/null 2>&1; then
  wait_for "job/s3-buckets" "${WAIT_STORE}" wait --for=condition=complete job/s3-buckets
else
  say "! job/s3-buckets: not found (already finished and removed by its TTL?)"
fi
wait_for "deployment/mlflow" "${WAIT_STORE}" rollout status deployment/mlflow
wait_for "seldondeployment/fraud-detector" "${WAIT_MODEL}" \
  wait --for=jsonpath='{.status.state}'=Available seldondeployment/fraud-detector

echo
if [[ ${#NOT_READY[@]} -gt 0 ]]; then
  say "Not ready: ${NOT_READY[*]}"
  k -n "${NS}" get pods,jobs,statefulsets,deployments,seldondeployments -o wide 2>/dev/null || true
  echo
  say "To find out why:"
  for object in "${NOT_READY[@]}"; do
    say "  ${object}"
    debug_hints "${object}"
  done
  say "Common causes: ErrImagePull (run make images; never :latest), Pending pods (make doctor:"
  say "CPU/memory), a model with no champion yet (check the train and promote Jobs)."
  say "Fix, then run make deploy again (it is safe to repeat)."
  exit 1
fi
say "Fraud Lab is deployed on ${KUBE_CONTEXT}:"
say "  MLflow      http://127.0.0.1:30500"
say "  model REST  http://127.0.0.1:30080/v2/models/fraud-detector/ready   (gRPC 127.0.0.1:30081)"
say "  Prometheus  http://127.0.0.1:30090"
say "  Grafana     http://127.0.0.1:30030   (user admin; password: kubectl --context ${KUBE_CONTEXT} -n ${KPS_NAMESPACE} get secret ${KPS_RELEASE}-grafana -o jsonpath='{.data.admin-password}' | base64 -d)"
say "Next: the labs (make lab-N TARGET=cluster); remove with make undeploy, everything with make cluster-down"
