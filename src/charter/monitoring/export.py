"""The decision log as a Parquet dataset: what the monitoring job on Spark (or any engine) reads.

:func:`export_parquet` writes the flat decision frames of one model and window
(:func:`charter.monitoring.source.iter_decision_frames`) to a directory of Parquet files,
atomically: the files are written into a hidden temporary directory beside the target, flushed
to disk, and the directory is renamed into place only when every file is complete, so a reader
never sees half an export. The directory holds

* ``part-00000.parquet``, ``part-00001.parquet``, ... in ``(created_at, id)`` order, at most
  ``file_rows`` rows each, in row groups of ``row_group_rows`` (so readers that filter on
  ``created_at`` skip whole row groups by their statistics);
* ``_scoring_errors/part-00000.parquet``: the window's failed scorings (``version``,
  ``variant``, ``created_at``), for the error rate;
* ``_charter_export.json``: the :class:`ExportSummary` (model, window, features, the label
  cut-off, rows and the SHA-256 of every part file). Spark and pyarrow skip files and folders
  whose names begin with ``_``, so neither of these reads as decisions.

Columns and types: the frame's columns (:mod:`charter.monitoring.frame`) with ``created_at`` and
``label_observed_at`` as ``timestamp[us, UTC]``, text as ``string``, numeric features as
``double`` and categorical ones as ``string``, plus ``label_recorded_at`` (when the outcome was
recorded), so that a reader can apply an earlier label cut-off than the export's. A numeric
feature's values that are not numbers (see :mod:`charter.monitoring.source`) cannot live in a
``double`` column, so each numeric feature has a companion ``x__<feature>`` (``string``, null
except where the value was not a number, nearly free in Parquet); :func:`restore_frame` puts
those values back, so a frame read from the export is the frame read from the database. The
manifest counts them per feature (``mistyped``), so readers skip the companions of clean
features. Every file carries the export's description in its schema metadata under
``charter.export``.

The label cut-off is pinned: ``label_as_of=None`` means "the time of the export", and the
summary records it, so the export can be recomputed exactly from the database later.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pa_ds
import pyarrow.parquet as pq

from charter.checks import check_int
from charter.clock import Clock, iso, parse_iso, system_clock
from charter.errors import AlreadyExists, InvalidArgument, NotFound
from charter.monitoring.frame import DECISION_COLUMNS, FEATURE_PREFIX, feature_column
from charter.monitoring.source import (
    CATEGORICAL,
    LABEL_RECORDED_AT,
    NUMERIC,
    STRING_DTYPE,
    TIMESTAMP_DTYPE,
    Features,
    check_features,
    check_time,
    check_versions,
    check_window,
    iter_decision_frames,
)
from charter.storage import jsonutil
from charter.storage.db import Database
from charter.storage.schema import scoring_errors

__all__ = [
    "ERRORS_DIR",
    "ERRORS_FILE",
    "EXPORT_FORMAT_VERSION",
    "MANIFEST",
    "RAW_PREFIX",
    "ExportSummary",
    "apply_label_cutoff",
    "count_export_errors",
    "export_parquet",
    "export_schema",
    "frame_to_arrow",
    "iter_parquet_frames",
    "read_export_summary",
    "restore_frame",
]

EXPORT_FORMAT_VERSION = 1
MANIFEST = "_charter_export.json"
ERRORS_DIR = "_scoring_errors"
ERRORS_FILE = f"{ERRORS_DIR}/part-00000.parquet"
RAW_PREFIX = "x__"
METADATA_KEY = b"charter.export"
TIMESTAMP = pa.timestamp("us", tz="UTC")
_TIME_COLUMNS = ("created_at", "label_observed_at", LABEL_RECORDED_AT)
_TEXT_COLUMNS = ("decision_id", "entity_key", "variant", "decision")
_BASE_TYPES: dict[str, pa.DataType] = {
    "decision_id": pa.string(),
    "created_at": TIMESTAMP,
    "entity_key": pa.string(),
    "version": pa.int64(),
    "variant": pa.string(),
    "score": pa.float64(),
    "threshold": pa.float64(),
    "decision": pa.string(),
    "latency_ms": pa.float64(),
    "label": pa.float64(),
    "label_observed_at": TIMESTAMP,
}


@dataclass(frozen=True)
class ExportSummary:
    """What an export holds; written beside the files as ``_charter_export.json``."""

    path: str
    model_name: str
    start: datetime
    end: datetime
    label_as_of: datetime
    versions: tuple[int, ...] | None
    features: dict[str, str]
    rows: int
    files: tuple[str, ...]
    file_rows: tuple[int, ...]
    sha256s: tuple[str, ...]
    bytes: int
    created_at: datetime
    scoring_errors: int = 0
    mistyped: dict[str, int] | None = None  # per numeric feature; None: not known
    format_version: int = EXPORT_FORMAT_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": self.format_version,
            "model_name": self.model_name,
            "start": iso(self.start),
            "end": iso(self.end),
            "label_as_of": iso(self.label_as_of),
            "versions": None if self.versions is None else list(self.versions),
            "features": dict(self.features),
            "rows": self.rows,
            "files": [
                {"name": f, "rows": n, "sha256": h}
                for f, n, h in zip(self.files, self.file_rows, self.sha256s, strict=True)
            ],
            "bytes": self.bytes,
            "created_at": iso(self.created_at),
            "scoring_errors": self.scoring_errors,
            "mistyped": None if self.mistyped is None else dict(self.mistyped),
            "extra": dict(self.extra),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], path: str) -> ExportSummary:
        files = list(d["files"])
        return cls(
            path=path,
            model_name=str(d["model_name"]),
            start=parse_iso(d["start"]),
            end=parse_iso(d["end"]),
            label_as_of=parse_iso(d["label_as_of"]),
            versions=None if d["versions"] is None else tuple(int(v) for v in d["versions"]),
            features={str(k): str(v) for k, v in d["features"].items()},
            rows=int(d["rows"]),
            files=tuple(str(f["name"]) for f in files),
            file_rows=tuple(int(f["rows"]) for f in files),
            sha256s=tuple(str(f["sha256"]) for f in files),
            bytes=int(d["bytes"]),
            created_at=parse_iso(d["created_at"]),
            scoring_errors=int(d.get("scoring_errors", 0)),
            mistyped=(
                None
                if d.get("mistyped") is None
                else {str(k): int(v) for k, v in d["mistyped"].items()}
            ),
            format_version=int(d["format_version"]),
            extra=dict(d.get("extra") or {}),
        )


# ------------------------------------------------------------------------------ frame <-> arrow
def export_schema(features: Features, metadata: Mapping[str, Any] | None = None) -> pa.Schema:
    """The Arrow schema of an export of these features (kinds required)."""
    kinds = check_features(features, require_kinds=True)
    fields = [pa.field(n, _BASE_TYPES[n]) for n in DECISION_COLUMNS]
    fields.append(pa.field(LABEL_RECORDED_AT, TIMESTAMP))
    for name, kind in kinds.items():
        fields.append(pa.field(feature_column(name), pa.string() if kind == CATEGORICAL
                               else pa.float64()))  # fmt: skip
    for name, kind in kinds.items():
        if kind == NUMERIC:
            fields.append(pa.field(RAW_PREFIX + name, pa.string()))
    meta = None if metadata is None else {METADATA_KEY: jsonutil.dumps(metadata).encode()}
    return pa.schema(fields, metadata=meta)


def frame_to_arrow(frame: pd.DataFrame, schema: pa.Schema) -> pa.Table:
    """A flat decision frame as an Arrow table of :func:`export_schema`."""
    n = len(frame)
    arrays: list[pa.Array] = []
    for f in schema:
        name = f.name
        if name.startswith(RAW_PREFIX):
            col = frame[FEATURE_PREFIX + name[len(RAW_PREFIX) :]]
            if col.dtype == object:
                values = col.to_numpy()
                text = np.array([isinstance(v, str) for v in values], dtype=bool)
                raw = np.where(text, values, None)
                arrays.append(pa.array(raw, type=pa.string()))
            else:
                arrays.append(pa.nulls(n, type=pa.string()))
            continue
        if name == LABEL_RECORDED_AT and name not in frame.columns:  # a plain flat frame
            arrays.append(pa.nulls(n, type=f.type))
            continue
        col = frame[name]
        if f.type == pa.float64() and col.dtype == object:  # a numeric feature with text in it
            values = col.to_numpy()
            num = np.array([isinstance(v, float | int) for v in values], dtype=bool)
            arrays.append(pa.array(np.where(num, values, np.nan).astype(np.float64)))
            continue
        arrays.append(pa.array(col, type=f.type, from_pandas=True))
    return pa.Table.from_arrays(arrays, schema=schema)


def _micros_to_timestamps(values: Any) -> pd.Series:
    x = np.asarray(values)
    if x.dtype.kind == "f":
        missing = np.isnan(x)
        ints = np.where(missing, 0, x).astype(np.int64)
        out = ints.view("datetime64[us]").copy()
        out[missing] = np.datetime64("NaT")
    else:
        out = x.astype(np.int64).view("datetime64[us]")
    return pd.Series(out).dt.tz_localize("UTC")


def _timestamps(col: pd.Series) -> pd.Series:
    if pd.api.types.is_numeric_dtype(col.dtype):  # microseconds since the epoch (from Spark)
        out = _micros_to_timestamps(col.to_numpy())
        out.index = col.index
        return out
    if getattr(col.dt, "tz", None) is None:
        col = col.dt.tz_localize("UTC")
    return col.astype(TIMESTAMP_DTYPE)


def apply_label_cutoff(frame: pd.DataFrame, label_as_of: datetime | None) -> pd.DataFrame:
    """Labels recorded after ``label_as_of`` become "not arrived" (label NaN, observed-at NaT),
    and the ``label_recorded_at`` column is dropped; without it the frame is returned as is."""
    if LABEL_RECORDED_AT not in frame.columns:
        return frame
    out = frame.drop(columns=[LABEL_RECORDED_AT])
    if label_as_of is None:
        return out
    recorded = frame[LABEL_RECORDED_AT]
    late = (recorded > pd.Timestamp(check_time(label_as_of, "label_as_of"))).to_numpy()
    if late.any():
        label = out["label"].to_numpy(dtype=np.float64, copy=True)
        label[late] = np.nan
        out["label"] = label
        out["label_observed_at"] = out["label_observed_at"].mask(late)
    return out


def restore_frame(
    frame: pd.DataFrame,
    *,
    label_as_of: datetime | None = None,
    keep_recorded_at: bool = False,
) -> pd.DataFrame:
    """Make a frame read from an export (by pyarrow, or handed over by Spark) a flat decision
    frame again: put the non-numeric values of numeric features back from their ``x__``
    companions (and drop those), timestamps as ``datetime64[us, UTC]`` (naive ones are read as
    UTC; integers as microseconds since the epoch), text as the default string dtype. Labels
    recorded after ``label_as_of`` are dropped (:func:`apply_label_cutoff`); the
    ``label_recorded_at`` column is then removed, and otherwise kept only with
    ``keep_recorded_at`` (for a later cut-off per window)."""
    out: dict[str, Any] = {}
    raw: dict[str, pd.Series] = {}
    for name in frame.columns:
        col = frame[name]
        if name.startswith(RAW_PREFIX):
            raw[FEATURE_PREFIX + name[len(RAW_PREFIX) :]] = col
        elif name in _TIME_COLUMNS:
            out[name] = _timestamps(col)
        elif name in _TEXT_COLUMNS or (
            name.startswith(FEATURE_PREFIX)
            and (pd.api.types.is_string_dtype(col.dtype) and col.dtype != object)
        ):
            out[name] = col if col.dtype == STRING_DTYPE else col.astype(STRING_DTYPE)
        elif name == "version" and col.dtype != np.int64:
            out[name] = col.astype(np.int64)
        else:
            out[name] = col
    for name, text in raw.items():
        mask = text.notna().to_numpy()
        if name in out and mask.any():
            values = out[name].to_numpy(dtype=object, na_value=np.nan).copy()
            values[mask] = text.to_numpy(dtype=object)[mask]
            out[name] = pd.Series(values, dtype=object, index=frame.index)
    restored = pd.DataFrame(out, index=frame.index)
    if keep_recorded_at and label_as_of is None:
        return restored
    restored = apply_label_cutoff(restored, label_as_of)
    return restored


def _batch_to_frame(
    batch: pa.RecordBatch | pa.Table,
    label_as_of: datetime | None = None,
    keep_recorded_at: bool = False,
) -> pd.DataFrame:
    # Companion columns that are all null (the usual case) are dropped before pandas sees them.
    keep = [
        i for i, f in enumerate(batch.schema)
        if not (f.name.startswith(RAW_PREFIX) and batch.column(i).null_count == batch.num_rows)
    ]  # fmt: skip
    if len(keep) != batch.num_columns:
        batch = batch.select(keep)
    return restore_frame(
        batch.to_pandas(), label_as_of=label_as_of, keep_recorded_at=keep_recorded_at
    )


# ------------------------------------------------------------------------------ writing
def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not every filesystem lets a directory be opened
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class _PartWriter:
    """Writes tables to part files: row groups of ``group`` rows, files of ``per_file`` rows."""

    def __init__(self, folder: Path, schema: pa.Schema, group: int, per_file: int) -> None:
        self.folder, self.schema, self.group, self.per_file = folder, schema, group, per_file
        self.files: list[str] = []
        self.file_rows: list[int] = []
        self._writer: pq.ParquetWriter | None = None
        self._pending: list[pa.Table] = []
        self._pending_rows = 0

    def _open(self) -> pq.ParquetWriter:
        if self._writer is None:
            name = f"part-{len(self.files):05d}.parquet"
            self.files.append(name)
            self.file_rows.append(0)
            self._writer = pq.ParquetWriter(
                self.folder / name, self.schema, compression="snappy", write_statistics=True
            )
        return self._writer

    def _write(self, table: pa.Table) -> None:
        while table.num_rows:
            writer = self._open()
            room = self.per_file - self.file_rows[-1]
            part = table.slice(0, room)
            writer.write_table(part, row_group_size=self.group)
            self.file_rows[-1] += part.num_rows
            table = table.slice(part.num_rows)
            if self.file_rows[-1] >= self.per_file:
                self._close_file()

    def _close_file(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def add(self, table: pa.Table) -> None:
        self._pending.append(table)
        self._pending_rows += table.num_rows
        if self._pending_rows >= self.group:
            whole = pa.concat_tables(self._pending)
            cut = (whole.num_rows // self.group) * self.group
            self._write(whole.slice(0, cut))
            rest = whole.slice(cut)
            self._pending = [rest] if rest.num_rows else []
            self._pending_rows = rest.num_rows

    def close(self) -> None:
        if self._pending_rows:
            self._write(pa.concat_tables(self._pending))
        self._pending, self._pending_rows = [], 0
        if not self.files:  # an empty window: one empty file, so readers still see the schema
            self._open()
        self._close_file()


_ERRORS_SCHEMA = pa.schema(
    [("version", pa.int64()), ("variant", pa.string()), ("created_at", TIMESTAMP)]
)


def _write_errors(
    db: Database, path: Path, model_name: str, lo: datetime, hi: datetime, vers: list[int] | None
) -> int:
    """The failed scorings of the window (for the error rate), beside the decisions: a dataset
    of its own in ``_scoring_errors/``, which readers of the decisions skip (``_`` prefix)."""
    from sqlalchemy import select

    from charter.monitoring.source import parse_timestamps

    q = select(scoring_errors.c.version, scoring_errors.c.variant, scoring_errors.c.created_at)
    q = q.where(
        scoring_errors.c.model_name == model_name,
        scoring_errors.c.created_at >= iso(lo),
        scoring_errors.c.created_at < iso(hi),
    )
    if vers is not None:
        q = q.where(scoring_errors.c.version.in_(vers))
    with db.read() as conn:
        rows = conn.execute(q.order_by(scoring_errors.c.created_at)).all()
    table = pa.Table.from_arrays(
        [
            pa.array([int(r[0]) for r in rows], pa.int64()),
            pa.array([r[1] for r in rows], pa.string()),
            pa.array(parse_timestamps([r[2] for r in rows]), TIMESTAMP),
        ],
        schema=_ERRORS_SCHEMA,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return len(rows)


def count_export_errors(
    path: str | os.PathLike[str],
    start: datetime | None = None,
    end: datetime | None = None,
    *,
    versions: Sequence[int] | None = None,
) -> dict[int, int]:
    """Failed scorings per version in ``[start, end)`` from an export (the Parquet twin of
    :func:`charter.monitoring.source.count_scoring_errors`); an export without the file
    (made by other tools) counts none."""
    p = Path(path) / ERRORS_DIR
    if not p.is_dir():
        return {}
    table = pa_ds.dataset(p, format="parquet").to_table()
    flt = window_expression(start, end, versions)
    if flt is not None:
        table = table.filter(flt)
    counts = pc.value_counts(table.column("version")) if table.num_rows else []
    return {int(c["values"].as_py()): int(c["counts"].as_py()) for c in counts}


def _check_path(path: str | os.PathLike[str], overwrite: bool) -> Path:
    target = Path(path)
    if target.exists() and not overwrite:
        raise AlreadyExists(
            f"the export directory {target} exists already",
            field="path",
            remedy="choose a new directory, or pass overwrite=True to replace it",
        )
    if target.exists() and not target.is_dir():
        raise InvalidArgument(
            f"{target} exists and is not a directory", field="path", remedy="choose a directory"
        )
    return target


def export_parquet(
    db: Database,
    model_name: str,
    start: datetime,
    end: datetime,
    path: str | os.PathLike[str],
    *,
    features: Mapping[str, str],
    label_as_of: datetime | None = None,
    versions: Sequence[int] | None = None,
    chunk_rows: int = 50_000,
    row_group_rows: int = 100_000,
    file_rows: int = 1_000_000,
    overwrite: bool = False,
    clock: Clock = system_clock,
) -> ExportSummary:
    """Export ``model_name``'s decisions in ``[start, end)`` as a Parquet dataset at ``path``.

    ``features`` maps each feature to ``"numeric"`` or ``"categorical"`` (the export's schema is
    fixed before the first row is read). ``label_as_of`` defaults to now and is recorded.
    """
    lo, hi = check_window(start, end)
    kinds = {k: str(v) for k, v in check_features(features, require_kinds=True).items()}
    group = check_int(row_group_rows, "row_group_rows", minimum=1)
    per_file = check_int(file_rows, "file_rows", minimum=1)
    vers = check_versions(versions)
    target = _check_path(path, overwrite)
    now = check_time(clock(), "clock")
    as_of = now if label_as_of is None else check_time(label_as_of, "label_as_of")
    description = {
        "format_version": EXPORT_FORMAT_VERSION,
        "model_name": model_name,
        "start": iso(lo),
        "end": iso(hi),
        "label_as_of": iso(as_of),
        "versions": vers,
        "features": kinds,
    }
    schema = export_schema(kinds, description)

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.tmp-{uuid.uuid4().hex}"
    tmp.mkdir()
    try:
        writer = _PartWriter(tmp, schema, group, per_file)
        rows = 0
        mistyped = {name: 0 for name, kind in kinds.items() if kind == NUMERIC}
        for frame in iter_decision_frames(
            db, model_name, lo, hi, versions=vers, features=kinds, label_as_of=as_of,
            chunk_rows=chunk_rows, with_recorded_at=True,
        ):  # fmt: skip
            table = frame_to_arrow(frame, schema)
            for name in mistyped:
                raw = table.column(RAW_PREFIX + name)
                mistyped[name] += len(raw) - raw.null_count
            writer.add(table)
            rows += len(frame)
        writer.close()
        n_errors = _write_errors(db, tmp / ERRORS_FILE, model_name, lo, hi, vers)
        hashes, size = [], 0
        for name in (*writer.files, ERRORS_FILE):
            p = tmp / name
            with open(p, "rb+") as fh:
                os.fsync(fh.fileno())
            if name != ERRORS_FILE:
                hashes.append(_sha256(p))
                size += p.stat().st_size
        summary = ExportSummary(
            path=str(target),
            model_name=model_name,
            start=lo,
            end=hi,
            label_as_of=as_of,
            versions=None if vers is None else tuple(vers),
            features=kinds,
            rows=rows,
            files=tuple(writer.files),
            file_rows=tuple(writer.file_rows),
            sha256s=tuple(hashes),
            bytes=size,
            created_at=now,
            scoring_errors=n_errors,
            mistyped=mistyped,
        )
        (tmp / MANIFEST).write_text(jsonutil.dumps(summary.to_dict()) + "\n", encoding="utf-8")
        with open(tmp / MANIFEST, "rb+") as fh:
            os.fsync(fh.fileno())
        _fsync_dir(tmp / ERRORS_DIR)
        _fsync_dir(tmp)
        if target.exists():  # overwrite: the old export is moved aside, then removed
            old = target.parent / f".{target.name}.old-{uuid.uuid4().hex}"
            os.rename(target, old)
            os.rename(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, target)
        _fsync_dir(target.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return summary


def read_export_summary(path: str | os.PathLike[str], *, verify: bool = False) -> ExportSummary:
    """The manifest of an export; ``verify=True`` also checks every file's SHA-256."""
    folder = Path(path)
    manifest = folder / MANIFEST
    if not manifest.is_file():
        raise NotFound(
            f"{folder} is not a Charter export (no {MANIFEST})",
            field="path",
            remedy="export one with `charter monitor export` (export_parquet)",
        )
    summary = ExportSummary.from_dict(json.loads(manifest.read_text("utf-8")), str(folder))
    if verify:
        from charter.errors import IntegrityError

        for name, expected in zip(summary.files, summary.sha256s, strict=True):
            p = folder / name
            actual = _sha256(p) if p.is_file() else "missing"
            if actual != expected:
                raise IntegrityError(
                    f"export file {name} does not match its manifest ({actual} != {expected})",
                    field="path",
                    remedy="export the window again",
                )
    return summary


# ------------------------------------------------------------------------------ reading
def window_expression(
    start: datetime | None, end: datetime | None, versions: Sequence[int] | None
) -> pc.Expression | None:
    """The pyarrow filter ``start <= created_at < end`` (and ``version in versions``)."""
    parts: list[pc.Expression] = []
    if start is not None:
        parts.append(pc.field("created_at") >= pa.scalar(check_time(start, "start"), TIMESTAMP))
    if end is not None:
        parts.append(pc.field("created_at") < pa.scalar(check_time(end, "end"), TIMESTAMP))
    vers = check_versions(versions)
    if vers is not None:
        parts.append(pc.field("version").isin(pa.array(vers, pa.int64())))
    if not parts:
        return None
    out = parts[0]
    for p in parts[1:]:
        out = out & p
    return out


def iter_parquet_frames(
    path: str | os.PathLike[str],
    start: datetime | None = None,
    end: datetime | None = None,
    *,
    versions: Sequence[int] | None = None,
    columns: Sequence[str] | None = None,
    batch_rows: int = 131_072,
    label_as_of: datetime | None = None,
    keep_recorded_at: bool = False,
) -> Iterator[pd.DataFrame]:
    """Flat decision frames read back from an export, in batches of at most ``batch_rows``.

    ``label_as_of`` applies an earlier label cut-off than the export's (outcomes recorded after
    it read as not arrived); ``keep_recorded_at`` keeps the ``label_recorded_at`` column.

    ``start``/``end`` (half-open) and ``versions`` filter rows (whole row groups are skipped by
    their statistics); ``columns`` selects frame columns (default: all). Files come in name
    order and rows in file order, so a fresh export reads back in ``(created_at, id)`` order.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise NotFound(
            f"no export directory {folder}",
            field="path",
            remedy="export the window first (export_parquet / `charter monitor export`)",
        )
    rows = check_int(batch_rows, "batch_rows", minimum=1)
    if start is not None and end is not None:
        check_window(start, end)
    dataset = pa_ds.dataset(folder, format="parquet")
    names = dataset.schema.names
    if columns is None:
        cols = list(names)
    else:
        unknown = [c for c in columns if c not in names]
        if unknown:
            raise InvalidArgument(
                f"the export has no columns {unknown}",
                field="columns",
                remedy=f"choose among {[n for n in names if not n.startswith(RAW_PREFIX)]}",
            )
        cols = list(dict.fromkeys(columns))
        for c in list(cols):
            companion = RAW_PREFIX + c[len(FEATURE_PREFIX) :]
            if c.startswith(FEATURE_PREFIX) and companion in names:
                cols.append(companion)
        if (label_as_of is not None or keep_recorded_at) and LABEL_RECORDED_AT in names:
            cols.append(LABEL_RECORDED_AT)
        cols = list(dict.fromkeys(cols))
    flt = window_expression(start, end, versions)
    for batch in dataset.to_batches(columns=cols, filter=flt, batch_size=rows):
        if batch.num_rows:
            yield _batch_to_frame(batch, label_as_of, keep_recorded_at)
