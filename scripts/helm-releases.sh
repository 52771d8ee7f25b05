#!/usr/bin/env bash
# Install the third-party operators of kind mode from their pinned Helm charts (versions in
# scripts/versions.sh, values in manifests/helm/): the one place where they are installed, for
# make deploy (scripts/deploy.sh) and the labs' solutions (labs/reference.py).
#
#   scripts/helm-releases.sh argo-workflows seldon-core kube-prometheus-stack
#
# A release already at its pinned chart version is left alone (helm upgrade regenerates Seldon's
# webhook certificate, and every upgrade costs a rollout): reruns are cheap and safe.
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

# install RELEASE CHART VERSION REPO NAMESPACE VALUES TIMEOUT LABEL
install() {
  local release="$1" chart="$2" version="$3" repo="$4" namespace="$5" values="$6" timeout="$7" label="$8"
  step "${label}: chart ${chart} ${version}"
  if [[ "$(helm_release_chart "${release}" "${namespace}")" == "${chart}-${version}" ]]; then
    say "  release ${release} is at ${version}: unchanged"
    return
  fi
  h upgrade --install "${release}" "${chart}" --repo "${repo}" --version "${version}" \
    --namespace "${namespace}" --values "${HELM_VALUES}/${values}" --wait --timeout "${timeout}"
}

[[ $# -gt 0 ]] || die "usage: $0 argo-workflows|seldon-core|kube-prometheus-stack ..." "make deploy"
require_tool helm
for name in "$@"; do
  case "${name}" in
    argo-workflows)
      install "${ARGO_RELEASE}" "${ARGO_CHART}" "${ARGO_CHART_VERSION}" "${ARGO_CHART_REPO}" "${ARGO_NAMESPACE}" \
        argo-workflows.values.yaml 5m "Argo Workflows ${ARGO_APP_VERSION} controller (Apache-2.0)" ;;
    seldon-core)
      # NOTE: the chart makes a new webhook certificate on every upgrade (failurePolicy Fail).
      install "${SELDON_RELEASE}" "${SELDON_CHART}" "${SELDON_CHART_VERSION}" "${SELDON_CHART_REPO}" "${SELDON_NAMESPACE}" \
        seldon-core-operator.values.yaml 5m "Seldon Core v1 operator (BSL-1.1: free for non-production use and education)" ;;
    kube-prometheus-stack)
      install "${KPS_RELEASE}" "${KPS_CHART}" "${KPS_CHART_VERSION}" "${KPS_CHART_REPO}" "${KPS_NAMESPACE}" \
        kube-prometheus-stack.values.yaml 10m "kube-prometheus-stack" ;;
    *) die "unknown release ${name}" "$0 argo-workflows seldon-core kube-prometheus-stack" ;;
  esac
done
