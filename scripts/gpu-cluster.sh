#!/usr/bin/env bash
# make gpu-cluster (optional): the fraud-lab cluster with the host's NVIDIA GPUs on the `data`
# worker, made with NVIDIA's nvkind, then the NVIDIA device plugin (pinned chart) so pods can ask
# for `nvidia.com/gpu`. Everything else is `make cluster`: without a GPU, use that; training
# falls back to CPU.
#
# Needs on the host: an NVIDIA driver (nvidia-smi -L lists the GPUs), nvidia-container-toolkit
# configured for Docker as below, and nvkind. The script checks each and prints what to run.
set -o errexit -o nounset -o pipefail
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/versions.sh
source "${SCRIPT_DIR}/versions.sh"

TEMPLATE="${SCRIPT_DIR}/nvkind-config.yaml.tmpl"
TOOLKIT_CONFIG="/etc/nvidia-container-runtime/config.toml"
DATA_WORKER="${CLUSTER_NAME}-worker"   # kind names workers in config order: worker 1 is `data`

k() { kubectl --context "${KUBE_CONTEXT}" "$@"; }
h() { helm --kube-context "${KUBE_CONTEXT}" "$@"; }

step "NVIDIA GPU on this host"
if ! command -v nvidia-smi >/dev/null 2>&1 || ! gpus="$(nvidia-smi -L 2>/dev/null)" || [[ -z "${gpus}" ]]; then
  say "No NVIDIA GPU found here (nvidia-smi -L lists none), so there is nothing for a GPU cluster to use."
  say "That is fine: the GPU path is optional and every lab runs on CPU."
  say "Next: make cluster"
  exit 1
fi
say "${gpus}"

step "nvidia-container-toolkit configured for Docker"
require_docker
todo=()
command -v nvidia-ctk >/dev/null 2>&1 ||
  todo+=("install nvidia-container-toolkit: https://docs.nvidia.com/datacenter/cloud-native/container-toolkit/latest/install-guide.html")
if [[ "$(docker info --format '{{.DefaultRuntime}}' 2>/dev/null)" != "nvidia" ]]; then
  todo+=("sudo nvidia-ctk runtime configure --runtime=docker --set-as-default --cdi.enabled")
fi
if ! grep -Eq '^[[:space:]]*accept-nvidia-visible-devices-as-volume-mounts[[:space:]]*=[[:space:]]*true' "${TOOLKIT_CONFIG}" 2>/dev/null; then
  # nvkind passes GPUs into node containers as volume mounts; the toolkit ignores them otherwise.
  todo+=("sudo nvidia-ctk config --set accept-nvidia-visible-devices-as-volume-mounts=true --in-place")
fi
if [[ ${#todo[@]} -gt 0 ]]; then
  say "Docker cannot pass GPUs into kind nodes yet. Run, in order:"
  for line in "${todo[@]}"; do say "  ${line}"; done
  say "  sudo systemctl restart docker"
  say "Check: docker run --rm -v /dev/null:/var/run/nvidia-container-devices/all ubuntu:24.04 nvidia-smi -L"
  say "Then: make gpu-cluster"
  exit 1
fi
say "  default runtime nvidia, volume-mount device selection on"

step "Tools"
require_tool kind
require_tool kubectl
require_tool helm
command -v nvkind >/dev/null 2>&1 ||
  die "nvkind is not installed" "go install github.com/NVIDIA/nvkind/cmd/nvkind@${NVKIND_VERSION}   (then make sure \$(go env GOPATH)/bin is on PATH)"

step "GPU cluster ${CLUSTER_NAME}"
if cluster_exists; then
  if docker inspect -f '{{range .Mounts}}{{.Destination}} {{end}}' "${DATA_WORKER}" 2>/dev/null | grep -q nvidia-container-devices; then
    say "  cluster exists with GPUs (unchanged)"
  else
    die "cluster ${CLUSTER_NAME} exists without GPUs (made by make cluster)" "make cluster-down KEEP_REGISTRY=1 && make gpu-cluster"
  fi
else
  nvkind cluster create --name "${CLUSTER_NAME}" --config-template "${TEMPLATE}" --config-values - <<EOF
name: ${CLUSTER_NAME}
image: ${KIND_NODE_IMAGE}
EOF
fi

step "Registry, namespaces (make cluster: idempotent)"
"${SCRIPT_DIR}/cluster-up.sh"

step "NVIDIA device plugin ${NVDP_CHART_VERSION} (namespace ${NVDP_NAMESPACE})"
# NOTE: the plugin mounts the kubelet's device-plugin socket directory from the host, so its
# namespace is privileged; nothing of the course runs there.
k create namespace "${NVDP_NAMESPACE}" --dry-run=client -o yaml | k apply -f - >/dev/null
k label namespace "${NVDP_NAMESPACE}" pod-security.kubernetes.io/enforce=privileged --overwrite >/dev/null
# NOTE: nvkind registers RuntimeClass `nvidia` instead of making nvidia the nodes' default runtime
# (nvkind pkg/nvkind/cluster.go RegisterNvidiaRuntimeClass): the plugin's pods, like every GPU pod
# (manifests/components/gpu), must name it. The chart's own values key is runtimeClassName.
h upgrade --install "${NVDP_RELEASE}" "${NVDP_CHART}" --repo "${NVDP_CHART_REPO}" \
  --version "${NVDP_CHART_VERSION}" --namespace "${NVDP_NAMESPACE}" \
  --set runtimeClassName=nvidia --wait --timeout 5m

step "GPUs the data worker offers"
allocatable=""
for _ in $(seq 1 30); do
  allocatable="$(k get node "${DATA_WORKER}" -o jsonpath='{.status.allocatable.nvidia\.com/gpu}' 2>/dev/null || true)"
  [[ -n "${allocatable}" && "${allocatable}" != "0" ]] && break
  sleep 2
done
if [[ -z "${allocatable}" || "${allocatable}" == "0" ]]; then
  die "node ${DATA_WORKER} offers no nvidia.com/gpu yet" \
    "kubectl --context ${KUBE_CONTEXT} -n ${NVDP_NAMESPACE} logs daemonset/${NVDP_RELEASE} --all-containers"
fi
say "  ${DATA_WORKER}: nvidia.com/gpu = ${allocatable}"
say "Next: make images TORCH_VARIANT=cu130   (torch with CUDA; any variant pytorch.org lists for torch 2.13.0)"
say "then: make deploy OVERLAY=kind-gpu"
