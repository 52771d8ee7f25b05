#!/usr/bin/env bash
# make cluster: the fraud-lab kind cluster (1 control plane + 2 labelled workers, NodePorts on
# 127.0.0.1), the local registry kind-registry on localhost:5001 wired into every node, the
# local-registry-hosting ConfigMap, and the namespaces with their Pod Security labels.
# Idempotent: each step checks first, and a run with everything in place changes nothing.
set -o errexit -o nounset -o pipefail
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/versions.sh
source "${SCRIPT_DIR}/versions.sh"

KIND_CONFIG="${SCRIPT_DIR}/kind-config.yaml"
NAMESPACES_DIR="${REPO_ROOT}/manifests/base/namespaces"
CERTS_DIR="/etc/containerd/certs.d/${REGISTRY_HOST}"
CHANGES=0

k() { kubectl --context "${KUBE_CONTEXT}" "$@"; }
changed() { CHANGES=$((CHANGES + 1)); say "  $*"; }
unchanged() { say "  $* (unchanged)"; }

require_docker
require_tool kind
require_tool kubectl
if [[ "$(kind version 2>/dev/null | awk '{print $2}')" != "${KIND_VERSION}" ]]; then
  die "kind ${KIND_VERSION} is required (the node image is built for it); found: $(kind version 2>/dev/null || echo none)" "make doctor   (prints the install command)"
fi
[[ -d "${NAMESPACES_DIR}" ]] || die "${NAMESPACES_DIR} is missing" "git pull (the namespaces come with the manifests)"

step "Local registry ${REGISTRY_NAME} on 127.0.0.1:${REGISTRY_PORT}"
state="$(docker inspect -f '{{.State.Running}}' "${REGISTRY_NAME}" 2>/dev/null || true)"
if [[ "${state}" == "true" ]]; then
  unchanged "registry running"
elif [[ "${state}" == "false" ]]; then
  docker start "${REGISTRY_NAME}" >/dev/null
  changed "registry started"
else
  docker run --detach --restart=always --name "${REGISTRY_NAME}" \
    --publish "127.0.0.1:${REGISTRY_PORT}:5000" --network bridge "${REGISTRY_IMAGE}" >/dev/null
  changed "registry created from ${REGISTRY_IMAGE}"
fi

step "kind cluster ${CLUSTER_NAME} (${KIND_NODE_IMAGE%%@*})"
if cluster_exists; then
  current_image="$(docker inspect -f '{{.Config.Image}}' "${CLUSTER_NAME}-control-plane" 2>/dev/null || true)"
  if [[ -n "${current_image}" && "${current_image}" != "${KIND_NODE_IMAGE}" ]]; then
    warn "the cluster runs ${current_image}, the course pins ${KIND_NODE_IMAGE}; to recreate it: make cluster-down && make cluster"
  fi
  unchanged "cluster exists"
else
  kind create cluster --name "${CLUSTER_NAME}" --config "${KIND_CONFIG}" --wait 180s
  changed "cluster created"
fi

# --8<-- [start:registry-hosts]
step "Registry config on the nodes (${CERTS_DIR}/hosts.toml)"
# Inside a node, localhost is the node itself: containerd maps localhost:5001 to the registry
# container, reached by name on the kind network.
hosts_toml="[host.\"http://${REGISTRY_NAME}:5000\"]"
for node in $(kind get nodes --name "${CLUSTER_NAME}"); do
  if [[ "$(docker exec "${node}" cat "${CERTS_DIR}/hosts.toml" 2>/dev/null || true)" == "${hosts_toml}" ]]; then
    unchanged "${node}"
  else
    docker exec "${node}" mkdir -p "${CERTS_DIR}"
    printf '%s\n' "${hosts_toml}" | docker exec -i "${node}" cp /dev/stdin "${CERTS_DIR}/hosts.toml"
    changed "${node} configured"
  fi
done
# --8<-- [end:registry-hosts]

step "Registry on the kind network"
if [[ "$(docker inspect -f '{{json .NetworkSettings.Networks.kind}}' "${REGISTRY_NAME}")" == "null" ]]; then
  docker network connect kind "${REGISTRY_NAME}"
  changed "${REGISTRY_NAME} connected to the kind network"
else
  unchanged "${REGISTRY_NAME} already on the kind network"
fi

step "Nodes ready"
k wait --for=condition=Ready nodes --all --timeout=180s >/dev/null
k get nodes --label-columns fraud-lab.io/pool

# apply_quietly ARGS...: kubectl apply, counting a change unless every object is "unchanged".
apply_quietly() {
  local out line
  out="$(k apply "$@")"
  while IFS= read -r line; do
    [[ -z "${line}" ]] && continue
    if [[ "${line}" == *" unchanged" ]]; then unchanged "${line% unchanged}"; else changed "${line}"; fi
  done <<<"${out}"
}

step "ConfigMap kube-public/local-registry-hosting (KEP-1755: tells tools where to push)"
apply_quietly -f - <<EOF
apiVersion: v1
kind: ConfigMap
metadata:
  name: local-registry-hosting
  namespace: kube-public
data:
  localRegistryHosting.v1: |
    host: "${REGISTRY_HOST}"
    help: "https://kind.sigs.k8s.io/docs/user/local-registry/"
EOF

step "Namespaces with Pod Security labels (manifests/base/namespaces)"
apply_quietly -k "${NAMESPACES_DIR}"

echo
if [[ ${CHANGES} -eq 0 ]]; then
  say "Nothing to do: cluster ${CLUSTER_NAME}, registry ${REGISTRY_HOST} and namespaces are already in place."
else
  say "Cluster ${CLUSTER_NAME} is up after ${CHANGES} change(s); its context is ${KUBE_CONTEXT}."
fi
say "Next: make images   (then: make deploy)"
