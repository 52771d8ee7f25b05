#!/usr/bin/env bash
# make deploy: the third-party operators from pinned Helm charts (Seldon Core v1 operator,
# kube-prometheus-stack, Argo Workflows' controller), the Secrets' env files, then the kustomize
# overlay manifests/overlays/kind with the app image that make images built; then runs the
# pipeline (an Argo Workflow from WorkflowTemplate fraud-pipeline) and waits for the model. Each
# wait has a timeout; on a timeout it prints what is not ready and the commands to find out why.
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
WAIT_STORE="${WAIT_STORE:-300}"    # PostgreSQL, S3 store, bucket Job, MLflow
WAIT_MODEL="${WAIT_MODEL:-900}"    # the SeldonDeployment, once the pipeline promoted a champion
WAIT_PIPELINE="${WAIT_PIPELINE:-3600}"   # the whole pipeline Workflow (2 cores: ≈ 10–20 min)
WAIT_TUNE="${WAIT_TUNE:-2400}"     # lab 14's RayJob tune (WITH=tuning): a RayCluster and the search
NS="${APP_NAMESPACE}"

k() { kubectl --context "${KUBE_CONTEXT}" "$@"; }

# --- preflight: the right cluster, explicitly ------------------------------------------------
require_kind_api
require_tool helm
[[ -d "${OVERLAY}" ]] || die "${OVERLAY} is missing" "git pull (the overlay comes with the repository)"
[[ -f "${REPO_ROOT}/manifests/components/app-image/kustomization.yaml" ]] ||
  die "no app image chosen yet (manifests/components/app-image is written by make images)" "make images"
say "cluster ${KUBE_CONTEXT} at ${KUBE_SERVER}"

step "Namespaces (manifests/base/namespaces)"
k apply -k "${NAMESPACES_DIR}"

# The operators, from pinned charts; a release at its pinned version is left alone.
"${SCRIPT_DIR}/helm-releases.sh" keda seldon-core argo-workflows kube-prometheus-stack kuberay-operator

step "Secrets' env files (scripts/secrets.sh: kept if present)"
"${SCRIPT_DIR}/secrets.sh"

# Labs 04, 10, 14 and 18 add the feature store (Redis, Feast's server, a Job), the canary (three model
# pods and the router: ≈ 2.5 GiB of memory requests), the tuning RayJob (a Ray head and worker:
# ≈ 3.3 GiB) and the review page (≈ 160 MiB): make deploy leaves them out unless WITH names them
# (make deploy WITH="features canary tuning review"); their labs apply them (labs/reference.py). The
# overlay's objects carry fraud-lab.io/optional=<name> (their kustomizations); kubectl apply -l
# applies only the objects its selector matches, and `notin` matches objects without the label.
WITH="${WITH:-}"
optional=()
for name in features canary tuning review; do
  if [[ " ${WITH} " != *" ${name} "* ]]; then optional+=("${name}"); fi
done
selector=()
if ((${#optional[@]})); then selector=(-l "fraud-lab.io/optional notin ($(IFS=,; echo "${optional[*]}"))"); fi
# Lab 14's RayJob tunes on the pipeline's features and registers in MLflow: it is applied after
# the pipeline (below), never with the first apply (a RayJob runs once; its RayCluster would take
# the memory the pipeline needs).
first_optional=("${optional[@]}")
if [[ " ${WITH} " == *" tuning "* ]]; then first_optional+=(tuning); fi
first=(-l "fraud-lab.io/optional notin ($(IFS=,; echo "${first_optional[*]}"))")

step "The fraud system (manifests/overlays/${OVERLAY_NAME}${WITH:+, with ${WITH}})"
k apply -k "${OVERLAY}" "${first[@]}"

# The ct-controller's and workflow pods' NetworkPolicies allow the API server by address range
# (manifests/base/security/networkpolicy.continuous-training.yaml): check this cluster's.
api_ip="$(k get endpoints kubernetes -n default -o jsonpath='{.subsets[0].addresses[0].ip}' 2>/dev/null || true)"
if [[ -n "${api_ip}" && ! "${api_ip}" =~ ^172\.(1[6-9]|2[0-9]|3[01])\. ]]; then
  warn "the API server is at ${api_ip}, outside 172.16.0.0/12 that the NetworkPolicies allow: workflow steps cannot report their results"
  warn "edit the ipBlock in manifests/base/security/networkpolicy.continuous-training.yaml to ${api_ip}/32, then make deploy"
fi

# --- wait, with timeouts -------------------------------------------------------------------------
NOT_READY=()

# debug_hints KIND/NAME: the commands that show why an object is not ready.
debug_hints() {
  local logs="$1"
  # A SeldonDeployment has no logs of its own: its pods carry seldon-deployment-id=<name>.
  if [[ "$1" == seldondeployment/* ]]; then logs="-l seldon-deployment-id=${1#*/}"; fi
  # A RayJob's driver output is in the log of its submitter Job, which has the RayJob's name
  # (KubeRay v1.7.0 rayjob_controller.go createNewK8sJob).
  if [[ "$1" == rayjob/* ]]; then logs="job/${1#*/}"; fi
  # The pipeline's steps are pods of Workflows made from the fraud-pipeline template.
  if [[ "$1" == pipeline ]]; then
    say "    kubectl --context ${KUBE_CONTEXT} -n ${NS} get workflows"
    say "    kubectl --context ${KUBE_CONTEXT} -n ${NS} logs -l workflows.argoproj.io/workflow-template=fraud-pipeline -c main --tail=30"
    return
  fi
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
wait_for "deployment/mlflow" "${WAIT_STORE}" rollout status deployment/mlflow

step "The pipeline: an Argo Workflow from WorkflowTemplate fraud-pipeline (scripts/run-pipeline.sh)"
# Every step reuses what is up to date, so a rerun of make deploy costs little.
if WAIT_PIPELINE="${WAIT_PIPELINE}" "${SCRIPT_DIR}/run-pipeline.sh" fraud-pipeline; then
  say "✓ pipeline"
else
  NOT_READY+=("pipeline")
fi
wait_for "seldondeployment/fraud-detector" "${WAIT_MODEL}" \
  wait --for=jsonpath='{.status.state}'=Available seldondeployment/fraud-detector

# Lab 04's feature store: the Job feature-store exports the features dataset, which exists only
# once the pipeline ran (the Job that the apply above started may have failed for want of it):
# run it afresh (a Job's pod template cannot change, so delete it and apply the overlay again).
if [[ " ${WITH} " == *" features "* ]]; then
  step "The feature store: Job feature-store on the pipeline's features (manifests/base/features)"
  k -n "${NS}" delete job feature-store --ignore-not-found >/dev/null
  k apply -k "${OVERLAY}" "${first[@]}" >/dev/null
  wait_for "deployment/feature-server" "${WAIT_STORE}" rollout status deployment/feature-server
  wait_for "job/feature-store" "${WAIT_STORE}" wait --for=condition=complete job/feature-store
fi

# Lab 14's tuning: the RayJob tune runs `fraudlab tune` once (KubeRay never reruns a finished
# RayJob): delete any earlier one, apply it, and wait until KubeRay says the job is Complete (its
# status stays on the RayJob after its RayCluster is deleted: shutdownAfterJobFinishes).
if [[ " ${WITH} " == *" tuning "* ]]; then
  step "The tuning: RayJob tune, fraudlab tune on a RayCluster (manifests/base/tuning)"
  k -n "${NS}" delete rayjob tune --ignore-not-found >/dev/null
  k apply -k "${OVERLAY}" "${selector[@]}" >/dev/null
  wait_for "rayjob/tune" "${WAIT_TUNE}" wait --for=jsonpath='{.status.jobDeploymentStatus}'=Complete rayjob/tune
fi

echo
if [[ ${#NOT_READY[@]} -gt 0 ]]; then
  say "Not ready: ${NOT_READY[*]}"
  k -n "${NS}" get pods,workflows,statefulsets,deployments,seldondeployments -o wide 2>/dev/null || true
  echo
  say "To find out why:"
  for object in "${NOT_READY[@]}"; do
    say "  ${object}"
    debug_hints "${object}"
  done
  say "Common causes: ErrImagePull (run make images; never :latest), Pending pods (make doctor:"
  say "CPU/memory), a model with no champion yet (the pipeline's train and promote steps)."
  say "Fix, then run make deploy again (it is safe to repeat)."
  exit 1
fi
say "Fraud Lab is deployed on ${KUBE_CONTEXT}:"
say "  MLflow      http://127.0.0.1:30500"
say "  model REST  http://127.0.0.1:30080/v2/models/fraud-detector/ready   (gRPC 127.0.0.1:30081)"
say "  Prometheus  http://127.0.0.1:30090"
say "  Grafana     http://127.0.0.1:30030   (user admin; password: kubectl --context ${KUBE_CONTEXT} -n ${KPS_NAMESPACE} get secret ${KPS_RELEASE}-grafana -o jsonpath='{.data.admin-password}' | base64 -d)"
say "Next: the labs (make lab-N TARGET=cluster); remove with make undeploy, everything with make cluster-down"
