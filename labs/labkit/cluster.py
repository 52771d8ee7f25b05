"""The cluster: Kubernetes API clients for context `kind-fraud-lab` only (refusing any other
context, or one that is not a local kind API server), objects read by name as the API returns
them, and testinfra hosts for commands inside pods (`kubectl://`) and on kind nodes (`docker://`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .hints import describe_error, hint
from .names import (
    ARGO_GROUP,
    ARGO_VERSION,
    CLUSTER_NAME,
    HTTP_TIMEOUT_S,
    KUBE_CONTEXT,
    MONITORING_GROUP,
    MONITORING_VERSION,
    NAMESPACE,
    PODMONITOR_PLURAL,
    RAY_GROUP,
    RAY_VERSION,
    RAYJOB_PLURAL,
    SELDON_GROUP,
    SELDON_PLURAL,
    SELDON_VERSION,
)
from .waits import bounded


class ClusterError(RuntimeError):
    """The checks cannot (or refuse to) talk to the cluster; `fix` is the command that helps."""

    def __init__(self, message: str, fix: str):
        super().__init__(message)
        self.fix = fix


def kubeconfig_paths() -> list[Path]:
    """The kubeconfig files kubectl reads: $KUBECONFIG (a list) or ~/.kube/config."""
    raw = os.environ.get("KUBECONFIG", "")
    paths = [p for p in raw.split(os.pathsep) if p] if raw else ["~/.kube/config"]
    return [Path(p).expanduser() for p in paths]


LOCAL_API_SERVER = re.compile(r"^https://(127\.0\.0\.1|localhost|\[::1\]):\d+/?$")


class Cluster:
    """Kubernetes API clients for the kind cluster, built from context `kind-fraud-lab` only."""

    def __init__(self, api_client: Any):
        from kubernetes import client

        self.api_client = api_client
        self.core = client.CoreV1Api(api_client)
        self.apps = client.AppsV1Api(api_client)
        self.batch = client.BatchV1Api(api_client)
        self.custom = client.CustomObjectsApi(api_client)
        self.networking = client.NetworkingV1Api(api_client)
        self.authorization = client.AuthorizationV1Api(api_client)
        self.server = api_client.configuration.host

    def to_dict(self, obj: Any) -> dict:
        """An API object as the JSON the API server sends (camelCase keys, like the YAML manifests)."""
        return self.api_client.sanitize_for_serialization(obj)

    def read(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call a read API method with a request timeout; None when the object does not exist."""
        from kubernetes.client.exceptions import ApiException

        try:
            return fn(*args, _request_timeout=HTTP_TIMEOUT_S, **kwargs)
        except ApiException as err:
            if err.status == 404:
                return None
            raise

    def _get(self, fn: Callable[..., Any], *args: Any) -> dict | None:
        obj = self.read(fn, *args)
        if obj is None:
            return None
        return obj if isinstance(obj, dict) else self.to_dict(obj)

    # Objects by name, as dicts: the checks use only these (tests/labs replays them on the
    # rendered manifests).
    def job(self, name: str, namespace: str = NAMESPACE) -> dict | None:
        return self._get(self.batch.read_namespaced_job, name, namespace)

    def cronjob(self, name: str, namespace: str = NAMESPACE) -> dict | None:
        return self._get(self.batch.read_namespaced_cron_job, name, namespace)

    def deployment(self, name: str, namespace: str = NAMESPACE) -> dict | None:
        return self._get(self.apps.read_namespaced_deployment, name, namespace)

    def service(self, name: str, namespace: str = NAMESPACE) -> dict | None:
        return self._get(self.core.read_namespaced_service, name, namespace)

    def namespace(self, name: str) -> dict | None:
        return self._get(self.core.read_namespace, name)

    def configmap(self, name: str, namespace: str) -> dict | None:
        return self._get(self.core.read_namespaced_config_map, name, namespace)

    def workflowtemplate(self, name: str, namespace: str = NAMESPACE) -> dict | None:
        """An Argo WorkflowTemplate; None when it or its CRD does not exist."""
        return self._get(
            self.custom.get_namespaced_custom_object,
            ARGO_GROUP,
            ARGO_VERSION,
            namespace,
            "workflowtemplates",
            name,
        )

    def workflows(self, namespace: str = NAMESPACE) -> list[dict]:
        """Every Argo Workflow of the namespace (the pipeline's runs), as dicts."""
        out = self.read(
            self.custom.list_namespaced_custom_object,
            ARGO_GROUP,
            ARGO_VERSION,
            namespace,
            "workflows",
        )
        return list((out or {}).get("items") or [])

    def seldondeployment(self, name: str, namespace: str = NAMESPACE) -> dict | None:
        return self._get(
            self.custom.get_namespaced_custom_object,
            SELDON_GROUP,
            SELDON_VERSION,
            namespace,
            SELDON_PLURAL,
            name,
        )

    def rayjob(self, name: str, namespace: str = NAMESPACE) -> dict | None:
        """A KubeRay RayJob (lab 14); None when it or its CRD does not exist."""
        return self._get(
            self.custom.get_namespaced_custom_object,
            RAY_GROUP,
            RAY_VERSION,
            namespace,
            RAYJOB_PLURAL,
            name,
        )

    def podmonitor(self, name: str, namespace: str = NAMESPACE) -> dict | None:
        """A PodMonitor (kube-prometheus-stack's CRD); None when it or its CRD does not exist."""
        return self._get(
            self.custom.get_namespaced_custom_object,
            MONITORING_GROUP,
            MONITORING_VERSION,
            namespace,
            PODMONITOR_PLURAL,
            name,
        )

    def prometheusrule(self, name: str, namespace: str = NAMESPACE) -> dict | None:
        """A PrometheusRule (kube-prometheus-stack's CRD); None when it or its CRD does not exist."""
        return self._get(
            self.custom.get_namespaced_custom_object,
            MONITORING_GROUP,
            MONITORING_VERSION,
            namespace,
            "prometheusrules",
            name,
        )

    def secret(self, name: str, namespace: str) -> dict | None:
        """A Secret, its values decoded (the checks never print them)."""
        import base64

        obj = self._get(self.core.read_namespaced_secret, name, namespace)
        if obj is None:
            return None
        return {k: base64.b64decode(v).decode() for k, v in (obj.get("data") or {}).items()}

    def nodes(self) -> list[dict]:
        out = self.read(self.core.list_node)
        return [self.to_dict(n) for n in (out.items if out else [])]

    def node(self, name: str) -> dict | None:
        return self._get(self.core.read_node, name)

    # Lab 15: network policies, ServiceAccounts, what an account may do, what admission refuses.
    def networkpolicy(self, name: str, namespace: str = NAMESPACE) -> dict | None:
        return self._get(self.networking.read_namespaced_network_policy, name, namespace)

    def serviceaccount(self, name: str, namespace: str = NAMESPACE) -> dict | None:
        return self._get(self.core.read_namespaced_service_account, name, namespace)

    def service_accounts(self, namespace: str = NAMESPACE) -> list[str]:
        """The names of the namespace's ServiceAccounts."""
        out = self.read(self.core.list_namespaced_service_account, namespace)
        return sorted(a.metadata.name for a in (out.items if out else []))

    def jobs(self, selector: str, namespace: str = NAMESPACE) -> list[dict]:
        out = self.read(self.batch.list_namespaced_job, namespace, label_selector=selector)
        return [self.to_dict(j) for j in (out.items if out else [])]

    def can_i(
        self,
        account: str,
        verb: str,
        resource: str,
        group: str = "",
        name: str | None = None,
        namespace: str = NAMESPACE,
    ) -> bool:
        """What `kubectl auth can-i VERB RESOURCE --as=system:serviceaccount:NS:ACCOUNT` answers:
        a SubjectAccessReview for the account and its groups (Kubernetes docs, "Authorization",
        checking API access). The review is computed, never stored: nothing changes."""
        from kubernetes import client

        review = client.V1SubjectAccessReview(
            spec=client.V1SubjectAccessReviewSpec(
                user=f"system:serviceaccount:{namespace}:{account}",
                groups=[
                    "system:serviceaccounts",
                    f"system:serviceaccounts:{namespace}",
                    "system:authenticated",
                ],
                resource_attributes=client.V1ResourceAttributes(
                    namespace=namespace, verb=verb, group=group, resource=resource, name=name
                ),
            )
        )
        answer = self.authorization.create_subject_access_review(
            review, _request_timeout=HTTP_TIMEOUT_S
        )
        return bool(answer.status.allowed)

    def dry_run_pod(self, pod: dict, namespace: str = NAMESPACE) -> str | None:
        """Create `pod` with dryRun=All, as `kubectl create --dry-run=server` does: it passes
        authentication, admission (Pod Security) and validation and is never persisted
        (https://kubernetes.io/docs/reference/using-api/api-concepts/#dry-run).

        Returns:
            None when the API server would admit it, else its refusal message.
        """
        from kubernetes.client.exceptions import ApiException

        try:
            self.core.create_namespaced_pod(
                namespace, pod, dry_run="All", _request_timeout=HTTP_TIMEOUT_S
            )
        except ApiException as err:
            import json

            try:
                return json.loads(err.body).get("message") or str(err.reason)
            except (TypeError, ValueError):
                return f"HTTP {err.status} {err.reason}"
        return None

    def pods(self, namespace: str, selector: str) -> list[dict]:
        out = self.read(self.core.list_namespaced_pod, namespace, label_selector=selector)
        return [self.to_dict(p) for p in (out.items if out else [])]

    def pod_log(self, name: str, namespace: str = NAMESPACE, container: str | None = None) -> str:
        return (
            self.read(
                self.core.read_namespaced_pod_log,
                name,
                namespace,
                container=container,
                tail_lines=200,
            )
            or ""
        )

    # Lab 16: the autoscaler KEDA makes and what happened to it.
    def hpa(self, name: str, namespace: str = NAMESPACE) -> dict | None:
        """A HorizontalPodAutoscaler (autoscaling/v2); None when it does not exist."""
        from kubernetes import client

        return self._get(
            client.AutoscalingV2Api(self.api_client).read_namespaced_horizontal_pod_autoscaler,
            name,
            namespace,
        )

    def poddisruptionbudget(self, name: str, namespace: str = NAMESPACE) -> dict | None:
        """A PodDisruptionBudget (policy/v1); None when it does not exist."""
        from kubernetes import client

        return self._get(
            client.PolicyV1Api(self.api_client).read_namespaced_pod_disruption_budget,
            name,
            namespace,
        )

    def events(self, name: str, namespace: str = NAMESPACE) -> list[dict]:
        """The events about object `name` the API server still keeps (one hour by default)."""
        out = self.read(
            self.core.list_namespaced_event,
            namespace,
            field_selector=f"involvedObject.name={name}",
        )
        return [self.to_dict(e) for e in (out.items if out else [])]


def connect(context: str = KUBE_CONTEXT) -> Cluster:
    """A `Cluster` for `context`, after checking it exists, is a local kind API server and answers.

    Raises:
        ClusterError: with a one-line reason and the command that fixes it.
    """
    paths = kubeconfig_paths()
    if not any(p.is_file() for p in paths):
        raise ClusterError(
            f"no kubeconfig file ({', '.join(map(str, paths))}); the checks use context {context} only",
            "make cluster",
        )
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    try:
        contexts, _ = config.list_kube_config_contexts()
    except (ConfigException, OSError, ValueError) as err:
        raise ClusterError(
            f"cannot read your kubeconfig: {describe_error(err)}", "kubectl config get-contexts"
        ) from None
    names = sorted(c["name"] for c in contexts or [])
    if context not in names:
        raise ClusterError(
            f"your kubeconfig has no context {context} (it has: {', '.join(names) or 'none'}); the checks refuse any other cluster",
            "make cluster",
        )
    try:
        api_client = config.new_client_from_config(context=context)
    except (ConfigException, OSError, ValueError) as err:
        raise ClusterError(
            f"context {context} cannot be loaded: {describe_error(err)}",
            f"kubectl config view --minify --context {context}",
        ) from None
    server = api_client.configuration.host or ""
    if not LOCAL_API_SERVER.match(server):
        raise ClusterError(
            f"context {context} points at {server or 'nothing'}, not a local kind API server",
            "make cluster-down && make cluster",
        )
    try:
        client.VersionApi(api_client).get_code(_request_timeout=5)
    except Exception as err:  # noqa: BLE001 - any failure means "does not answer"
        raise ClusterError(
            f"the API server of {context} ({server}) does not answer: {describe_error(err)}",
            f"docker ps --filter name={CLUSTER_NAME}   (then: make cluster)",
        ) from None
    return Cluster(api_client)


def pod_host(pod: str, container: str, namespace: str = NAMESPACE) -> Any:
    """A testinfra host for a container of a running pod (`kubectl://` backend, explicit context)."""
    import shutil

    import testinfra

    assert shutil.which("kubectl"), hint(
        "kubectl on your PATH (testinfra runs kubectl exec)",
        "no kubectl",
        "make doctor   (prints the install command)",
    )

    return testinfra.get_host(
        f"kubectl://{pod}?namespace={namespace}&container={container}&context={KUBE_CONTEXT}"
    )


def node_host(node: str) -> Any:
    """A testinfra host for a kind node (a Docker container named like the node)."""
    import testinfra

    return testinfra.get_host(f"docker://{node}")


def run_in(host: Any, command: str, seconds: float = 30.0) -> Any:
    """`host.run(command)` bounded to `seconds`."""
    return bounded(lambda: host.run(command), seconds, f"`{command}`")
