#!/usr/bin/env bash
# make undeploy: remove the kind overlay (the fraud system) and the Helm releases that deploy.sh
# installed. Keeps the cluster, the namespaces, the StatefulSets' volume claims (PostgreSQL and S3
# data), the registry, the secrets' env files and the CRDs that the charts installed (Helm never
# deletes CRDs). To remove everything: make cluster-down.
set -o errexit -o nounset -o pipefail
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/versions.sh
source "${SCRIPT_DIR}/versions.sh"

# OVERLAY=kind-gpu (after make gpu-cluster) adds the gpu component to the kind overlay.
OVERLAY_NAME="${OVERLAY:-kind}"
[[ "${OVERLAY_NAME}" =~ ^kind(-[a-z0-9-]+)?$ ]] || die "OVERLAY=${OVERLAY_NAME}: expected kind or kind-<variant>" "make deploy OVERLAY=kind"
OVERLAY="${REPO_ROOT}/manifests/overlays/${OVERLAY_NAME}"

k() { kubectl --context "${KUBE_CONTEXT}" "$@"; }
h() { helm --kube-context "${KUBE_CONTEXT}" "$@"; }

require_kind_api
require_tool helm

step "The fraud system (manifests/overlays/${OVERLAY_NAME})"
# kustomize needs the secrets' env files to render the overlay; creating missing ones is harmless.
"${SCRIPT_DIR}/secrets.sh" >/dev/null
# …and an app image Component (make images writes it); any tag will do to delete.
[[ -f "${REPO_ROOT}/manifests/components/app-image/kustomization.yaml" ]] || "${SCRIPT_DIR}/set-app-image.sh" undeploy >/dev/null
# Pipeline runs are Workflows submitted from the templates, not objects of the overlay.
k -n "${APP_NAMESPACE}" delete workflows -l app.kubernetes.io/part-of=fraud-lab --ignore-not-found --wait=true --timeout=120s 2>/dev/null || true
# First, while the Seldon operator still runs to finalize its SeldonDeployment. The overlay also
# holds the namespaces (with the Helm releases in them): the selector keeps every object that
# carries a Pod Security label, i.e. the namespaces, which make cluster made and deploy reuses.
k delete -k "${OVERLAY}" --selector '!pod-security.kubernetes.io/enforce' \
  --ignore-not-found --wait=true --timeout=300s
# Secrets and ConfigMaps from earlier env files carry other hash suffixes: remove them by label.
k -n "${APP_NAMESPACE}" delete secret,configmap -l app.kubernetes.io/part-of=fraud-lab --ignore-not-found

step "Helm releases"
# KubeRay after the overlay: a RayJob carries KubeRay's finalizer ray.io/rayjob-finalizer, which
# only the operator removes (KubeRay v1.7.0 utils/constant.go RayJobStopJobFinalizer).
for release in "${KPS_RELEASE}:${KPS_NAMESPACE}" "${SELDON_RELEASE}:${SELDON_NAMESPACE}" "${ARGO_RELEASE}:${ARGO_NAMESPACE}" "${KUBERAY_RELEASE}:${KUBERAY_NAMESPACE}"; do
  name="${release%%:*}" namespace="${release##*:}"
  if h status "${name}" --namespace "${namespace}" >/dev/null 2>&1; then
    h uninstall "${name}" --namespace "${namespace}" --wait
  else
    say "  ${name}: not installed"
  fi
done

echo
say "Undeployed. The cluster and the registry are still up: make deploy to start again, make cluster-down to remove all."
