#!/usr/bin/env bash
# make secrets: write the env files that the kind overlay's secretGenerators read, with random
# credentials, only where a file or a key is missing (a second run keeps every value).
#
#   scripts/secrets.sh [DIR]    DIR defaults to manifests/overlays/kind/secrets
#
# The files are git-ignored and readable by their owner only. To rotate a credential: delete its
# file, run this again, `make deploy`, then restart the workloads that read it (kubectl --context
# kind-fraud-lab -n fraud-lab rollout restart deployment/mlflow …). PostgreSQL keeps the password
# it was first started with in its volume: rotating postgres.env also needs a fresh volume.
set -o errexit -o nounset -o pipefail
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/versions.sh
source "${SCRIPT_DIR}/versions.sh"

TARGET_DIR="${1:-${REPO_ROOT}/manifests/overlays/kind/secrets}"

# random_token N: N random characters from [a-z0-9] (openssl when present, else /dev/urandom).
random_token() {
  local length="$1" token=""
  while [[ ${#token} -lt ${length} ]]; do
    if command -v openssl >/dev/null 2>&1; then
      token+="$(openssl rand -base64 48 | LC_ALL=C tr -dc 'a-z0-9')"
    else
      token+="$(head -c 256 /dev/urandom | LC_ALL=C tr -dc 'a-z0-9')"
    fi
  done
  printf '%s' "${token:0:${length}}"
}

# random_key_id: an access key id in the usual S3 shape (20 upper-case letters and digits).
random_key_id() { random_token 20 | tr '[:lower:]' '[:upper:]'; }

# ensure FILE KEY VALUE: append KEY=VALUE to FILE unless FILE already sets KEY.
ensure() {
  local file="$1" key="$2" value="$3"
  if [[ -f "${file}" ]] && grep -q "^${key}=." "${file}"; then
    return 0
  fi
  printf '%s=%s\n' "${key}" "${value}" >>"${file}"
  CHANGED+=("$(basename "${file}"):${key}")
}

umask 077
mkdir -p "${TARGET_DIR}"
CHANGED=()

postgres="${TARGET_DIR}/postgres.env"
ensure "${postgres}" POSTGRES_USER mlflow
ensure "${postgres}" POSTGRES_PASSWORD "$(random_token 32)"
ensure "${postgres}" POSTGRES_DB mlflow

s3="${TARGET_DIR}/s3.env"
ensure "${s3}" AWS_ACCESS_KEY_ID "$(random_key_id)"
ensure "${s3}" AWS_SECRET_ACCESS_KEY "$(random_token 40)"

mlflow="${TARGET_DIR}/mlflow.env"
ensure "${mlflow}" FRAUD_MLFLOW_ADMIN_USERNAME admin
ensure "${mlflow}" FRAUD_MLFLOW_ADMIN_PASSWORD "$(random_token 32)"
ensure "${mlflow}" MLFLOW_FLASK_SERVER_SECRET_KEY "$(random_token 48)"

if [[ ${#CHANGED[@]} -eq 0 ]]; then
  say "secrets: all present in ${TARGET_DIR}; nothing changed"
else
  say "secrets: generated ${CHANGED[*]} in ${TARGET_DIR}"
fi
