#!/usr/bin/env bash
# make images: build the app image (one image for every `fraudlab` command and the MLServer
# runtime), tag it by its content, push it to the local registry, print its size and digest, and
# point the kind overlay and the labs' starters at it (scripts/set-app-image.sh).
#
#   make images                      torch from the CPU wheel index (≈ 200 MB)
#   make images TORCH_VARIANT=cu130  torch with CUDA, for the optional GPU cluster (a few GB more)
#
# The tag is git-<commit> (plus -dirty-<diff hash> for uncommitted changes; scripts/versions.sh
# app_image_tag): a rebuilt tree gets a new tag, so it reaches the pods even with
# imagePullPolicy IfNotPresent, and the commit label that lab 05 checks names the code that runs.
# The labels (OCI revision, serving runtime versions) come from `fraudlab image-labels`
# (scripts/versions.sh app_image_labels); with FRAUD_LAB_CODE=labs/08-packaging-and-ci/starter,
# from your image_labels of lab 08.
# The image records the torch variant in its label io.fraud-lab.torch-variant (a CUDA build of
# torch also runs on CPU nodes). Never tags or pushes `latest`: a moving tag hides which code runs.
set -o errexit -o nounset -o pipefail
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/versions.sh
source "${SCRIPT_DIR}/versions.sh"

TORCH_VARIANT="${TORCH_VARIANT:-cpu}"
TAG="${TAG:-$(app_image_tag)}"
IMAGE="${APP_IMAGE_REPO}:${TAG}"

[[ "${TORCH_VARIANT}" =~ ^(cpu|cu[0-9]+|rocm[0-9.]+)$ ]] ||
  die "TORCH_VARIANT=${TORCH_VARIANT} is not a torch wheel variant (cpu, cu130, …)" "make images TORCH_VARIANT=cpu"
if [[ -z "${TAG}" || "${TAG}" == "latest" ]]; then
  die "refusing to build tag '${TAG}': the tag names the content, never latest" "make images"
fi

require_docker
if [[ "$(docker inspect -f '{{.State.Running}}' "${REGISTRY_NAME}" 2>/dev/null || true)" != "true" ]]; then
  die "the local registry ${REGISTRY_NAME} is not running" "make cluster"
fi

COMMIT="$(app_commit)"
# The labels (revision, serving runtime versions) from fraudlab image-labels: lab 08's exercise.
app_label_args

# --8<-- [start:build-push]
step "Build ${IMAGE} (torch ${TORCH_VARIANT}, commit ${COMMIT:0:12})"
docker build \
  --build-arg "TORCH_VARIANT=${TORCH_VARIANT}" \
  --build-arg "TORCH_INDEX_URL=https://download.pytorch.org/whl/${TORCH_VARIANT}" \
  --build-arg "FRAUD_GIT_COMMIT=${COMMIT}" \
  --build-arg "APP_VERSION=${APP_VERSION}" \
  "${LABEL_ARGS[@]}" \
  --tag "${IMAGE}" \
  "${REPO_ROOT}"

step "Push to ${REGISTRY_HOST}"
docker push "${IMAGE}"

digest="$(docker inspect --format '{{range .RepoDigests}}{{println .}}{{end}}' "${IMAGE}" | grep "^${APP_IMAGE_REPO}@" | head -n 1)" || true
echo
say "pushed ${IMAGE}"
say "size   $(docker image inspect --format '{{.Size}}' "${IMAGE}" | awk '{printf "%.2f GB", $1/1e9}')"
say "digest ${digest:-unknown (docker inspect ${IMAGE})}"
say "labels ${APP_LABELS//$'\n'/ }"
# --8<-- [end:build-push]
"${SCRIPT_DIR}/set-app-image.sh" "${TAG}"
if [[ "${TORCH_VARIANT}" == "cpu" ]]; then
  say "Next: make deploy"
else
  say "Next: make deploy OVERLAY=kind-gpu   (the training Job asks for a GPU)"
fi
