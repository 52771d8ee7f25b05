"""Lab 15's pieces: the Pod Security "restricted" rules a running pod is read against, the
privileged pod the API server must refuse, the network probe's script, the local servers'
listening sockets, and where credentials must not appear.

Pod Security Standards, "Restricted" (https://kubernetes.io/docs/concepts/security/pod-security-standards/):
no host namespaces or hostPath volumes, no privileged containers, runAsNonRoot, no privilege
escalation, every capability dropped, a RuntimeDefault or Localhost seccomp profile.
"""

from __future__ import annotations

import re
import shlex

RESTRICTED_VOLUMES = {
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
    "projected", "secret",
}  # fmt: skip
CREDENTIAL_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|ACCESS_KEY|PRIVATE_KEY", re.I)
LOOPBACK = {"127.0.0.1", "::1", "::ffff:127.0.0.1"}  # the last: 127.0.0.1 on an IPv6 socket


def restricted_problems(pod: dict) -> list[str]:
    """What a pod spec (as the API returns it, camelCase) does that "restricted" forbids."""
    problems = []
    spec = pod.get("spec") or {}
    name = (pod.get("metadata") or {}).get("name", "?")
    context = spec.get("securityContext") or {}
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(field):
            problems.append(f"{name}: {field}")
    for volume in spec.get("volumes") or []:
        kinds = set(volume) - {"name"}
        if not kinds <= RESTRICTED_VOLUMES:
            problems.append(f"{name}: volume {volume['name']} is {', '.join(sorted(kinds))}")
    for c in (spec.get("initContainers") or []) + (spec.get("containers") or []):
        sc = c.get("securityContext") or {}
        where = f"{name}/{c['name']}"
        if not (sc.get("runAsNonRoot", context.get("runAsNonRoot"))):
            problems.append(f"{where}: runAsNonRoot not true")
        if sc.get("privileged"):
            problems.append(f"{where}: privileged")
        if sc.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{where}: allowPrivilegeEscalation not false")
        if "ALL" not in ((sc.get("capabilities") or {}).get("drop") or []):
            problems.append(f"{where}: capabilities.drop lacks ALL")
        seccomp = (sc.get("seccompProfile") or context.get("seccompProfile") or {}).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            problems.append(f"{where}: seccompProfile {seccomp}")
    return problems


def privileged_pod(image: str = "busybox:1.37") -> dict:
    """A pod that breaks "restricted" (privileged, root, host network and a hostPath volume); sent
    only with dryRun=All, so it is never created and its image never pulled."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "lab15-privileged-dry-run", "labels": {"app.kubernetes.io/name": "lab15-dry-run"}},
        "spec": {
            "hostNetwork": True,
            "volumes": [{"name": "host", "hostPath": {"path": "/"}}],
            "containers": [{
                "name": "root", "image": image, "command": ["sleep", "60"],
                "securityContext": {"privileged": True, "runAsUser": 0},
                "volumeMounts": [{"name": "host", "mountPath": "/host"}],
            }],
        },
    }  # fmt: skip


# The probe's script (python3 in the app image): a TCP connect to each (host, port) with a 3 s
# timeout; prints {"host:port": "open" | "timeout" | "refused" | "no DNS answer" | error}.
PROBE_TIMEOUT_S = 3


def probe_command(targets: list[tuple[str, int]]) -> str:
    """The shell command that runs the probe's script in a pod, for testinfra's `run`."""
    script = (
        "import json,socket\n"
        "out={}\n"
        f"for h,p in {targets!r}:\n"
        "    k=f'{h}:{p}'\n"
        "    try:\n"
        "        socket.getaddrinfo(h,p)\n"
        "    except OSError:\n"
        "        out[k]='no DNS answer'; continue\n"
        "    try:\n"
        f"        socket.create_connection((h,p),{PROBE_TIMEOUT_S}).close(); out[k]='open'\n"
        "    except socket.timeout:\n"
        "        out[k]='timeout'\n"
        "    except ConnectionRefusedError:\n"
        "        out[k]='refused'\n"
        "    except OSError as e:\n"
        "        out[k]=type(e).__name__\n"
        "print(json.dumps(out))\n"
    )
    return "python3 -c " + shlex.quote(script)


def listening_sockets(pids: dict[str, int]) -> dict[str, list[str]] | str:
    """The TCP sockets in LISTEN state of each named process and its children, as "address:port"
    (psutil, in the validators' venv); a process that cannot be read gets ["error: <type>"]."""
    import psutil

    out: dict[str, list[str]] = {}
    for name, pid in pids.items():
        try:
            procs = [psutil.Process(pid)]
            procs += procs[0].children(recursive=True)
        except psutil.Error as err:
            out[name] = [f"error: {type(err).__name__}"]
            continue
        found: set[str] = set()
        for proc in procs:
            try:
                found |= {
                    f"{c.laddr.ip}:{c.laddr.port}"
                    for c in proc.net_connections("tcp")
                    if c.status == psutil.CONN_LISTEN
                }
            except psutil.Error:
                pass
        out[name] = sorted(found)
    return out


def is_loopback(address: str) -> bool:
    """True for "127.0.0.1:5000", "::1:5000" or "::ffff:127.0.0.1:5000" (the address part of
    "ip:port"; the last is 127.0.0.1 on a dual-stack socket, as MLServer's gRPC server binds
    its port): the addresses the local stack binds. Another 127.x address is loopback too, but
    not what the stack chose."""
    return address.rsplit(":", 1)[0] in LOOPBACK


def found_secrets(text: str, secrets: dict[str, str]) -> list[str]:
    """The names of the secrets (name → value) whose value occurs in `text` (values shorter than
    6 characters are not searched: they would match by chance)."""
    return [name for name, value in secrets.items() if len(value) >= 6 and value in text]
