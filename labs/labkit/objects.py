"""Pure functions on Kubernetes objects as the API returns them (camelCase dicts, like the YAML
manifests): pod specs inside workloads and WorkflowTemplates, node affinity, resources, env,
Argo Workflow steps and DAGs, Job and pod states, conditions, PersistentVolume locations, and
dataset manifests. No I/O: tests/labs runs them on the rendered manifests.
"""

from __future__ import annotations

import re

from .names import HEX64, POOL_LABEL


def pod_spec(obj: dict) -> dict:
    """The pod spec inside a Job, CronJob, Deployment, StatefulSet or SeldonDeployment (first component)."""
    spec = obj.get("spec") or {}
    kind = obj.get("kind")
    if kind == "CronJob":
        spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    if kind == "SeldonDeployment":
        predictors = spec.get("predictors") or [{}]
        components = predictors[0].get("componentSpecs") or [{}]
        return components[0].get("spec") or {}
    return (spec.get("template") or {}).get("spec") or {}


def template_pod_spec(workflow_template: dict | None, name: str) -> dict:
    """The pod spec a container template of a WorkflowTemplate runs with: the workflow-level
    affinity, nodeSelector and securityContext (a template's own take precedence, as in Argo) and
    its container, named `main` as Argo names it. `{}` when there is no such template."""
    template = template_named(workflow_template, name)
    if template is None or "container" not in template:
        return {}
    spec = (workflow_template or {}).get("spec") or {}
    pod = {
        k: spec[k] for k in ("affinity", "nodeSelector", "securityContext", "volumes") if k in spec
    }
    pod.update({k: template[k] for k in ("affinity", "nodeSelector") if k in template})
    if template.get("volumes"):  # a template's own volumes travel with it (templateRef)
        pod["volumes"] = [*pod.get("volumes", []), *template["volumes"]]
    pod["containers"] = [{"name": "main", **template["container"]}]
    return pod


def find_container(podspec: dict, name: str) -> dict | None:
    """The container called `name` (or the only container when there is one), or None."""
    containers = podspec.get("containers") or []
    for c in containers:
        if c.get("name") == name:
            return c
    return containers[0] if len(containers) == 1 else None


def required_pools(podspec: dict) -> set[str] | None:
    """Pools (values of fraud-lab.io/pool) a pod may run on, or None when it may run anywhere.

    Reads required node affinity (`requiredDuringSchedulingIgnoredDuringExecution`, operator In)
    and `nodeSelector`.
    """
    allowed: set[str] | None = None
    selector = (podspec.get("nodeSelector") or {}).get(POOL_LABEL)
    if selector:
        allowed = {selector}
    required = ((podspec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or {}
    terms = required.get("nodeSelectorTerms") or []
    if terms:
        # Terms are ORed: the pod is confined to a pool only if every term confines it.
        per_term = []
        for term in terms:
            values = None
            for expr in term.get("matchExpressions") or []:
                if expr.get("key") == POOL_LABEL and expr.get("operator") == "In":
                    values = set(expr.get("values") or [])
            per_term.append(values)
        if all(v is not None for v in per_term):
            union = set().union(*per_term)
            allowed = union if allowed is None else allowed & union
    return allowed


def resource_problems(container: dict | None) -> list[str]:
    """What is missing among requests.cpu, requests.memory and limits.memory."""
    if container is None:
        return ["no such container"]
    res = container.get("resources") or {}
    return [
        f"resources.{what}.{key}"
        for what, key in (("requests", "cpu"), ("requests", "memory"), ("limits", "memory"))
        if key not in (res.get(what) or {})
    ]


def env_value(container: dict | None, name: str) -> str | None:
    """The literal value of an env variable of a container (None if absent or from a Secret)."""
    for env in (container or {}).get("env") or []:
        if env.get("name") == name:
            return env.get("value")
    return None


def env_from_secret(container: dict | None, name: str) -> tuple[str, str] | None:
    """`(secret, key)` when an env variable comes from a Secret, else None."""
    for env in (container or {}).get("env") or []:
        if env.get("name") == name:
            ref = (env.get("valueFrom") or {}).get("secretKeyRef")
            return (ref.get("name"), ref.get("key")) if ref else None
    return None


def latest_workflow(workflows: list[dict], *templates: str) -> dict | None:
    """The newest Workflow made from one of `templates` (workflowTemplateRef), or None."""
    runs = [
        w
        for w in workflows
        if ((w.get("spec") or {}).get("workflowTemplateRef") or {}).get("name") in templates
    ]
    return max(
        runs, key=lambda w: (w.get("metadata") or {}).get("creationTimestamp") or "", default=None
    )


def workflow_step(workflow: dict | None, step: str) -> dict | None:
    """The status node of a DAG task (by display name) in a Workflow, or None."""
    nodes = ((workflow or {}).get("status") or {}).get("nodes") or {}
    found = [
        n
        for n in nodes.values()
        if n.get("displayName") == step and n.get("type") in {"Pod", "Retry"}
    ]
    return found[0] if found else None


def step_state(workflow: dict | None, step: str) -> str:
    """A step's phase and message (or why there is none), for a hint."""
    if workflow is None:
        return "no Workflow from the template yet"
    node = workflow_step(workflow, step)
    name = (workflow.get("metadata") or {}).get("name")
    if node is None:
        return f"workflow {name} ({((workflow.get('status') or {}).get('phase')) or 'Pending'}) has no step {step} yet"
    message = f": {node['message']}" if node.get("message") else ""
    return f"step {step} of workflow {name} is {node.get('phase')}{message}"


def dag_depends(template: dict | None) -> dict[str, set[str]]:
    """`{task: tasks it depends on}` of a WorkflowTemplate's entrypoint DAG (`depends` or
    `dependencies`; task names are read from the `depends` expression)."""
    spec = (template or {}).get("spec") or {}
    dags = [
        t.get("dag")
        for t in spec.get("templates") or []
        if t.get("name") == spec.get("entrypoint") and t.get("dag")
    ]
    out = {}
    for task in (dags[0].get("tasks") or []) if dags else []:
        names = set(task.get("dependencies") or []) | set(
            re.findall(r"[A-Za-z0-9][\w-]*(?=\.|\s|&|\||\)|$)", task.get("depends") or "")
        )
        out[task["name"]] = {
            n
            for n in names
            if n
            not in {
                "Succeeded",
                "Failed",
                "Errored",
                "Skipped",
                "Omitted",
                "Daemoned",
                "AnySucceeded",
                "AllFailed",
            }
        }
    return out


def template_named(template: dict | None, name: str) -> dict | None:
    """One template (by name) of a WorkflowTemplate, or None."""
    found = [
        t
        for t in ((template or {}).get("spec") or {}).get("templates") or []
        if t.get("name") == name
    ]
    return found[0] if found else None


def job_succeeded(job: dict | None) -> bool:
    """True when a Job has a succeeded pod or its Complete condition is true."""
    status = (job or {}).get("status") or {}
    if (status.get("succeeded") or 0) >= 1:
        return True
    return any(
        c.get("type") == "Complete" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )


def job_state(job: dict | None) -> str:
    """Active / succeeded / failed pod counts and the last condition, for a hint."""
    status = (job or {}).get("status") or {}
    conds = [
        f"{c.get('type')}: {c.get('reason') or c.get('message') or c.get('status')}"
        for c in status.get("conditions") or []
    ]
    counts = f"{status.get('active') or 0} active, {status.get('succeeded') or 0} succeeded, {status.get('failed') or 0} failed pods"
    return counts + (f" ({conds[-1]})" if conds else "")


def pv_location(pv: dict) -> tuple[str | None, str | None]:
    """`(node, path)` of a local-path PersistentVolume (hostPath or local volume) on a kind node."""
    spec = pv.get("spec") or {}
    path = (spec.get("hostPath") or {}).get("path") or (spec.get("local") or {}).get("path")
    node = None
    for term in ((spec.get("nodeAffinity") or {}).get("required") or {}).get(
        "nodeSelectorTerms"
    ) or []:
        for expr in term.get("matchExpressions") or []:
            if expr.get("key") == "kubernetes.io/hostname" and expr.get("values"):
                node = expr["values"][0]
    node = node or ((pv.get("metadata") or {}).get("annotations") or {}).get(
        "local.path.provisioner/selected-node"
    )
    return node, path


def condition(obj: dict | None, kind: str) -> str | None:
    """The status ("True", "False", …) of a condition of an object, or None."""
    for c in ((obj or {}).get("status") or {}).get("conditions") or []:
        if c.get("type") == kind:
            return c.get("status")
    return None


def labels(obj: dict | None) -> dict[str, str]:
    return ((obj or {}).get("metadata") or {}).get("labels") or {}


def pod_ready(pod: dict) -> bool:
    return ((pod.get("status") or {}).get("phase") == "Running") and condition(
        pod, "Ready"
    ) == "True"


def ready_pods(pods: list[dict]) -> list[dict]:
    return [p for p in pods if pod_ready(p)]


def pod_state(pods: list[dict]) -> str:
    """`name: phase (reason)` for each pod, for a hint."""
    out = []
    for p in pods:
        status = p.get("status") or {}
        waiting = [
            (cs.get("state") or {}).get("waiting", {}).get("reason")
            for cs in status.get("containerStatuses") or []
            if (cs.get("state") or {}).get("waiting")
        ]
        out.append(
            f"{p['metadata']['name']}: {status.get('phase')}"
            + (f" ({', '.join(w for w in waiting if w)})" if any(waiting) else "")
        )
    return "; ".join(out) or "no pod"


def manifest_problems(manifest: dict) -> list[str]:
    """What is wrong with a dataset manifest: rows, digest, and per-file rows that add up."""
    problems = []
    rows = manifest.get("rows")
    if not isinstance(rows, int) or rows <= 0:
        problems.append(f"rows is {rows!r}")
    if not HEX64.match(str(manifest.get("digest", ""))):
        problems.append(f"digest is {manifest.get('digest')!r}, not a SHA-256")
    files = manifest.get("files") or []
    if not files:
        problems.append("no file listed")
    elif isinstance(rows, int) and sum(int(f.get("rows", 0)) for f in files) != rows:
        problems.append(
            f"its {len(files)} files hold {sum(int(f.get('rows', 0)) for f in files):,} rows, the manifest says {rows:,}"
        )
    return problems
