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
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem

MANIFEST = "manifest.json"
READABLE_SUFFIXES = (".parquet", ".pkl", ".pickle")


class DatasetError(RuntimeError):
    """A dataset is missing, empty or unreadable."""


def fs_and_path(url: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """The fsspec filesystem of `url` and the path inside it (no trailing slash)."""
    fs, path = fsspec.core.url_to_fs(url)
    return fs, path.rstrip("/")


# --8<-- [start:digest]
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


# --8<-- [end:digest]


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
    fs, path = fs_and_path(url)
    if url.endswith(".parquet") and isinstance(fs, LocalFileSystem):
        return pd.read_parquet(path)  # Arrow's own file reader: faster than a Python file object
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
    if all(p.endswith(".parquet") for p in paths):
        tables = [_read_table(p) for p in paths]
        if _one_plain_schema(tables):  # one conversion to pandas instead of one per file + concat
            return pa.concat_tables(tables).to_pandas()
    return pd.concat([read_file(p) for p in paths], ignore_index=True)


def _read_table(url: str) -> pa.Table:
    """One Parquet file as an Arrow table (what `read_file` converts to pandas)."""
    fs, path = fs_and_path(url)
    if isinstance(fs, LocalFileSystem):
        return pq.read_table(path)
    with fsspec.open(url, "rb") as f:
        return pq.read_table(f)


def _one_plain_schema(tables: list[pa.Table]) -> bool:
    """True when every table has the first one's schema and metadata, without a stored index and
    with only numeric, boolean and timestamp columns: then converting their concatenation gives
    what concatenating their conversions gives."""
    first = tables[0].schema
    pandas_meta = first.pandas_metadata or {}
    return (
        not pandas_meta.get("index_columns")
        and b"PANDAS_ATTRS" not in (first.metadata or {})
        and all(
            pa.types.is_integer(t)
            or pa.types.is_floating(t)
            or pa.types.is_boolean(t)
            or pa.types.is_timestamp(t)
            for t in first.types
        )
        and all(t.schema.equals(first, check_metadata=True) for t in tables[1:])
    )


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
    # --8<-- [start:publish]
    fs, final = fs_and_path(url)
    # Write next to the target, then swap it in: readers see the old dataset or the whole new
    # one with its manifest, never a half-written folder (pipeline Jobs run concurrently).
    path = f"{final}.tmp-{uuid.uuid4().hex[:8]}"
    fs.makedirs(path, exist_ok=True)
    files = []
    for day, part, table in _day_parts(frame, day_column):
        with fs.open(f"{path}/{day}.parquet", "wb") as f:
            if table is None:
                part.to_parquet(f, index=False)
            else:
                pq.write_table(table, f)  # the bytes `part.to_parquet(f, index=False)` writes
        files.append({"name": f"{day}.parquet", "rows": len(part), "digest": frame_digest(part)})
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
    # --8<-- [end:publish]


def _day_parts(
    frame: pd.DataFrame, day_column: str
) -> Iterator[tuple[str, pd.DataFrame, pa.Table | None]]:
    """Yield `(YYYY-MM-DD, rows of that day in frame order, the same rows as an Arrow table or
    None)` per day, in day order.

    A naive datetime64 column without nulls, in a frame of plain numpy columns, is split by
    positions (a sort only when rows are not in day order) and converted to Arrow once, then
    sliced; anything else goes through `groupby` and pandas' own Parquet conversion per day.
    """
    if not len(frame):
        return
    when = frame[day_column]
    plain = all(isinstance(c, str) for c in frame.columns) and all(
        isinstance(t, np.dtype) and t.kind in "biufM" for t in frame.dtypes
    )
    if when.dtype != "datetime64[ns]" or when.hasnans or not plain or frame.attrs:
        for day, part in frame.groupby(when.dt.strftime("%Y-%m-%d"), sort=True):
            yield day, part.reset_index(drop=True), None
        return
    days = when.to_numpy(dtype="datetime64[D]")
    if not (days[1:] >= days[:-1]).all():
        order = np.argsort(days, kind="stable")  # stable: frame order within a day, as groupby
        frame, days = frame.iloc[order], days[order]
    table = pa.Table.from_pandas(frame, preserve_index=False)
    starts = np.flatnonzero(np.r_[True, days[1:] != days[:-1]])
    for start, stop in zip(starts, [*starts[1:], len(days)], strict=True):
        yield str(days[start]), frame.iloc[start:stop], table.slice(start, stop - start)


def replace_dir(fs: fsspec.AbstractFileSystem, staged: str, final: str) -> None:
    """Move the folder `staged` to `final`, replacing what was there (a rename on local disks)."""
    if fs.exists(final):
        old = f"{final}.old-{uuid.uuid4().hex[:8]}"
        fs.mv(final, old, recursive=True)
        fs.mv(staged, final, recursive=True)
        fs.rm(old, recursive=True)
    else:
        fs.mv(staged, final, recursive=True)
