#!/usr/bin/env bash
# Submit a run of the fraud pipeline (Argo WorkflowTemplate `fraud-pipeline`) on the kind cluster
# and follow it until it ends, one line per step as it finishes:
#
#   scripts/run-pipeline.sh                                # the whole DAG (make pipeline-cluster)
#   scripts/run-pipeline.sh fraud-pipeline through=promote # up to promote (no model server needed)
#   scripts/run-pipeline.sh data-pipeline                  # another WorkflowTemplate: lab 03's DAG
#   scripts/run-pipeline.sh train-model model=mlp          # …with a parameter
#   WAIT=0 scripts/run-pipeline.sh                         # submit and return
#   PRINT=1 scripts/run-pipeline.sh …                       # print the Workflow, submit nothing
#
# Exit 0 when the Workflow Succeeded; 1 with the failed steps and the commands to see why.
set -o errexit -o nounset -o pipefail
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/versions.sh
source "${SCRIPT_DIR}/versions.sh"

TEMPLATE="${1:-fraud-pipeline}"
shift || true
TIMEOUT="${WAIT_PIPELINE:-3600}"
NS="${APP_NAMESPACE}"
k() { kubectl --context "${KUBE_CONTEXT}" "$@"; }

arguments=""
for pair in "$@"; do
  [[ "${pair}" =~ ^[a-z][a-z0-9-]*=[A-Za-z0-9_.-]+$ ]] || die "'${pair}' is not NAME=VALUE" "scripts/run-pipeline.sh fraud-pipeline through=promote"
  arguments+="      - {name: ${pair%%=*}, value: \"${pair#*=}\"}"$'\n'
done
if [[ -n "${arguments}" ]]; then
  arguments="  arguments:
    parameters:
${arguments}"
fi
# generateName: every run is a new Workflow; earlier runs stay (ttlStrategy: 7 days) as evidence.
workflow="apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata:
  generateName: ${TEMPLATE}-
  namespace: ${NS}
  labels:
    app.kubernetes.io/name: ${TEMPLATE}
    app.kubernetes.io/part-of: fraud-lab
spec:
  workflowTemplateRef:
    name: ${TEMPLATE}
${arguments}"
if [[ -n "${PRINT:-}" ]]; then
  printf '%s\n' "${workflow}"
  exit 0
fi

require_kind_api
k -n "${NS}" get workflowtemplate "${TEMPLATE}" >/dev/null 2>&1 ||
  die "no WorkflowTemplate ${TEMPLATE} in namespace ${NS}" "make deploy   (or: kubectl --context ${KUBE_CONTEXT} apply -k labs/NN-…/starter)"

name="$(k -n "${NS}" create -o jsonpath='{.metadata.name}' -f - <<<"${workflow}")"
say "submitted workflow/${name} (namespace ${NS})"
if [[ "${WAIT:-1}" == 0 ]]; then
  say "follow it: kubectl --context ${KUBE_CONTEXT} -n ${NS} get workflow ${name} -w"
  exit 0
fi

# Poll the Workflow's status (phase and per-step nodes) until it ends or the timeout passes.
seen=""
deadline=$((SECONDS + TIMEOUT))
phase=""
while ((SECONDS < deadline)); do
  phase="$(k -n "${NS}" get workflow "${name}" -o jsonpath='{.status.phase}' 2>/dev/null || true)"
  steps="$(k -n "${NS}" get workflow "${name}" -o jsonpath='{range .status.nodes.*}{.type} {.displayName} {.phase}{"\n"}{end}' 2>/dev/null | awk '$1 == "Pod" && ($3 == "Succeeded" || $3 == "Failed" || $3 == "Error") {print $2, $3}' | sort)"
  while IFS= read -r line; do
    [[ -z "${line}" ]] && continue
    if ! grep -qxF "${line}" <<<"${seen}"; then
      case "${line}" in *Succeeded) say "✓ ${line% *}" ;; *) say "✗ ${line% *} (${line##* })" ;; esac
      seen+="${line}"$'\n'
    fi
  done <<<"${steps}"
  case "${phase}" in Succeeded | Failed | Error) break ;; esac
  sleep 5
done

if [[ "${phase}" == Succeeded ]]; then
  say "workflow/${name} Succeeded"
  exit 0
fi
say "workflow/${name}: ${phase:-still running after ${TIMEOUT}s}"
say "To find out why:"
say "  kubectl --context ${KUBE_CONTEXT} -n ${NS} get workflow ${name} -o jsonpath='{range .status.nodes.*}{.displayName}{\"\\t\"}{.phase}{\"\\t\"}{.message}{\"\\n\"}{end}'"
say "  kubectl --context ${KUBE_CONTEXT} -n ${NS} logs -l workflows.argoproj.io/workflow=${name} -c main --tail=30"
exit 1
