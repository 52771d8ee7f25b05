#!/usr/bin/env bash
# make images: build the app image (one image for every `fraudlab` command and the MLServer
# runtime), tag it with the package version, push it to the local registry and print its digest.
#
#   make images                      torch from the CPU wheel index (≈ 200 MB)
#   make images TORCH_VARIANT=cu130  torch with CUDA, for the optional GPU cluster (a few GB more)
#
# Both push localhost:5001/fraud-lab/app:<version> (the tag in manifests/README.md), so the
# manifests need no change: a CUDA build of torch also runs on CPU nodes. The image records the
# variant in its label io.fraud-lab.torch-variant. TORCH_VARIANT is a wheel index name on
# download.pytorch.org (cpu, or a CUDA variant that pytorch.org lists for torch 2.13.0).
# Never tags or pushes `latest`: a moving tag hides which code runs, and kind nodes re-pull it.
set -o errexit -o nounset -o pipefail
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/versions.sh
source "${SCRIPT_DIR}/versions.sh"

TORCH_VARIANT="${TORCH_VARIANT:-cpu}"
TAG="${APP_VERSION}"
IMAGE="${APP_IMAGE_REPO}:${TAG}"

[[ "${TORCH_VARIANT}" =~ ^(cpu|cu[0-9]+|rocm[0-9.]+)$ ]] ||
  die "TORCH_VARIANT=${TORCH_VARIANT} is not a torch wheel variant (cpu, cu130, …)" "make images TORCH_VARIANT=cpu"
if [[ -z "${TAG}" || "${TAG}" == "latest" ]]; then
  die "refusing to build tag '${TAG}': the tag is the package version in pyproject.toml, never latest" \
    "set [project] version in pyproject.toml"
fi

require_docker
if [[ "$(docker inspect -f '{{.State.Running}}' "${REGISTRY_NAME}" 2>/dev/null || true)" != "true" ]]; then
  die "the local registry ${REGISTRY_NAME} is not running" "make cluster"
fi

COMMIT="unknown"
if git -C "${REPO_ROOT}" rev-parse --verify HEAD >/dev/null 2>&1; then
  COMMIT="$(git -C "${REPO_ROOT}" rev-parse HEAD)"
  if [[ -n "$(git -C "${REPO_ROOT}" status --porcelain --untracked-files=no 2>/dev/null)" ]]; then
    COMMIT="${COMMIT}-dirty"
  fi
fi

step "Build ${IMAGE} (torch ${TORCH_VARIANT}, commit ${COMMIT:0:12})"
docker build \
  --build-arg "TORCH_VARIANT=${TORCH_VARIANT}" \
  --build-arg "TORCH_INDEX_URL=https://download.pytorch.org/whl/${TORCH_VARIANT}" \
  --build-arg "FRAUD_GIT_COMMIT=${COMMIT}" \
  --build-arg "APP_VERSION=${APP_VERSION}" \
  --tag "${IMAGE}" \
  "${REPO_ROOT}"

step "Push to ${REGISTRY_HOST}"
docker push "${IMAGE}"

digest="$(docker inspect --format '{{range .RepoDigests}}{{println .}}{{end}}' "${IMAGE}" | grep "^${APP_IMAGE_REPO}@" | head -n 1)" || true
echo
say "pushed ${IMAGE}"
say "digest ${digest:-unknown (docker inspect ${IMAGE})}"
if [[ "${TORCH_VARIANT}" == "cpu" ]]; then
  say "Next: make deploy"
else
  say "Next: make deploy OVERLAY=kind-gpu   (the training Job asks for a GPU)"
fi
