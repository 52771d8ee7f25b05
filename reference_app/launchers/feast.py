"""Local mode: the Feast feature store, run from its own environment (`.venv-feast`).

Feast 0.67 needs Starlette ≥ 1.0 while MLServer 1.7 caps FastAPI below 0.116 (Starlette < 0.47),
so Feast cannot share the app's venv: it runs as its own commands and its own server, as it does
in production. `fraudlab up --features` runs, in order (`prepare`, then `start_feature_server`):

1. `export`: the features dataset → the point-in-time entity tables (`features.online`), the
   offline sources, under `<state_dir>/feast/source`;
2. `feast apply`: the definitions of reference_app/feature_repo → the registry;
3. `feast materialize START END`: for each entity, its newest source row with a time in
   [START, END] (both included: feast/infra/offline_stores/dask.py,
   `pull_latest_from_table_or_query`) → the online store (SQLite, `<state_dir>/feast/online.db`);
4. `feast serve`: the feature server on 127.0.0.1 (`POST /get-online-features`, `GET /health`:
   feast/feature_server.py).

Example:
    >>> apply(settings); materialize(settings, start, end)        # doctest: +SKIP
    >>> with start_feature_server(settings) as server: ...        # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import tempfile
from pathlib import Path

import pandas as pd

from ..config import Settings
from ..features.online import as_utc
from .stack import ManagedProcess

REPO = Path(__file__).resolve().parents[1] / "feature_repo"
"""The Feast feature repository (definitions, feature_store.yaml)."""
LOCAL_YAML = REPO / "feature_store.yaml"
COMMAND_TIMEOUT_S = 600


class FeatureStoreError(RuntimeError):
    """A Feast command failed, or Feast is not installed (the message says how to fix it)."""


def feast_dir(settings: Settings) -> Path:
    """Where local mode keeps Feast's registry, online store and offline sources."""
    return Path(settings.state_dir).resolve() / "feast"


def source_dir(settings: Settings) -> Path:
    """The offline sources: one Parquet file per feature view."""
    return feast_dir(settings) / "source"


def feast_env(settings: Settings) -> dict[str, str]:
    """The environment the feature repository reads (feature_store.yaml expands `${VAR}`).

    FEAST_REPO_DELAY_DAYS is `settings.delta_delay`: the label delay the features dataset's
    terminal windows were built with (orchestration/pipeline.py passes it to
    `build_features(delay_days=...)`), so the terminal view's ttl matches the data it serves."""
    return {
        "FEAST_REPO_STATE": str(feast_dir(settings)),
        "FEAST_REPO_SOURCE": str(source_dir(settings)),
        "FEAST_REPO_DELAY_DAYS": str(settings.delta_delay),
        "FEAST_REPO_YAML": str(LOCAL_YAML),
    }


def feast_bin(settings: Settings) -> Path:
    """The `feast` command of `.venv-feast`.

    Raises:
        FeatureStoreError: it is not installed.
    """
    path = Path(settings.feast_bin)
    if not path.is_absolute():
        path = Path(__file__).resolve().parents[2] / path
    if not path.is_file():
        raise FeatureStoreError(
            f"Feast is not installed at {path}: run `make feast` (Feast has an environment of its "
            "own, .venv-feast, because its web stack conflicts with MLServer's)"
        )
    return path


def feast_command(settings: Settings, *args: str) -> list[str]:
    """The `feast` command line for the feature repository, local configuration."""
    return [str(feast_bin(settings)), "-c", str(REPO), "-f", str(LOCAL_YAML), *args]


def _run(
    command: list[str], env: dict[str, str], what: str, timeout_s: float | None = None
) -> subprocess.CompletedProcess:
    """Run `command` with `env` added to the environment, output captured.

    Raises:
        FeatureStoreError: it ran longer than `timeout_s` (default `COMMAND_TIMEOUT_S`; killed:
            `subprocess.run`), naming `what`, the command line and the timeout.
    """
    timeout_s = COMMAND_TIMEOUT_S if timeout_s is None else timeout_s
    try:
        return subprocess.run(
            command,
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
    except subprocess.TimeoutExpired as err:
        raise FeatureStoreError(
            f"{what} did not finish within {timeout_s:g} s and was stopped: {' '.join(command)}"
        ) from err


def run_feast(settings: Settings, *args: str) -> str:
    """Run a `feast` command; its output.

    Raises:
        FeatureStoreError: it failed (the message holds the end of its output), or it ran longer
            than `COMMAND_TIMEOUT_S` (names the command and the timeout).
    """
    feast_dir(settings).mkdir(parents=True, exist_ok=True)
    result = _run(feast_command(settings, *args), feast_env(settings), f"feast {' '.join(args)}")
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-20:])
        raise FeatureStoreError(f"feast {' '.join(args)} failed ({result.returncode}):\n{tail}")
    return result.stdout


def apply(settings: Settings) -> str:
    """`feast apply`: register the entities, sources and feature views."""
    return run_feast(settings, "apply")


def _iso(when: dt.datetime | pd.Timestamp | str) -> str:
    return as_utc(when).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def materialize(
    settings: Settings, start: dt.datetime | pd.Timestamp, end: dt.datetime | pd.Timestamp
) -> str:
    """`feast materialize START END`: each entity's newest row with time in [start, end] (both
    included; naive times are UTC) → the online store."""
    return run_feast(settings, "materialize", _iso(start), _iso(end))


def historical_features(settings: Settings, rows: pd.DataFrame) -> pd.DataFrame:
    """Point-in-time features of entity rows from Feast's offline store (for training).

    Args:
        rows: (n, ≥ 3) `CUSTOMER_ID`, `TERMINAL_ID`, `event_timestamp` (naive: UTC).

    Returns:
        `rows`' columns plus the 12 window features, same row order; null where no source row of
        the entity is at or before the time within the view's ttl.

    Raises:
        FeatureStoreError: Feast failed.
    """
    python = feast_bin(settings).parent / "python"
    with tempfile.TemporaryDirectory() as tmp:
        given, out = Path(tmp) / "rows.parquet", Path(tmp) / "out.parquet"
        frame = rows.copy()
        frame["event_timestamp"] = [as_utc(t) for t in frame["event_timestamp"]]
        frame.to_parquet(given, index=False)
        result = _run(
            [str(python), str(REPO / "offline.py"), str(given), str(out)],
            feast_env(settings),
            "historical features (feature_repo/offline.py)",
        )
        if result.returncode != 0:
            tail = "\n".join((result.stdout + result.stderr).splitlines()[-20:])
            raise FeatureStoreError(f"historical features failed ({result.returncode}):\n{tail}")
        return pd.read_parquet(out)


def start_feature_server(settings: Settings) -> ManagedProcess:
    """`feast serve` on 127.0.0.1:`feature_server_port` (not yet waited for: `.start()`).
    Ready when `GET /health` answers 200 (feast/feature_server.py)."""
    url = f"http://127.0.0.1:{settings.feature_server_port}"
    return ManagedProcess(
        "Feast feature server",
        feast_command(
            settings,
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(settings.feature_server_port),
            "--no-access-log",
        ),
        Path(settings.state_dir) / "logs" / "feast.log",
        f"{url}/health",
        url,
        feast_env(settings),
    )


PARITY_ROWS = "parity-rows.parquet"
"""The entity rows of lab 04's sample (`fraudlab feature-store export`), which kind mode's Feast
image joins point-in-time into `PARITY_OFFLINE` (feature_repo/offline.py)."""
PARITY_OFFLINE = "parity-offline.parquet"
WINDOW_ENV = "window.env"
"""Shell variables START and END of the materialized window (kind mode's Feast container reads
them: `feast materialize "$START" "$END"`)."""


def export(settings: Settings, as_of: dt.datetime | pd.Timestamp | None = None) -> dict:
    """Step 1 of the feature store: the offline sources from the features dataset, a copy of the
    feature repository next to them, and the window to materialize: up to `as_of` (default: the
    dataset's newest transaction), from the longest ttl before it. Kind mode runs this in the
    app image and Feast's commands in Feast's image, both on the `fraud-data` volume.

    Returns:
        {"start", "end", "sources": {view: path}, "repo": path} (times ISO 8601, UTC).

    Raises:
        DatasetError: there is no features dataset (`fraudlab features`).
    """
    import shutil

    from ..data import store
    from ..features.online import export_sources, ttl_days
    from ..serving.online import write_materialized

    features = store.read_dataset(settings.features_dir)
    sources = export_sources(features, source_dir(settings))
    end = as_utc(as_of if as_of is not None else features["TX_DATETIME"].max())
    start = max(
        end - pd.Timedelta(days=max(ttl_days(settings.delta_delay).values())),
        as_utc(features["TX_DATETIME"].min()),
    )
    repo = feast_dir(settings) / "repo"
    shutil.copytree(REPO, repo, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
    write_materialized(settings, start, end)
    (feast_dir(settings) / WINDOW_ENV).write_text(f"START={_iso(start)}\nEND={_iso(end)}\n")
    return {
        "start": start.isoformat(),
        "end": end.isoformat(),
        "sources": {k: str(v) for k, v in sources.items()},
        "repo": str(repo),
    }


def prepare(settings: Settings, as_of: dt.datetime | pd.Timestamp | None = None) -> dict:
    """Steps 1–3 of the feature store, local mode: `export`, `feast apply`, `feast materialize`
    of the exported window.

    Returns:
        `export`'s record.

    Raises:
        FeatureStoreError: Feast is not installed or a command failed.
        DatasetError: there is no features dataset (`fraudlab features`).
    """
    feast_bin(settings)  # fail before exporting when Feast is missing
    window = export(settings, as_of)
    apply(settings)
    materialize(settings, pd.Timestamp(window["start"]), pd.Timestamp(window["end"]))
    return window
