"""Local mode: MLflow and MLServer as processes on 127.0.0.1, started and stopped from Python.

Used by `fraudlab demo` and the integration tests; `fraudlab mlflow` / `fraudlab serve` run the
same commands in the foreground (as containers do in kind mode).

Example:
    >>> with start_mlflow(settings) as mlflow_server:        # doctest: +SKIP
    ...     print(mlflow_server.url)
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from ..config import Settings

READY_TIMEOUT_S = 120


class ServerError(RuntimeError):
    """A local server did not start or became unhealthy."""


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(host: str, port: int) -> bool:
    """True when something accepts TCP connections on host:port."""
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


class ManagedProcess:
    """A child process with a log file, a readiness URL and a clean stop (context manager)."""

    def __init__(
        self,
        name: str,
        cmd: list[str],
        log_path: Path,
        ready_url: str,
        url: str,
        env: dict | None = None,
    ):
        self.name, self.cmd, self.log_path, self.ready_url, self.url = (
            name,
            cmd,
            log_path,
            ready_url,
            url,
        )
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = READY_TIMEOUT_S) -> ManagedProcess:
        """Start the process and wait until `ready_url` answers 200.

        Raises:
            ServerError: if the process exits or is not ready within `timeout` seconds (the
                message holds the end of its log).
        """
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            self.cmd, stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerError(
                    f"{self.name} exited with code {self.proc.returncode}:\n{self.log_tail()}"
                )
            try:
                if httpx.get(self.ready_url, timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        self.stop()
        raise ServerError(
            f"{self.name} was not ready at {self.ready_url} after {timeout:.0f} s:\n{self.log_tail()}"
        )

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of the process log."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        """Stop the process group: SIGTERM, then SIGKILL after 15 s."""
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)
        except ProcessLookupError:
            pass

    def __enter__(self) -> ManagedProcess:
        return self.start() if self.proc is None else self

    def __exit__(self, *exc) -> None:
        self.stop()


def mlflow_command(
    settings: Settings, port: int, host: str = "127.0.0.1"
) -> tuple[list[str], dict]:
    """The `mlflow server` command line and extra environment for `settings`.

    Local mode: SQLite store and artifacts under `state_dir`. Kind mode: PostgreSQL backend, S3
    artifacts, allowed hosts and basic auth from the `mlflow_*` settings.

    Raises:
        ValueError: if auth is on and no admin password is set.
    """
    state = Path(settings.state_dir).resolve()
    state.mkdir(parents=True, exist_ok=True)
    # --8<-- [start:server]
    backend = settings.mlflow_backend_store_uri or f"sqlite:///{state / 'mlflow.db'}"
    artifacts = settings.mlflow_artifacts_destination or str(state / "mlartifacts")
    cmd = [
        sys.executable, "-m", "mlflow", "server",
        "--backend-store-uri", backend,
        "--artifacts-destination", artifacts,
        "--host", host, "--port", str(port), "--workers", "1",
    ]  # fmt: skip
    # NOTE: without this, MLflow 3 starts a job runner with 7 consumers (~1.8 GB instead of ~0.5 GB).
    env = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    # --8<-- [end:server]
    if settings.mlflow_allowed_hosts:
        cmd += ["--allowed-hosts", settings.mlflow_allowed_hosts]
    if settings.mlflow_prometheus_dir:
        Path(settings.mlflow_prometheus_dir).mkdir(parents=True, exist_ok=True)
        cmd += ["--expose-prometheus", settings.mlflow_prometheus_dir]
    if settings.mlflow_auth:
        if settings.mlflow_admin_password is None:
            raise ValueError("FRAUD_MLFLOW_AUTH is on but FRAUD_MLFLOW_ADMIN_PASSWORD is not set")
        users = settings.mlflow_auth_database_uri or f"sqlite:///{state / 'mlflow-auth.db'}"
        ini = state / "mlflow-auth.ini"
        ini.write_text(
            "[mlflow]\n"
            "default_permission = READ\n"
            f"database_uri = {users}\n"
            f"admin_username = {settings.mlflow_admin_username}\n"
            "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        )
        cmd += ["--app-name", "basic-auth"]
        env |= {
            "MLFLOW_AUTH_CONFIG_PATH": str(ini),
            "MLFLOW_AUTH_ADMIN_PASSWORD": settings.mlflow_admin_password.get_secret_value(),
        }
        if not os.environ.get("MLFLOW_FLASK_SERVER_SECRET_KEY"):
            # CSRF key of the auth app: from a Secret in kind mode; locally one per state folder.
            key_file = state / "mlflow-secret-key"
            if not key_file.exists():
                key_file.write_text(secrets.token_hex(32))
                key_file.chmod(0o600)
            env["MLFLOW_FLASK_SERVER_SECRET_KEY"] = key_file.read_text().strip()
    return cmd, env


LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


def exposure_warning(settings: Settings, host: str) -> str | None:
    """A warning when MLflow would listen beyond this machine; None on a loopback address.

    Example:
        >>> exposure_warning(Settings(), "0.0.0.0")[:42]
        'MLflow listens on 0.0.0.0, beyond 127.0.0.1'
    """
    if host in LOOPBACK_HOSTS:
        return None
    if settings.mlflow_auth:
        return (
            f"MLflow listens on {host}, beyond 127.0.0.1: every host that reaches it can try "
            "users and passwords (basic auth is on); keep it on 127.0.0.1 outside a cluster"
        )
    return (
        f"MLflow listens on {host}, beyond 127.0.0.1, without auth: every host that reaches it "
        "can read and change the registry, and move the champion alias. Use --host 127.0.0.1, "
        "or turn on basic auth (FRAUD_MLFLOW_AUTH=true, or `fraudlab up --auth`)"
    )


def client_env(settings: Settings) -> dict[str, str]:
    """The secrets a local server's child needs, which `Settings.as_env` leaves out: the model
    repository's admin token (`launchers.mlserver.admin_token`) and, when an MLflow admin password
    is set, MLflow's client credential (`Settings.mlflow_client_env`)."""
    from .mlserver import admin_token

    env = settings.mlflow_client_env()
    token = admin_token(settings)
    if token is not None:
        env["FRAUD_SERVING_ADMIN_TOKEN"] = token
    return env


def start_mlflow(settings: Settings, port: int | None = None) -> ManagedProcess:
    """Start a local MLflow server (not yet waited for: use it as a context manager or `.start()`)."""
    port = port or settings.mlflow_port
    cmd, env = mlflow_command(settings, port)
    url = f"http://127.0.0.1:{port}"
    return ManagedProcess(
        "MLflow", cmd, Path(settings.state_dir) / "logs" / "mlflow.log", f"{url}/health", url, env
    )


def start_mlserver(settings: Settings) -> ManagedProcess:
    """Start `fraudlab serve` with MLServer and the fraud runtime, configured from `settings`."""
    fraudlab = shutil.which("fraudlab", path=str(Path(sys.executable).parent)) or "fraudlab"
    url = f"http://{settings.serve_host}:{settings.http_port}"
    ready = f"{url}/v2/models/{settings.model_name}/ready"
    return ManagedProcess(
        "MLServer",
        [fraudlab, "serve"],
        Path(settings.state_dir) / "logs" / "mlserver.log",
        ready,
        url,
        settings.as_env() | client_env(settings),
    )


# Lab 10's canary (`fraudlab up --canary`): the challenger and the shadow are MLServers of their own,
# on the champion's ports plus these offsets (REST, gRPC and metrics alike), behind the router.
VARIANT_PORT_OFFSETS = {"challenger": 100, "shadow": 200}
VARIANT_ALIASES = {"challenger": "challenger", "shadow": "challenger"}
"""The alias each variant serves: the shadow mirrors the challenger on every request (its
answers only reach the router's metrics) while the canary shows it to a share of clients."""


def variant_settings(settings: Settings, variant: str) -> Settings:
    """`settings` for the MLServer of `variant` ("challenger" or "shadow"): the registry alias it
    serves and its ports (`VARIANT_PORT_OFFSETS`)."""
    offset = VARIANT_PORT_OFFSETS[variant]
    return settings.model_copy(
        update={
            "model_uri": f"models:/{settings.model_name}@{VARIANT_ALIASES[variant]}",
            "http_port": settings.http_port + offset,
            "grpc_port": settings.grpc_port + offset,
            "metrics_port": settings.metrics_port + offset,
        }
    )


def start_variant(settings: Settings, variant: str) -> ManagedProcess:
    """`fraudlab serve` for a canary variant, with a config folder and a log of its own."""
    vs = variant_settings(settings, variant)
    fraudlab = shutil.which("fraudlab", path=str(Path(sys.executable).parent)) or "fraudlab"
    url = f"http://{vs.serve_host}:{vs.http_port}"
    return ManagedProcess(
        f"MLServer ({variant})",
        [fraudlab, "serve", "--config-dir", str(Path(vs.state_dir) / f"mlserver-{variant}")],
        Path(vs.state_dir) / "logs" / f"mlserver-{variant}.log",
        f"{url}/v2/models/{vs.model_name}/ready",
        url,
        vs.as_env() | client_env(vs),
    )


def router_settings(settings: Settings) -> Settings:
    """`settings` of the local router: the champion, the challenger and the shadow of the stack."""
    host = settings.serve_host
    return settings.model_copy(
        update={
            "router_champion_url": f"http://{host}:{settings.http_port}",
            "router_challenger_url": f"http://{host}:{variant_settings(settings, 'challenger').http_port}",
            "router_shadow_url": f"http://{host}:{variant_settings(settings, 'shadow').http_port}",
        }
    )


def start_router(settings: Settings) -> ManagedProcess:
    """`fraudlab route serve` on `router_port`, ready once both variants with traffic are."""
    rs = router_settings(settings)
    return _fraudlab(
        rs,
        "Router",
        ["route", "serve"],
        f"/v2/models/{rs.model_name}/ready",
        rs.router_port,
    )


def stack_file(settings: Settings) -> Path:
    """Where `fraudlab up` records the processes and URLs of the local stack."""
    return Path(settings.state_dir) / "stack.json"


def pid_alive(pid: int) -> bool:
    """True when a process with this pid exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def start_prometheus(settings: Settings, mlflow_url: str | None = None) -> ManagedProcess:
    """A local Prometheus scraping the model, the drift exporter (and MLflow), with the alert rules."""
    from .prometheus import prometheus_command

    folder = Path(settings.state_dir).resolve() / "prometheus"
    url = f"http://127.0.0.1:{settings.prometheus_port}"
    return ManagedProcess(
        "Prometheus",
        prometheus_command(settings, folder, mlflow_url),
        Path(settings.state_dir) / "logs" / "prometheus.log",
        f"{url}/-/ready",
        url,
    )


def start_alertmanager(settings: Settings) -> ManagedProcess:
    """A local Alertmanager routing `action=retrain` alerts to the continuous-training controller."""
    from .prometheus import alertmanager_command

    folder = Path(settings.state_dir).resolve() / "alertmanager"
    url = f"http://127.0.0.1:{settings.alertmanager_port}"
    return ManagedProcess(
        "Alertmanager",
        alertmanager_command(settings, folder),
        Path(settings.state_dir) / "logs" / "alertmanager.log",
        f"{url}/-/ready",
        url,
    )


def _fraudlab(
    settings: Settings, name: str, args: list[str], ready_path: str, port: int
) -> ManagedProcess:
    fraudlab = shutil.which("fraudlab", path=str(Path(sys.executable).parent)) or "fraudlab"
    url = f"http://127.0.0.1:{port}"
    return ManagedProcess(
        name,
        [fraudlab, *args],
        Path(settings.state_dir) / "logs" / f"{name.lower()}.log",
        f"{url}{ready_path}",
        url,
        settings.as_env() | client_env(settings),
    )


def start_monitor(settings: Settings) -> ManagedProcess:
    """`fraudlab monitor`: drift and delayed-label performance on /metrics."""
    return _fraudlab(
        settings,
        "Monitor",
        ["monitor", "--port", str(settings.monitor_port)],
        "/metrics",
        settings.monitor_port,
    )


def start_ct_controller(settings: Settings) -> ManagedProcess:
    """`fraudlab ct-controller`: Alertmanager's webhook receiver that retrains."""
    return _fraudlab(
        settings,
        "CT-controller",
        ["ct-controller", "--port", str(settings.ct_port)],
        "/healthz",
        settings.ct_port,
    )


def stack_up(
    settings: Settings,
    monitoring: bool = False,
    auth: bool = False,
    canary: bool = False,
    features: bool = False,
) -> dict:
    """Start MLflow and MLServer (serving `model_uri`) in the background and record them.

    With `monitoring`, also the drift exporter, Prometheus, Alertmanager and the
    continuous-training controller (ports from the `*_port` settings). With `canary` (lab 10), also
    the challenger and the shadow (MLServers serving the alias challenger, `VARIANT_PORT_OFFSETS`)
    and the router on `router_port` in front of them, its split file reset to `canary_traffic`.
    With `auth`, MLflow runs its basic-auth app (as in kind mode) and every server started here
    passes the credential.
    With `features` (lab 04), also the Feast feature store: sources exported from the features
    dataset, applied, materialized, and the feature server on `feature_server_port`
    (`launchers.feast`).
    Every server listens on 127.0.0.1 only. MLServer's model repository API (which the
    controller uses to reload a new champion) answers only a token made here, per state folder.

    The processes outlive this call (their own session); `stack_down` stops them.

    Returns:
        The stack record written to `stack_file(settings)`: per server its pid and URLs.

    Raises:
        ServerError: if a port is taken, a server does not become ready, or `auth` is asked
            without an MLflow admin password.
        FeatureStoreError: with `features`, Feast is not installed (raised before any server
            starts) or a Feast command failed.
    """
    if auth:
        if settings.mlflow_admin_password is None:
            raise ServerError(
                "--auth needs the MLflow admin password in FRAUD_MLFLOW_ADMIN_PASSWORD (the "
                "environment or .env): e.g. `echo FRAUD_MLFLOW_ADMIN_PASSWORD=$(openssl rand -hex "
                "16) >> .env`; every fraudlab command then signs in with it"
            )
        settings = settings.model_copy(update={"mlflow_auth": True})
    current = stack_status(settings)
    if current and all(entry["alive"] for entry in current.values()):
        return current
    ports = [settings.mlflow_port, settings.http_port, settings.grpc_port, settings.metrics_port]
    if monitoring:
        ports += [
            settings.monitor_port,
            settings.prometheus_port,
            settings.alertmanager_port,
            settings.ct_port,
        ]
    if canary:
        for variant in VARIANT_PORT_OFFSETS:
            vs = variant_settings(settings, variant)
            ports += [vs.http_port, vs.grpc_port, vs.metrics_port]
        ports.append(settings.router_port)
    if features:
        from .feast import feast_bin

        feast_bin(settings)  # FeatureStoreError (how to install Feast) before any server starts
        ports.append(settings.feature_server_port)
    for port in ports:
        if port_open("127.0.0.1", port):
            raise ServerError(
                f"port {port} on 127.0.0.1 is already in use: stop what listens there or set FRAUD_*_PORT"
            )
    if monitoring:  # lab 12's burn_rate_threshold (FRAUD_LAB_CODE) renders the SLO rules: fail
        from ..monitoring.slo import slo_rule_group  # before starting anything, naming its file

        slo_rule_group()
    from .mlserver import admin_token

    admin_token(settings, create=True)
    if monitoring and not settings.mlflow_prometheus_dir:
        settings = settings.model_copy(
            update={
                "mlflow_prometheus_dir": str(Path(settings.state_dir).resolve() / "mlflow-metrics")
            }
        )
    started: list[tuple[str, ManagedProcess]] = []
    try:
        mlflow_proc = start_mlflow(settings).start()
        started.append(("mlflow", mlflow_proc))
        settings = settings.model_copy(
            update={
                "mlflow_tracking_uri": mlflow_proc.url,
                "inference_url": f"http://{settings.serve_host}:{settings.http_port}",
            }
        )
        os.environ.update(settings.mlflow_client_env())  # serving_problem asks MLflow
        problem = serving_problem(settings)
        if problem:
            raise ServerError(problem)
        started.append(("mlserver", start_mlserver(settings).start()))
        if canary:
            from ..serving.router import config_from_settings, write_split

            for variant in VARIANT_PORT_OFFSETS:
                problem = serving_problem(variant_settings(settings, variant))
                if problem:
                    raise ServerError(f"the {variant}: {problem}")
            for variant in VARIANT_PORT_OFFSETS:
                started.append((f"mlserver-{variant}", start_variant(settings, variant).start()))
            write_split(config_from_settings(settings).split_file, settings.canary_traffic)
            started.append(("router", start_router(settings).start()))
        if features:
            from . import feast

            feast.prepare(settings)
            started.append(("feast", feast.start_feature_server(settings).start()))
        if monitoring:
            started.append(("monitor", start_monitor(settings).start()))
            started.append(("ct-controller", start_ct_controller(settings).start()))
            started.append(("alertmanager", start_alertmanager(settings).start()))
            started.append(("prometheus", start_prometheus(settings, mlflow_proc.url).start()))
    except Exception:
        for _, proc in reversed(started):
            proc.stop()
        raise
    record = {
        name: {"pid": proc.proc.pid, "url": proc.url, "log": str(proc.log_path)}
        for name, proc in started
    }
    record["mlserver"] |= {
        "grpc": f"{settings.serve_host}:{settings.grpc_port}",
        "metrics_url": f"http://{settings.serve_host}:{settings.metrics_port}/metrics",
    }
    stack_file(settings).write_text(json.dumps(record, indent=2))
    return record


def serving_problem(settings: Settings) -> str | None:
    """Why MLServer could not load `settings.model_uri` from the registry now, naming the command
    that fixes it; None when the model it names exists.

    Example:
        "no version of fraud-detector carries the alias champion (versions: 1, 2, 3): test one and
        decide its alias (a version without passed model tests gets none, lab 07): `fraudlab
        model-test --version 3 && fraudlab promote --version 3`"
    """
    from .. import tracking

    if not settings.model_uri.startswith("models:/"):
        return None
    ref = settings.model_uri[len("models:/") :]
    name, _, alias = ref.partition("@")
    name, _, version = name.partition("/")
    tracking.configure(settings.mlflow_tracking_uri)
    versions = tracking.versions(name)
    if not versions:
        return (
            f"model {name} has no registered version in MLflow ({settings.mlflow_tracking_uri}): "
            "train and promote one with `fraudlab demo` (or: `fraudlab pipeline`, `fraudlab mlflow` "
            "in another terminal, `fraudlab train`, then stop that MLflow: `fraudlab up` starts its own)"
        )
    listed = ", ".join(versions)
    if alias and tracking.alias_version(name, alias) is None:
        return (
            f"no version of {name} carries the alias {alias} (versions: {listed}): test one and "
            f"decide its alias (a version without passed model tests gets none): `fraudlab "
            f"model-test --version {versions[-1]} && fraudlab promote --version {versions[-1]}`"
        )
    if version and version not in versions:
        return f"{name} has no version {version} (versions: {listed}): set FRAUD_MODEL_URI to one of them"
    return None


def stack_status(settings: Settings) -> dict | None:
    """The recorded stack with `alive` per server, or None when `fraudlab up` has not run."""
    path = stack_file(settings)
    if not path.exists():
        return None
    record = json.loads(path.read_text())
    for entry in record.values():
        entry["alive"] = pid_alive(entry["pid"])
    return record


def stack_down(settings: Settings) -> list[str]:
    """Stop the processes recorded by `stack_up` (SIGTERM, then SIGKILL); return their names."""
    record = stack_status(settings)
    stopped = []
    for name, entry in (record or {}).items():
        if entry["alive"]:
            try:
                os.killpg(entry["pid"], signal.SIGTERM)
                deadline = time.monotonic() + 15
                while pid_alive(entry["pid"]) and time.monotonic() < deadline:
                    time.sleep(0.2)
                if pid_alive(entry["pid"]):
                    os.killpg(entry["pid"], signal.SIGKILL)
            except ProcessLookupError:
                pass
            stopped.append(name)
    stack_file(settings).unlink(missing_ok=True)
    return stopped
