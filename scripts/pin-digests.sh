#!/usr/bin/env bash
# Resolve the digests of the images this repo pins by tag, on a machine with a registry
# connection (crane, or docker buildx). Prints them; with --write, pins them in place:
#
#   scripts/pin-digests.sh            print tag → digest for each image
#   scripts/pin-digests.sh --write    also rewrite the pins (Dockerfile, scripts/versions.sh)
#
# Pins: the Dockerfile's base (ARG PYTHON_IMAGE) and the local registry image (REGISTRY_IMAGE).
# The kind node image is only checked: its digest comes from kind's release notes, which are the
# authority for which build belongs to kind ${KIND_VERSION}. Digests are of the multi-arch index,
# so one pin serves amd64 and arm64. Commit the result with the date in the message.
set -o errexit -o nounset -o pipefail
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/versions.sh
source "${SCRIPT_DIR}/versions.sh"

DOCKERFILE="${REPO_ROOT}/Dockerfile"
VERSIONS="${SCRIPT_DIR}/versions.sh"
WRITE=0
case "${1:-}" in
  "") ;;
  --write) WRITE=1 ;;
  *) die "unknown option: $1" "scripts/pin-digests.sh [--write]" ;;
esac

# digest_of REF: the registry's digest for REF (a tag; any @digest is ignored).
digest_of() {
  local ref="${1%%@*}" out
  if command -v crane >/dev/null 2>&1; then
    crane digest "${ref}"
  else
    out="$(docker buildx imagetools inspect "${ref}" --format '{{json .Manifest}}')"
    sed -n 's/.*"digest":"\(sha256:[0-9a-f]\{64\}\)".*/\1/p' <<<"${out}" | head -n 1
  fi
}

if ! command -v crane >/dev/null 2>&1 && ! { command -v docker >/dev/null 2>&1 && docker buildx version >/dev/null 2>&1; }; then
  die "neither crane nor docker buildx is available" "install crane (https://github.com/google/go-containerregistry) or Docker with buildx"
fi

# pin FILE PATTERN REF: replace the value after PATTERN (up to the end of line or a closing
# quote) with REF in FILE.
pin() {
  local file="$1" prefix="$2" ref="$3" tmp
  tmp="$(mktemp)"
  sed "s|^\(${prefix}\)[^\"]*|\1${ref}|" "${file}" >"${tmp}"
  cat "${tmp}" >"${file}"
  rm -f "${tmp}"
}

base="$(sed -n 's/^ARG PYTHON_IMAGE=//p' "${DOCKERFILE}" | head -n 1)"
[[ -n "${base}" ]] || die "no 'ARG PYTHON_IMAGE=' line in ${DOCKERFILE}"

status=0
for entry in "Dockerfile base|${base}" "local registry|${REGISTRY_IMAGE}" "kind node image|${KIND_NODE_IMAGE}"; do
  what="${entry%%|*}" ref="${entry#*|}"
  tag="${ref%%@*}"
  digest="$(digest_of "${tag}")" || digest=""
  if [[ ! "${digest}" =~ ^sha256:[0-9a-f]{64}$ ]]; then
    warn "${what}: could not resolve ${tag}"
    status=1
    continue
  fi
  say "${what}: ${tag}@${digest}"
  case "${what}" in
    "Dockerfile base")
      if [[ ${WRITE} -eq 1 ]]; then pin "${DOCKERFILE}" "ARG PYTHON_IMAGE=" "${tag}@${digest}"; fi
      ;;
    "local registry")
      if [[ ${WRITE} -eq 1 ]]; then pin "${VERSIONS}" 'REGISTRY_IMAGE="' "${tag}@${digest}"; fi
      ;;
    "kind node image")
      if [[ "${ref}" != "${tag}@${digest}" ]]; then
        warn "the tag ${tag} now points to ${digest}; keep the pin from kind ${KIND_VERSION}'s release notes (${ref#*@})"
      fi
      ;;
  esac
done
if [[ ${WRITE} -eq 1 && ${status} -eq 0 ]]; then
  say "pinned: see git diff -- Dockerfile scripts/versions.sh"
fi
exit "${status}"
