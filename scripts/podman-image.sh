#!/usr/bin/env bash
# Build the app image from the Dockerfile with podman, on machines with no Docker engine and no
# container registry (the project's CI): the base comes from scripts/podman-base-image.sh, pip
# reaches PyPI through the host network, with the host's CA bundle and wheel folder mounted.
# tests/container runs every app container of the kind overlay from this image.
#
#   scripts/podman-image.sh                 # builds localhost/fraud-lab/app:test, prints its name
#   IMAGE=localhost/fraud-lab/app:x scripts/podman-image.sh
#
# Layers are cached by podman between runs (a code change rebuilds the last layers only).
set -o errexit -o nounset -o pipefail
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/versions.sh
source "${SCRIPT_DIR}/versions.sh"

IMAGE="${IMAGE:-localhost/fraud-lab/app:test}"
PODMAN=(podman --runtime runc --cgroup-manager cgroupfs)
CA_BUNDLE="/etc/ssl/certs/ca-certificates.crt"

# The labels (revision, serving runtime versions) from fraudlab image-labels: lab 08's exercise.
app_label_args
base="$("${SCRIPT_DIR}/podman-base-image.sh" | tail -n 1)"
args=(--network host --ulimit nofile=1024:1024 --ulimit nproc=4096:4096
  --build-arg "PYTHON_IMAGE=${base}" --build-arg "APP_VERSION=${APP_VERSION}"
  --build-arg "FRAUD_GIT_COMMIT=$(app_commit)" "${LABEL_ARGS[@]}"
  # torch from PyPI plus the wheel folder (the CPU wheel lies there): pip prefers 2.13.0+cpu.
  --build-arg "TORCH_INDEX_URL=https://pypi.org/simple")
if [[ -f "${CA_BUNDLE}" ]]; then
  args+=(--volume "${CA_BUNDLE}:/etc/ssl/certs/host-ca.crt:ro" --build-arg "PIP_CERT=/etc/ssl/certs/host-ca.crt")
fi
links="$(pip config get global.find-links 2>/dev/null || true)"
if [[ -n "${links}" && -d "${links}" ]]; then
  args+=(--volume "${links}:/wheels:ro" --build-arg "PIP_FIND_LINKS=/wheels")
fi
step "podman build ${IMAGE} (base ${base})" >&2
"${PODMAN[@]}" build "${args[@]}" --tag "${IMAGE}" "${REPO_ROOT}" >&2
"${PODMAN[@]}" image inspect --format '{{.Size}}' "${IMAGE}" | awk -v i="${IMAGE}" '{printf "%s %.2f GB\n", i, $1/1e9}' >&2
say "${IMAGE}"
