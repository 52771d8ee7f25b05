"""Datasets on any fsspec filesystem: one Parquet file per day plus a `manifest.json`.

A dataset directory holds `YYYY-MM-DD.parquet` files and a manifest with row and fraud counts,
a content digest and the parameters or inputs that produced it. The digest covers the values,
not the file bytes, so the same data written by another library version has the same digest.

Example:
    >>> write_dataset(frame, "data/raw", params={"seed": 0})   # doctest: +SKIP
    >>> read_dataset("data/raw").shape                         # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Iterable, Iterator

import fsspec
import pandas as pd

MANIFEST = "manifest.json"
READABLE_SUFFIXES = (".parquet", ".pkl", ".pickle")


class DatasetError(RuntimeError):
    """A dataset is missing, empty or unreadable."""


def fs_and_path(url: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """The fsspec filesystem of `url` and the path inside it (no trailing slash)."""
    fs, path = fsspec.core.url_to_fs(url)
    return fs, path.rstrip("/")


def frame_digest(frame: pd.DataFrame) -> str:
    """Return a SHA-256 hex digest of a frame's column names and values (row order matters)."""
    h = hashlib.sha256(",".join(map(str, frame.columns)).encode())
    if len(frame):
        h.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return h.hexdigest()


def combine_digests(digests: Iterable[str]) -> str:
    """Return one digest for an ordered sequence of digests."""
    h = hashlib.sha256()
    for d in digests:
        h.update(d.encode())
    return h.hexdigest()


def list_files(url: str) -> list[str]:
    """List the Parquet/pickle files of a dataset directory, sorted by name.

    Raises:
        DatasetError: if the directory does not exist or holds no readable file.
    """
    fs, path = fs_and_path(url)
    if not fs.isdir(path):
        raise DatasetError(f"dataset directory {url} does not exist")
    files = sorted(p for p in fs.ls(path, detail=False) if p.endswith(READABLE_SUFFIXES))
    if not files:
        raise DatasetError(f"{url} holds no .parquet or .pkl file")
    return [fs.unstrip_protocol(p) if "://" in url else p for p in files]


def read_file(url: str) -> pd.DataFrame:
    """Read one Parquet or pandas-pickle file into a DataFrame."""
    with fsspec.open(url, "rb") as f:
        if url.endswith(".parquet"):
            return pd.read_parquet(f)
        obj = pd.read_pickle(f)
    if not isinstance(obj, pd.DataFrame):
        raise DatasetError(f"{url} holds a {type(obj).__name__}, not a pandas DataFrame")
    return obj


def iter_files(url: str) -> Iterator[tuple[str, pd.DataFrame]]:
    """Yield `(file name, frame)` for each file of a dataset directory, in name order."""
    for path in list_files(url):
        yield path.rsplit("/", 1)[-1], read_file(path)


def read_dataset(url: str, days: tuple[dt.date, dt.date] | None = None) -> pd.DataFrame:
    """Read a whole dataset, or the days in `days` = (first, last) inclusive when files are per day.

    Raises:
        DatasetError: if the directory is missing or empty.
    """
    paths = list_files(url)
    if days is not None:
        first, last = (d.isoformat() for d in days)
        paths = [p for p in paths if first <= p.rsplit("/", 1)[-1][:10] <= last]
        if not paths:
            raise DatasetError(f"{url} has no file for the days {first} … {last}")
    return pd.concat([read_file(p) for p in paths], ignore_index=True)


def read_manifest(url: str) -> dict | None:
    """Return a dataset's manifest, or None when it has none."""
    fs, path = fs_and_path(url)
    target = f"{path}/{MANIFEST}"
    if not fs.exists(target):
        return None
    with fs.open(target, "r") as f:
        return json.load(f)


def write_dataset(
    frame: pd.DataFrame,
    url: str,
    *,
    name: str,
    day_column: str = "TX_DATETIME",
    extra: dict | None = None,
) -> dict:
    """Write `frame` as one Parquet file per day plus a manifest; replace what was there.

    Args:
        frame: rows to write; `day_column` (datetime64) splits them into files.
        url: dataset directory (local path or fsspec URL).
        name: dataset name recorded in the manifest (e.g. "raw", "features").
        extra: more manifest fields (generator parameters, input digests, …).

    Returns:
        The manifest: `name`, `rows`, `frauds` (when `TX_FRAUD` exists), `digest`, `files`
        (name, rows, digest per file), `created_at` and the `extra` fields.
    """
    fs, final = fs_and_path(url)
    # Write next to the target, then swap it in: readers see the old dataset or the whole new
    # one with its manifest, never a half-written folder (pipeline Jobs run concurrently).
    path = f"{final}.tmp-{uuid.uuid4().hex[:8]}"
    fs.makedirs(path, exist_ok=True)
    files = []
    if len(frame):
        days = frame[day_column].dt.strftime("%Y-%m-%d")
        for day, part in frame.groupby(days, sort=True):
            part = part.reset_index(drop=True)
            with fs.open(f"{path}/{day}.parquet", "wb") as f:
                part.to_parquet(f, index=False)
            files.append(
                {"name": f"{day}.parquet", "rows": len(part), "digest": frame_digest(part)}
            )
    manifest = {
        "name": name,
        "rows": int(len(frame)),
        "digest": combine_digests(f["digest"] for f in files),
        "files": files,
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        **({"frauds": int(frame["TX_FRAUD"].sum())} if "TX_FRAUD" in frame else {}),
        **(extra or {}),
    }
    with fs.open(f"{path}/{MANIFEST}", "w") as f:
        json.dump(manifest, f, indent=2, default=str)
    replace_dir(fs, path, final)
    return manifest


def replace_dir(fs: fsspec.AbstractFileSystem, staged: str, final: str) -> None:
    """Move the folder `staged` to `final`, replacing what was there (a rename on local disks)."""
    if fs.exists(final):
        old = f"{final}.old-{uuid.uuid4().hex[:8]}"
        fs.mv(final, old, recursive=True)
        fs.mv(staged, final, recursive=True)
        fs.rm(old, recursive=True)
    else:
        fs.mv(staged, final, recursive=True)
