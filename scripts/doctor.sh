#!/usr/bin/env bash
# make doctor: preflight for kind mode. One line per check (✓ pass, ! warning, ✗ failure,
# – skipped), the fix indented under any problem. Reads the machine, changes nothing.
# Exit status: 0 when no check failed, 1 otherwise. Every check runs even when an earlier one
# failed, so a learner sees the whole list at once.
set -o errexit -o nounset -o pipefail
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/versions.sh
source "${SCRIPT_DIR}/versions.sh"

MIN_CPUS=4
MIN_MEMORY_MIB=7680          # "8 GB" in Docker Desktop shows as ≈ 7.7 GiB inside its VM
MIN_DISK_GIB=20
MIN_INOTIFY_WATCHES=524288
MIN_INOTIFY_INSTANCES=512

PASSED=0 WARNED=0 FAILED=0 SKIPPED=0

# report SYMBOL NAME MESSAGE [HINT...]: the check's one line, then its hints indented.
report() {
  local symbol="$1" name="$2" message="$3" hint
  shift 3
  printf '%s %-18s %s\n' "${symbol}" "${name}" "${message}"
  for hint in "$@"; do printf '    %s\n' "${hint}"; done
  case "${symbol}" in
    "✓") PASSED=$((PASSED + 1)) ;;
    "!") WARNED=$((WARNED + 1)) ;;
    "✗") FAILED=$((FAILED + 1)) ;;
    *) SKIPPED=$((SKIPPED + 1)) ;;
  esac
}
pass() { report "✓" "$@"; }
warning() { report "!" "$@"; }
fail() { report "✗" "$@"; }
skip() { report "–" "$@"; }

# with_timeout SECONDS CMD...: `timeout` where it exists (macOS has none by default).
with_timeout() {
  local seconds="$1"
  shift
  if command -v timeout >/dev/null 2>&1; then timeout "${seconds}" "$@"; else "$@"; fi
}

OS="$(uname -s)"
case "${OS}" in
  Linux) OS_NAME="linux" ;;
  Darwin) OS_NAME="darwin" ;;
  *) OS_NAME="unsupported" ;;
esac
# DOCTOR_MACHINE overrides `uname -m` (tests check the arm64 answer on any machine).
case "${DOCTOR_MACHINE:-$(uname -m)}" in
  x86_64 | amd64) ARCH="amd64" ;;
  aarch64 | arm64) ARCH="arm64" ;;
  *) ARCH="$(uname -m)" ;;
esac
# Install commands use amd64 when the architecture is unsupported (that check fails anyway).
DL_OS="${OS_NAME/unsupported/linux}"
DL_ARCH="amd64"
if [[ "${ARCH}" == "arm64" ]]; then DL_ARCH="arm64"; fi

printf 'Fraud Lab doctor (kind mode): kind %s, kubectl %s, helm %s, node image %s\n' \
  "${KIND_VERSION}" "${KUBECTL_VERSION}" "${HELM_VERSION}" "${KIND_NODE_IMAGE%%@*}"

# --- docker -----------------------------------------------------------------------------------
DOCKER_UP=0
DOCKER_INFO=""
check_docker() {
  if ! command -v docker >/dev/null 2>&1; then
    fail "docker" "docker is not installed" "install Docker Engine (Linux) or Docker Desktop: https://docs.docker.com/get-docker/"
    return
  fi
  local out rc=0 errors first_line
  errors="$(mktemp)"
  out="$(with_timeout 20 docker info --format '{{.ServerVersion}}|{{.NCPU}}|{{.MemTotal}}|{{.CgroupVersion}}|{{.DockerRootDir}}|{{.DefaultRuntime}}' 2>"${errors}")" || rc=$?
  first_line="$(grep -v '^[[:space:]]*$' "${errors}" | head -n 1)" || true
  rm -f "${errors}"
  if [[ ${rc} -eq 0 && -n "${out%%|*}" ]]; then
    DOCKER_UP=1
    DOCKER_INFO="${out}"
    pass "docker" "daemon running (server ${out%%|*})"
    return
  fi
  if [[ "${first_line}" == *"permission denied"* ]]; then
    fail "docker" "the daemon refused this user: ${first_line}" \
      "add yourself to the docker group: sudo usermod -aG docker \"\$USER\", then log out and back in" \
      "check with: docker info"
  else
    fail "docker" "the Docker daemon is not running: ${first_line:-docker info failed}" \
      "start it: Docker Desktop (macOS/Windows), or on Linux: sudo systemctl start docker" \
      "check with: docker info"
  fi
}

docker_field() { # docker_field N: the N-th |-separated field of the docker info line
  local IFS='|'
  # shellcheck disable=SC2206  # splitting on | is the point
  local fields=(${DOCKER_INFO})
  printf '%s' "${fields[$1]:-}"
}

# --- pinned tools -----------------------------------------------------------------------------
kind_install="curl -fsSLo kind https://kind.sigs.k8s.io/dl/${KIND_VERSION}/kind-${DL_OS}-${DL_ARCH} && chmod +x kind && sudo mv kind /usr/local/bin/kind"
kubectl_install="curl -fsSLO https://dl.k8s.io/release/${KUBECTL_VERSION}/bin/${DL_OS}/${DL_ARCH}/kubectl && chmod +x kubectl && sudo mv kubectl /usr/local/bin/kubectl"
helm_install="curl -fsSL https://get.helm.sh/helm-${HELM_VERSION}-${DL_OS}-${DL_ARCH}.tar.gz | tar -xz && sudo mv ${DL_OS}-${DL_ARCH}/helm /usr/local/bin/helm"

check_kind() {
  if ! command -v kind >/dev/null 2>&1; then
    fail "kind" "not installed (need ${KIND_VERSION})" "install: ${kind_install}"
    return
  fi
  local version
  version="$(kind version 2>/dev/null | awk '{print $2}')" || true
  if [[ "${version}" == "${KIND_VERSION}" ]]; then
    pass "kind" "${version}"
  else
    # The node image digest is built for one kind release: another kind may not start it.
    fail "kind" "${version:-unknown version}, need ${KIND_VERSION} (the pinned node image is built for it)" \
      "install: ${kind_install}"
  fi
}

# kubectl_rule INSTALLED: the version rule's verdict and source, tab-separated
# (reference_app/doctor.py, standard library only; with FRAUD_LAB_CODE naming a folder with
# versions.py, the learner's kubectl_verdict of lab 00 decides). Exit 2 with the reason on stderr
# when the rule cannot answer.
kubectl_rule() {
  local python="${REPO_ROOT}/.venv/bin/python"
  if [[ ! -x "${python}" ]]; then python="python3"; fi
  PYTHONPATH="${REPO_ROOT}${PYTHONPATH:+:${PYTHONPATH}}" "${python}" -m reference_app.doctor \
    kubectl-verdict "$1" "${KUBECTL_VERSION}"
}

check_kubectl() {
  if ! command -v kubectl >/dev/null 2>&1; then
    fail "kubectl" "not installed (need ${KUBECTL_VERSION})" "install: ${kubectl_install}"
    return
  fi
  local version answer rule errors rc=0 by=""
  version="$(kubectl version --client 2>/dev/null | sed -n 's/^Client Version: *//p' | head -n 1)" || true
  errors="$(mktemp)"
  answer="$(kubectl_rule "${version}" 2>"${errors}")" || rc=$?
  if [[ ${rc} -ne 0 ]]; then
    if [[ -n "${FRAUD_LAB_CODE:-}" ]]; then
      fail "kubectl" "${version:-unknown version}: your version rule did not answer: $(head -c 400 "${errors}")" \
        "check it: .venv/bin/fraudlab exercise check 0 --code ${FRAUD_LAB_CODE%%:*}" \
        "or run the reference rule: unset FRAUD_LAB_CODE; make doctor"
    else
      fail "kubectl" "${version:-unknown version}: the version rule did not answer: $(head -c 400 "${errors}")" \
        "the doctor needs Python 3.11 (python3 or .venv/bin/python): make install"
    fi
    rm -f "${errors}"
    return
  fi
  rm -f "${errors}"
  rule="${answer#*$'\t'}"
  if [[ "${rule}" != "reference" ]]; then by=" (rule: ${rule})"; fi
  case "${answer%%$'\t'*}" in
    pass) pass "kubectl" "${version}${by}" ;;
    warn)
      warning "kubectl" "${version}, pinned ${KUBECTL_VERSION} (within one minor of the cluster: works)${by}" \
        "to match the course exactly: ${kubectl_install}"
      ;;
    *)
      fail "kubectl" "${version:-unknown version}, need ${KUBECTL_VERSION} (more than one minor from the cluster's version)${by}" \
        "install: ${kubectl_install}"
      ;;
  esac
}

check_helm() {
  if ! command -v helm >/dev/null 2>&1; then
    fail "helm" "not installed (need ${HELM_VERSION})" "install: ${helm_install}"
    return
  fi
  local version
  version="$(helm version --template '{{.Version}}' 2>/dev/null)" || true
  if [[ "${version}" == "${HELM_VERSION}" ]]; then
    pass "helm" "${version}"
  elif [[ "${version}" == v3.* ]]; then
    warning "helm" "${version}, pinned ${HELM_VERSION} (another Helm 3 release: works)" \
      "to match the course exactly: ${helm_install}"
  else
    fail "helm" "${version:-unknown version}, need Helm 3 (${HELM_VERSION})" "install: ${helm_install}"
  fi
}

# --- resources --------------------------------------------------------------------------------
check_cpus() {
  local cpus source="for Docker"
  if [[ ${DOCKER_UP} -eq 1 ]]; then
    cpus="$(docker_field 1)"
  else
    source="on this host (Docker not running)"
    cpus="$(getconf _NPROCESSORS_ONLN 2>/dev/null || sysctl -n hw.ncpu 2>/dev/null || echo 0)"
  fi
  if [[ "${cpus}" =~ ^[0-9]+$ && ${cpus} -ge ${MIN_CPUS} ]]; then
    pass "cpus" "${cpus} ${source}"
  else
    warning "cpus" "${cpus:-?} ${source}, want ≥ ${MIN_CPUS}: pods start slowly and may stay Pending" \
      "Docker Desktop: Settings → Resources → CPUs ≥ ${MIN_CPUS}"
  fi
}

check_memory() {
  if [[ ${DOCKER_UP} -eq 0 ]]; then
    skip "memory" "skipped: needs a running Docker daemon"
    return
  fi
  local bytes mib
  bytes="$(docker_field 2)"
  if ! [[ "${bytes}" =~ ^[0-9]+$ ]]; then
    warning "memory" "could not read Docker's memory (docker info: '${bytes}')"
    return
  fi
  mib=$((bytes / 1024 / 1024))
  if ((mib >= MIN_MEMORY_MIB)); then
    pass "memory" "$(awk -v m="${mib}" 'BEGIN {printf "%.1f GiB", m / 1024}') for Docker"
  else
    warning "memory" "$(awk -v m="${mib}" 'BEGIN {printf "%.1f GiB", m / 1024}') for Docker, want ≥ 8 GB: pods may be OOM-killed" \
      "Docker Desktop: Settings → Resources → Memory ≥ 8 GB"
  fi
}

check_disk() {
  local path="${HOME}" root
  if [[ ${DOCKER_UP} -eq 1 ]]; then
    root="$(docker_field 4)"
    if [[ -d "${root}" ]]; then path="${root}"; fi
  fi
  local free_kib
  free_kib="$(df -Pk "${path}" 2>/dev/null | awk 'NR == 2 {print $4}')" || true
  if ! [[ "${free_kib}" =~ ^[0-9]+$ ]]; then
    warning "disk" "could not read free space under ${path}"
  elif ((free_kib >= MIN_DISK_GIB * 1024 * 1024)); then
    pass "disk" "$((free_kib / 1024 / 1024)) GiB free under ${path}"
  else
    warning "disk" "$((free_kib / 1024 / 1024)) GiB free under ${path}, want ≥ ${MIN_DISK_GIB} GB for node and app images" \
      "free space: docker system prune (removes unused images and stopped containers)"
  fi
}

# --- host settings ----------------------------------------------------------------------------
check_inotify() { # check_inotify NAME KEY MINIMUM
  local name="$1" key="$2" minimum="$3" value
  if [[ "${OS}" != "Linux" ]]; then
    skip "${name}" "skipped: only Linux hosts need it (Docker Desktop's VM sets its own)"
    return
  fi
  value="$(cat "/proc/sys/fs/inotify/${key}" 2>/dev/null)" || true
  if [[ "${value}" =~ ^[0-9]+$ ]] && ((value >= minimum)); then
    pass "${name}" "fs.inotify.${key} = ${value}"
  else
    fail "${name}" "fs.inotify.${key} = ${value:-?}, need ≥ ${minimum} (else pods fail with 'too many open files')" \
      "now: sudo sysctl fs.inotify.max_user_watches=${MIN_INOTIFY_WATCHES} fs.inotify.max_user_instances=${MIN_INOTIFY_INSTANCES}" \
      "after reboots: printf 'fs.inotify.max_user_watches = ${MIN_INOTIFY_WATCHES}\\nfs.inotify.max_user_instances = ${MIN_INOTIFY_INSTANCES}\\n' | sudo tee /etc/sysctl.d/99-fraud-lab.conf"
  fi
}

port_listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# port_owned_by PORT CONTAINER: the container publishes PORT on the host (our cluster or registry).
port_owned_by() {
  [[ ${DOCKER_UP} -eq 1 ]] && docker port "$2" 2>/dev/null | grep -q ":$1\$"
}

check_port() { # check_port PORT WHAT OWNER
  local port="$1" what="$2" owner="$3" finder
  if ! port_listening "${port}"; then
    pass "port ${port}" "free (${what})"
  elif port_owned_by "${port}" "${owner}"; then
    pass "port ${port}" "used by ${owner} (${what}): already up"
  else
    finder="sudo ss -ltnp 'sport = :${port}'"
    if [[ "${OS}" == "Darwin" ]]; then finder="lsof -nP -iTCP:${port} -sTCP:LISTEN"; fi
    fail "port ${port}" "in use by another process; kind needs it for ${what}" \
      "find the process: ${finder}, stop it, then: make doctor"
  fi
}

check_architecture() {
  if [[ "${ARCH}" == "amd64" ]]; then
    pass "architecture" "amd64 (every image of kind mode exists for it)"
  elif [[ "${ARCH}" == "arm64" ]]; then
    # NOTE: Seldon Core v1's operator image is built for amd64 only (SeldonIO/seldon-core
    # operator/Dockerfile: GOARCH=amd64; https://github.com/SeldonIO/seldon-core/issues/4438 "ARM support" is open): on an arm64 node it
    # never starts (exec format error), so no model can be served in kind mode.
    fail "architecture" "arm64: the Seldon Core v1 operator image exists for amd64 only, so kind mode cannot serve the model here" \
      "on Apple Silicon or another arm64 machine: use local mode (make demo, make up, make lab-N TARGET=local)" \
      "for kind mode, use an amd64 machine (a laptop or a cloud VM with 4 CPUs and 8 GB)"
  else
    fail "architecture" "${ARCH}: kind's node images exist for amd64 and arm64 only, and Seldon Core v1 for amd64 only"
  fi
}

check_cgroup() {
  local version=""
  if [[ ${DOCKER_UP} -eq 1 ]]; then
    version="$(docker_field 3)"
  elif [[ "${OS}" == "Linux" ]]; then
    if [[ "$(stat -fc %T /sys/fs/cgroup 2>/dev/null || true)" == "cgroup2fs" ]]; then version=2; else version=1; fi
  else
    skip "cgroup" "skipped: needs a running Docker daemon"
    return
  fi
  if [[ "${version}" == "2" ]]; then
    pass "cgroup" "v2"
  else
    fail "cgroup" "v${version:-?}: kind's Kubernetes 1.35 node images need cgroup v2" \
      "use a distribution with cgroup v2 (default since Ubuntu 21.10, Debian 11, Fedora 31) or boot with systemd.unified_cgroup_hierarchy=1"
  fi
}

# --- optional GPU -----------------------------------------------------------------------------
check_gpu() {
  local gpus count
  if ! command -v nvidia-smi >/dev/null 2>&1 || ! gpus="$(nvidia-smi -L 2>/dev/null)" || [[ -z "${gpus}" ]]; then
    skip "nvidia gpu" "none found (optional: training runs on CPU)"
    return
  fi
  count="$(grep -c '^GPU ' <<<"${gpus}" || true)"
  local missing=()
  command -v nvidia-ctk >/dev/null 2>&1 || missing+=("install nvidia-container-toolkit: https://docs.nvidia.com/datacenter/cloud-native/container-toolkit/latest/install-guide.html")
  if [[ ${DOCKER_UP} -eq 1 && "$(docker_field 5)" != "nvidia" ]]; then
    missing+=("make nvidia Docker's default runtime: sudo nvidia-ctk runtime configure --runtime=docker --set-as-default --cdi.enabled && sudo systemctl restart docker")
  fi
  if ! grep -Eq '^[[:space:]]*accept-nvidia-visible-devices-as-volume-mounts[[:space:]]*=[[:space:]]*true' /etc/nvidia-container-runtime/config.toml 2>/dev/null; then
    missing+=("let nvkind pass GPUs to nodes: sudo nvidia-ctk config --set accept-nvidia-visible-devices-as-volume-mounts=true --in-place && sudo systemctl restart docker")
  fi
  if [[ ${#missing[@]} -eq 0 ]]; then
    pass "nvidia gpu" "${count} GPU(s), nvidia-container-toolkit ready (optional: make gpu-cluster)"
  else
    warning "nvidia gpu" "${count} GPU(s) found; the optional GPU cluster needs:" "${missing[@]}"
  fi
}

check_docker
check_kind
check_kubectl
check_helm
check_cpus
check_memory
check_disk
check_inotify "inotify watches" max_user_watches "${MIN_INOTIFY_WATCHES}"
check_inotify "inotify instances" max_user_instances "${MIN_INOTIFY_INSTANCES}"
check_port 30500 "MLflow" "${CLUSTER_NAME}-control-plane"
check_port 30080 "model REST" "${CLUSTER_NAME}-control-plane"
check_port 30081 "model gRPC" "${CLUSTER_NAME}-control-plane"
check_port 30090 "Prometheus" "${CLUSTER_NAME}-control-plane"
check_port 30030 "Grafana" "${CLUSTER_NAME}-control-plane"
check_port "${REGISTRY_PORT}" "local registry" "${REGISTRY_NAME}"
check_architecture
check_cgroup
check_gpu

TOTAL=$((PASSED + WARNED + FAILED + SKIPPED))
printf 'doctor: %d checks: %d passed, %d warnings, %d failed, %d skipped\n' \
  "${TOTAL}" "${PASSED}" "${WARNED}" "${FAILED}" "${SKIPPED}"
if [[ ${FAILED} -gt 0 ]]; then
  printf 'Fix the ✗ lines above (each has the command to run), then: make doctor\n'
  exit 1
fi
printf 'Ready for kind mode. Next: make cluster\n'
