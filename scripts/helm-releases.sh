#!/usr/bin/env bash
# Install the third-party operators of kind mode from their pinned Helm charts (versions in
# scripts/versions.sh, values in manifests/helm/): the one place where they are installed, for
# make deploy (scripts/deploy.sh) and the labs' solutions (labs/reference.py).
#
#   scripts/helm-releases.sh argo-workflows seldon-core kube-prometheus-stack
#
# A release already at its pinned chart version AND installed from the same values file is left
# alone (helm upgrade regenerates Seldon's webhook certificate, and every upgrade costs a
# rollout): reruns are cheap and safe. The values file's git blob id is the release's
# description (`helm upgrade --description`, read back with `helm status`), so a changed values
# file (e.g. Seldon's keda.enabled, lab 16) upgrades an existing cluster's release once.
set -o errexit -o nounset -o pipefail
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/versions.sh
source "${SCRIPT_DIR}/versions.sh"

HELM_VALUES="${REPO_ROOT}/manifests/helm"
h() { helm --kube-context "${KUBE_CONTEXT}" "$@"; }

# helm_release_chart RELEASE NAMESPACE: "<chart>-<version>" of a deployed release, or nothing.
helm_release_chart() {
  h list --namespace "$2" --filter "^$1\$" --deployed --output json 2>/dev/null |
    sed -n 's/.*"chart":"\([^"]*\)".*/\1/p' | head -n 1
}

# helm_release_description RELEASE NAMESPACE: the deployed release's description, or nothing.
helm_release_description() {
  h status "$1" --namespace "$2" --output json 2>/dev/null |
    sed -n 's/.*"description":"\([^"]*\)".*/\1/p' | head -n 1
}

# install RELEASE CHART VERSION REPO NAMESPACE VALUES TIMEOUT LABEL
install() {
  local release="$1" chart="$2" version="$3" repo="$4" namespace="$5" values="$6" timeout="$7" label="$8"
  local description
  description="fraud-lab values ${values} $(git hash-object "${HELM_VALUES}/${values}")"
  step "${label}: chart ${chart} ${version}"
  if [[ "$(helm_release_chart "${release}" "${namespace}")" == "${chart}-${version}" ]] &&
    [[ "$(helm_release_description "${release}" "${namespace}")" == "${description}" ]]; then
    say "  release ${release} is at ${version} with these values: unchanged"
    return
  fi
  h upgrade --install "${release}" "${chart}" --repo "${repo}" --version "${version}" \
    --namespace "${namespace}" --values "${HELM_VALUES}/${values}" --wait --timeout "${timeout}" \
    --description "${description}"
}

[[ $# -gt 0 ]] || die "usage: $0 argo-workflows|keda|seldon-core|kube-prometheus-stack|kuberay-operator ..." "make deploy"
require_tool helm
for name in "$@"; do
  case "${name}" in
    argo-workflows)
      install "${ARGO_RELEASE}" "${ARGO_CHART}" "${ARGO_CHART_VERSION}" "${ARGO_CHART_REPO}" "${ARGO_NAMESPACE}" \
        argo-workflows.values.yaml 5m "Argo Workflows ${ARGO_APP_VERSION} controller (Apache-2.0)" ;;
    keda)
      install "${KEDA_RELEASE}" "${KEDA_CHART}" "${KEDA_CHART_VERSION}" "${KEDA_CHART_REPO}" "${KEDA_NAMESPACE}" \
        keda.values.yaml 5m "KEDA (Apache-2.0): the model's autoscaler, lab 16" ;;
    seldon-core)
      # NOTE: the chart makes a new webhook certificate on every upgrade (failurePolicy Fail).
      install "${SELDON_RELEASE}" "${SELDON_CHART}" "${SELDON_CHART_VERSION}" "${SELDON_CHART_REPO}" "${SELDON_NAMESPACE}" \
        seldon-core-operator.values.yaml 5m "Seldon Core v1 operator (BSL-1.1: free for non-production use and education)" ;;
    kuberay-operator)
      install "${KUBERAY_RELEASE}" "${KUBERAY_CHART}" "${KUBERAY_CHART_VERSION}" "${KUBERAY_CHART_REPO}" "${KUBERAY_NAMESPACE}" \
        kuberay-operator.values.yaml 5m "KubeRay operator (Apache-2.0): RayCluster and RayJob, lab 14" ;;
    kube-prometheus-stack)
      install "${KPS_RELEASE}" "${KPS_CHART}" "${KPS_CHART_VERSION}" "${KPS_CHART_REPO}" "${KPS_NAMESPACE}" \
        kube-prometheus-stack.values.yaml 10m "kube-prometheus-stack" ;;
    *) die "unknown release ${name}" "$0 argo-workflows seldon-core kube-prometheus-stack kuberay-operator" ;;
  esac
done
