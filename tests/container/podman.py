"""Run the app image's containers as the rendered kind overlay declares them, with podman.

Each container gets what its pod spec says — command and args, env (ConfigMaps and Secrets of the
overlay resolved, `$(VAR)` expanded as Kubernetes does), `runAsUser`/`runAsGroup`, a read-only root
filesystem, no capabilities, no privilege escalation, emptyDirs as tmpfs, ConfigMaps as read-only
folders of their keys, and the data volume as one
shared folder — inside a network namespace of its own, where the Services' names resolve to
127.0.0.1 (every Service of the overlay fronts one container here).

What differs from a cluster, on purpose: no kubelet (probes are polled by the test), no Argo
emissary wrapper (the container's own command runs), and the Kubernetes API is absent.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

PODMAN = ["podman", "--runtime", "runc", "--cgroup-manager", "cgroupfs"]
# Raising rlimits is not permitted on these machines; podman's defaults try to.
ULIMITS = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096"]
ENV_REF = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")
STARTED: list[str] = []
"""Names of the containers started in the background (stopped at the end of the test module)."""


class ContainerFailed(AssertionError):
    """A container exited non-zero, or never became ready: the message holds its log."""


def _decode(secret: dict) -> dict[str, str]:
    out = {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}
    out.update(secret.get("stringData") or {})
    return out


def object_data(objects: list[dict], kind: str, name: str, namespace: str) -> dict[str, str]:
    """The data of a Secret (decoded) or ConfigMap of the overlay.

    Raises:
        KeyError: the overlay has no such object.
    """
    for o in objects:
        if (
            o["kind"] == kind
            and o["metadata"]["name"] == name
            and o["metadata"].get("namespace") == namespace
        ):
            return _decode(o) if kind == "Secret" else dict(o.get("data") or {})
    raise KeyError(f"{kind} {namespace}/{name} is not in the overlay")


def resolve_env(container: dict, objects: list[dict], namespace: str) -> dict[str, str]:
    """The environment Kubernetes gives `container`: envFrom, then env in order, with
    `$(VAR)` references to earlier variables expanded (unknown ones stay literal, as in Kubernetes).

    Raises:
        KeyError: a referenced Secret, ConfigMap or key does not exist in the overlay.
    """

    def find(kind: str, name: str) -> dict:
        return object_data(objects, kind, name, namespace)

    env: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        if "secretRef" in source:
            env.update(find("Secret", source["secretRef"]["name"]))
        elif "configMapRef" in source:
            env.update(find("ConfigMap", source["configMapRef"]["name"]))
    for item in container.get("env") or []:
        if "value" in item:
            env[item["name"]] = ENV_REF.sub(
                lambda m: env.get(m.group(1), m.group(0)), item["value"]
            )
        elif "fieldRef" in item["valueFrom"]:
            # The downward API: what this pod would be told about itself.
            path = item["valueFrom"]["fieldRef"]["fieldPath"]
            env[item["name"]] = {
                "metadata.namespace": namespace,
                "metadata.name": "container-test",
                "status.podIP": "127.0.0.1",
            }[path]
        else:
            ref = item["valueFrom"].get("secretKeyRef") or item["valueFrom"].get("configMapKeyRef")
            kind = "Secret" if "secretKeyRef" in item["valueFrom"] else "ConfigMap"
            env[item["name"]] = find(kind, ref["name"])[ref["key"]]
    return env


@dataclass
class Netns:
    """A network namespace with only loopback: ports inside never clash with the machine's."""

    name: str = field(default_factory=lambda: f"fraudlab-{uuid.uuid4().hex[:8]}")

    def __post_init__(self) -> None:
        subprocess.run(["ip", "netns", "add", self.name], check=True)
        self.exec("ip", "link", "set", "lo", "up", check=True)

    @property
    def path(self) -> str:
        return f"/var/run/netns/{self.name}"

    def exec(self, *cmd: str, check: bool = False, **kwargs) -> subprocess.CompletedProcess:
        return subprocess.run(["ip", "netns", "exec", self.name, *cmd], check=check, **kwargs)

    def popen(self, *cmd: str, log: Path, user: str | None = None) -> subprocess.Popen:
        prefix = ["runuser", "-u", user, "--"] if user else []
        return subprocess.Popen(
            ["ip", "netns", "exec", self.name, *prefix, *cmd],
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
        )

    def http(
        self,
        method: str,
        url: str,
        body: dict | None = None,
        timeout: float = 10,
        headers: dict | None = None,
    ) -> tuple[int, str]:
        """One HTTP request from inside the namespace: `(status, body)`; status 0 when refused."""
        code = (
            "import httpx, json, sys\n"
            "try:\n"
            f"    r = httpx.request({method!r}, {url!r}, json={json.dumps(body)!s}, headers={json.dumps(headers or {})}, timeout={timeout})\n"
            "    print(json.dumps([r.status_code, r.text]))\n"
            "except httpx.HTTPError as err:\n"
            "    print(json.dumps([0, str(err)]))\n"
        ).replace("json=null", "json=None")
        out = self.exec(
            sys.executable, "-c", code, capture_output=True, text=True, timeout=timeout + 30
        )
        status, text = json.loads(out.stdout.strip().splitlines()[-1])
        return status, text

    def wait_http(
        self,
        url: str,
        seconds: float,
        ok=lambda status: status == 200,
        what: str = "",
        logs=lambda: "",
    ) -> tuple[int, str]:
        """Poll `url` until `ok(status)`; raise ContainerFailed with `logs()` after `seconds`."""
        deadline = time.monotonic() + seconds
        status, text = 0, ""
        while time.monotonic() < deadline:
            status, text = self.http("GET", url)
            if ok(status):
                return status, text
            time.sleep(1)
        raise ContainerFailed(
            f"{what or url} not ready after {seconds:.0f} s (last: {status} {text[:200]})\n{logs()}"
        )

    def delete(self) -> None:
        subprocess.run(["ip", "netns", "delete", self.name], check=False)


@dataclass
class Pod:
    """Runs the containers of one rendered pod spec from the app image."""

    image: str
    podspec: dict
    objects: list[dict]
    netns: Netns
    data_dir: Path
    namespace: str = "fraud-lab"
    extra_env: dict[str, str] = field(default_factory=dict)
    hosts: list[str] = field(default_factory=list)
    """Service names that resolve to 127.0.0.1 in the container (/etc/hosts)."""

    def _configmap_folder(self, source: dict) -> Path:
        """A read-only folder with the ConfigMap's keys as files, as the kubelet mounts it; empty
        for a missing ConfigMap marked `optional` (Kubernetes: ConfigMapVolumeSource.optional).

        Raises:
            AssertionError: the ConfigMap is missing and not optional (the pod would not start).
        """
        try:
            data = object_data(self.objects, "ConfigMap", source["name"], self.namespace)
        except KeyError as err:
            if not source.get("optional"):
                raise AssertionError(str(err)) from None
            data = {}
        folder = Path(tempfile.mkdtemp(prefix=f"configmap-{source['name']}-"))
        for key, text in data.items():
            (folder / key).write_text(text)
            (folder / key).chmod(0o644)
        folder.chmod(0o755)
        return folder

    def _args(self, container: dict, name: str, substitutions: dict[str, str]) -> list[str]:
        psc, sc = self.podspec.get("securityContext") or {}, container.get("securityContext") or {}
        user, group = (
            sc.get("runAsUser", psc.get("runAsUser")),
            sc.get("runAsGroup", psc.get("runAsGroup")),
        )
        args = ["--name", name, "--network", f"ns:{self.netns.path}", *ULIMITS]
        for host in self.hosts:
            args += ["--add-host", f"{host}:127.0.0.1"]
        if user is not None:
            args += ["--user", f"{user}:{group if group is not None else user}"]
        if sc.get("readOnlyRootFilesystem"):
            # Only the declared volumes are writable (podman would add tmpfs on /tmp, /run otherwise).
            args += ["--read-only", "--read-only-tmpfs=false"]
        if "ALL" in ((sc.get("capabilities") or {}).get("drop") or []):
            args += ["--cap-drop", "all"]
        if sc.get("allowPrivilegeEscalation") is False:
            args += ["--security-opt", "no-new-privileges"]
        volumes = {v["name"]: v for v in self.podspec.get("volumes") or []}
        for mount in container.get("volumeMounts") or []:
            volume = volumes[mount["name"]]
            if "emptyDir" in volume:
                args += ["--tmpfs", f"{mount['mountPath']}:rw,mode=1777,size=2g"]
            elif "persistentVolumeClaim" in volume:
                args += ["--volume", f"{self.data_dir}:{mount['mountPath']}"]
            elif "configMap" in volume:
                folder = self._configmap_folder(volume["configMap"])
                args += ["--volume", f"{folder}:{mount['mountPath']}:ro"]
            else:
                raise AssertionError(
                    f"volume {mount['name']}: only emptyDir, ConfigMaps and the data PVC run here"
                )
        for key, value in {
            **resolve_env(container, self.objects, self.namespace),
            **self.extra_env,
        }.items():
            args += ["--env", f"{key}={value}"]
        command = [self._sub(c, substitutions) for c in container.get("command") or []]
        rest = [self._sub(a, substitutions) for a in container.get("args") or []]
        if command:
            args += ["--entrypoint", command[0], self.image, *command[1:], *rest]
        else:
            args += [self.image, *rest]
        return args

    @staticmethod
    def _sub(text: str, substitutions: dict[str, str]) -> str:
        for key, value in substitutions.items():
            text = text.replace("{{" + key + "}}", value)
        return text

    def run(
        self, container: dict, timeout: float = 900, substitutions: dict[str, str] | None = None
    ) -> str:
        """Run a container to its end; return its log.

        Raises:
            ContainerFailed: non-zero exit (the message holds the command and its log).
        """
        name = f"fl-{container['name']}-{uuid.uuid4().hex[:6]}"
        args = self._args(container, name, substitutions or {})
        try:
            out = subprocess.run(
                [*PODMAN, "run", "--rm", *args], capture_output=True, text=True, timeout=timeout
            )
        except subprocess.TimeoutExpired as err:
            subprocess.run([*PODMAN, "rm", "-f", name], capture_output=True)
            raise ContainerFailed(
                f"{container['name']}: still running after {timeout:.0f} s\n{err.stdout or ''}"
            ) from err
        if out.returncode != 0:
            raise ContainerFailed(
                f"{container['name']} exited {out.returncode}: {' '.join(args[args.index(self.image) :])}\n{out.stdout}\n{out.stderr}"
            )
        return out.stdout + out.stderr

    def start(self, container: dict) -> str:
        """Start a long-running container in the background; return its name. It is removed by
        `stop`, and in any case when the test module ends (conftest's `_stop_started_containers`)."""
        name = f"fl-{container['name']}-{uuid.uuid4().hex[:6]}"
        args = self._args(container, name, {})
        STARTED.append(name)
        out = subprocess.run(
            [*PODMAN, "run", "--detach", *args], capture_output=True, text=True, timeout=120
        )
        if out.returncode != 0:
            raise ContainerFailed(f"{container['name']}: podman run failed\n{out.stderr}")
        return name


def logs(name: str) -> str:
    out = subprocess.run([*PODMAN, "logs", name], capture_output=True, text=True)
    return out.stdout + out.stderr


def running(name: str) -> bool:
    out = subprocess.run(
        [*PODMAN, "inspect", "--format", "{{.State.Running}}", name], capture_output=True, text=True
    )
    return out.stdout.strip() == "true"


def stop(name: str) -> None:
    subprocess.run([*PODMAN, "rm", "-f", "-t", "5", name], capture_output=True)


def have_podman() -> list[str]:
    """The programs this tier needs that are missing (empty when all are there)."""
    missing = [p for p in ("podman", "runc", "debootstrap", "ip", "runuser") if not shutil.which(p)]
    if not Path("/usr/lib/postgresql").is_dir():
        missing.append("postgresql")
    if os.geteuid() != 0:
        missing.append("root (podman here runs rootful)")
    return missing
