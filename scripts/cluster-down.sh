#!/usr/bin/env bash
# make cluster-down: delete the fraud-lab kind cluster and the local registry container.
#
#   scripts/cluster-down.sh [--keep-registry]
#
# --keep-registry (make cluster-down KEEP_REGISTRY=1) keeps kind-registry and the images pushed to
# it, so the next `make cluster` does not need `make images` again.
set -o errexit -o nounset -o pipefail
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/versions.sh
source "${SCRIPT_DIR}/versions.sh"

KEEP_REGISTRY=0
for arg in "$@"; do
  case "${arg}" in
    --keep-registry) KEEP_REGISTRY=1 ;;
    -h | --help)
      sed -n '2,7p' "${BASH_SOURCE[0]}"
      exit 0
      ;;
    *) die "unknown option: ${arg}" "scripts/cluster-down.sh [--keep-registry]" ;;
  esac
done

require_docker
require_tool kind

if cluster_exists; then
  kind delete cluster --name "${CLUSTER_NAME}"
  say "deleted cluster ${CLUSTER_NAME} (and its kubectl context ${KUBE_CONTEXT})"
else
  say "no cluster ${CLUSTER_NAME}: nothing to delete"
fi

if [[ ${KEEP_REGISTRY} -eq 1 ]]; then
  say "kept ${REGISTRY_NAME} (--keep-registry)"
elif docker inspect "${REGISTRY_NAME}" >/dev/null 2>&1; then
  docker rm --force "${REGISTRY_NAME}" >/dev/null
  say "deleted registry container ${REGISTRY_NAME} (its images are gone: make images after make cluster)"
else
  say "no registry container ${REGISTRY_NAME}: nothing to delete"
fi
say "Next, to start over: make cluster"
