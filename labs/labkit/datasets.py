"""Datasets and reports: dataset manifests under the local data directory (FRAUD_DATA_DIR) or on
the cluster's `fraud-data` volume (read on its kind node, no pod needed), and the newest replay
report of `fraudlab replay`.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from .cluster import Cluster, node_host, run_in
from .endpoints import data_dir
from .hints import kubectl, short
from .names import DATA_MOUNT, DATA_PVC, NAMESPACE
from .objects import pv_location


class DatasetsUnavailable(RuntimeError):
    """The dataset volume cannot be read; `fix` is the command that shows why."""

    def __init__(self, message: str, fix: str):
        super().__init__(message)
        self.fix = fix


class LocalDatasets:
    """Dataset manifests under the local data directory (FRAUD_DATA_DIR)."""

    def __init__(self, root: Path | None = None):
        self.root = root or data_dir()

    def where(self, name: str) -> str:
        return f"{self.root}/{name}"

    def manifest(self, name: str) -> dict | None:
        path = self.root / name / "manifest.json"
        try:
            return json.loads(path.read_text())
        except FileNotFoundError:
            return None

    def missing_files(self, name: str, files: list[str]) -> list[str]:
        return [f for f in files if not (self.root / name / f).is_file()]

    def show(self, name: str) -> str:
        return f"cat {self.where(name)}/manifest.json"


class ClusterDatasets:
    """Dataset manifests on the `fraud-data` volume, read on its kind node with testinfra (docker://).

    No pod needs to run: kind's local-path volumes are folders on the node container.
    """

    def __init__(self, cluster: Cluster):
        pvc = cluster.read(
            cluster.core.read_namespaced_persistent_volume_claim, DATA_PVC, NAMESPACE
        )
        if pvc is None:
            raise DatasetsUnavailable(
                f"PersistentVolumeClaim {DATA_PVC} does not exist in {NAMESPACE}",
                kubectl(f"-n {NAMESPACE} get pvc"),
            )
        volume = (pvc.spec.volume_name or "") if pvc.spec else ""
        if not volume:
            raise DatasetsUnavailable(
                f"PersistentVolumeClaim {DATA_PVC} is not bound yet (no pod has used it)",
                kubectl(f"-n {NAMESPACE} describe pvc {DATA_PVC}"),
            )
        pv = cluster.to_dict(cluster.read(cluster.core.read_persistent_volume, volume))
        self.node, self.path = pv_location(pv or {})
        if not (self.node and self.path):
            raise DatasetsUnavailable(
                f"PersistentVolume {volume} is not a local-path volume on a kind node",
                kubectl(f"get pv {volume} -o yaml"),
            )
        self.host = node_host(self.node)
        probe = run_in(self.host, f"ls {shlex.quote(self.path)}")
        if probe.rc != 0:
            raise DatasetsUnavailable(
                f"cannot read {self.path} on node {self.node}: {short(probe.stderr or probe.stdout or f'exit status {probe.rc}', 120)}",
                f"docker exec {self.node} ls {self.path}",
            )

    def where(self, name: str) -> str:
        return f"{DATA_MOUNT}/{name} (volume {DATA_PVC} at {self.node}:{self.path}/{name})"

    def _file(self, name: str, file: str) -> str:
        return f"{self.path}/{name}/{file}"

    def manifest(self, name: str) -> dict | None:
        result = run_in(self.host, f"cat {shlex.quote(self._file(name, 'manifest.json'))}")
        if result.rc != 0:
            if "No such file" in (result.stderr or "") or result.rc == 1:
                return None
            raise DatasetsUnavailable(
                f"cannot read the volume on node {self.node}: {short(result.stderr)}",
                f"docker exec {self.node} ls {self.path}",
            )
        return json.loads(result.stdout)

    def missing_files(self, name: str, files: list[str]) -> list[str]:
        listing = run_in(self.host, f"ls -1 {shlex.quote(f'{self.path}/{name}')}")
        present = set(listing.stdout.split()) if listing.rc == 0 else set()
        return [f for f in files if f not in present]

    def show(self, name: str) -> str:
        return f"docker exec {self.node} cat {self._file(name, 'manifest.json')}"


def latest_replay(reports: Path | None = None) -> tuple[Path | None, dict | None]:
    """The newest `replay-<day>.json` written by `fraudlab replay` under the reports folder."""
    folder = reports or data_dir() / "reports"
    found = (
        sorted(folder.glob("replay-*.json"), key=lambda p: p.stat().st_mtime)
        if folder.is_dir()
        else []
    )
    if not found:
        return None, None
    try:
        return found[-1], json.loads(found[-1].read_text())
    except ValueError:
        return found[-1], None
