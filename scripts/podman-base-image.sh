#!/usr/bin/env bash
# Build the app image's Python base without a container registry, for machines that have podman
# but cannot pull images (the project's CI and development machines): debootstrap a minimal
# Debian bookworm with Python 3.11, import it into podman as BASE_IMAGE, and print its name.
# tests/container builds the Dockerfile on top of it (--build-arg PYTHON_IMAGE=BASE_IMAGE).
#
#   scripts/podman-base-image.sh            # fraud-lab-base:bookworm-py311, kept if present
#   FORCE=1 scripts/podman-base-image.sh    # rebuild
#
# Needs root, podman, debootstrap and the Debian mirror apt uses (read from its sources).
set -o errexit -o nounset -o pipefail
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/versions.sh
source "${SCRIPT_DIR}/versions.sh"

BASE_IMAGE="${BASE_IMAGE:-localhost/fraud-lab-base:bookworm-py311}"
SUITE="bookworm"   # Debian 12: python3.11, the Python the project pins
# podman on these machines: runc (crun refuses a cgroup v1/v2 hybrid), cgroupfs, low rlimits.
PODMAN=(podman --runtime runc --cgroup-manager cgroupfs)

require_tool podman
require_tool debootstrap
if [[ -z "${FORCE:-}" ]] && "${PODMAN[@]}" image exists "${BASE_IMAGE}"; then
  say "${BASE_IMAGE}"
  exit 0
fi

mirror="$(sed -n 's/^URIs: *\(http[^ ]*debian\)$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n 1)"
[[ -n "${mirror}" ]] || mirror="$(sed -n 's/^deb \(http[^ ]*debian\) .*/\1/p' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | head -n 1)"
[[ -n "${mirror}" ]] || die "no Debian mirror found in /etc/apt/sources.list*" "MIRROR=http://deb.debian.org/debian $0"
mirror="${MIRROR:-${mirror}}"

root="$(mktemp -d)"
trap 'rm -rf "${root}"' EXIT
step "debootstrap ${SUITE} from ${mirror} (≈ 1.5 min)" >&2
debootstrap --variant=minbase --include=python3.11,python3-venv,ca-certificates \
  "${SUITE}" "${root}" "${mirror}" >&2
# The Dockerfile calls `python`; Debian ships python3.11 only.
ln -sf /usr/bin/python3.11 "${root}/usr/local/bin/python"
ln -sf /usr/bin/python3.11 "${root}/usr/local/bin/python3"
rm -rf "${root}"/var/cache/apt/archives/*.deb "${root}"/var/lib/apt/lists/*
# Like the official slim images: no manuals, no translations; licences (copyright files) stay.
rm -rf "${root}"/usr/share/man/* "${root}"/usr/share/info/* "${root}"/usr/share/locale/*
find "${root}/usr/share/doc" -type f ! -name copyright -delete
tar -C "${root}" -c . | "${PODMAN[@]}" import --change 'CMD ["python"]' - "${BASE_IMAGE}" >&2
say "${BASE_IMAGE}"
