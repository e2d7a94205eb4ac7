"""Lineage captured automatically when a model is logged from Python.

* **Feature schema** from the training frame: each column's type, range, categories, nullability.
* **Training data** identity: a SHA-256 content hash over column names, dtypes and values (row
  order matters: the same rows in another order are other data), row count, date range.
* **Hyper-parameters** from ``get_params()``; nested estimators are recorded by class name.
* **Seeds**: every parameter named ``random_state``/``seed`` (at any depth) with an integer value.
* **Code commit**: ``git rev-parse HEAD`` of the working directory, suffixed ``-dirty`` when the
  work tree has uncommitted changes; None outside a git repository.
* **Environment**: Python version, platform and the versions of the packages that shape a model.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import platform
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from charter.entities import FeatureSpec, FeatureType, TrainingData
from charter.errors import InvalidArgument
from charter.storage import jsonutil

MAX_CATEGORIES = 1000
TRACKED_PACKAGES = (
    "charter",
    "numpy",
    "pandas",
    "scipy",
    "scikit-learn",
    "skops",
    "xgboost",
    "xgboost-cpu",
    "lightgbm",
)


def infer_feature_schema(frame: pd.DataFrame) -> tuple[FeatureSpec, ...]:
    """Describe each column of ``frame`` as the model will expect it at scoring time."""
    if not isinstance(frame, pd.DataFrame):
        raise InvalidArgument(
            "the training features must be a pandas DataFrame with named columns",
            field="X",
            remedy="pass X as a DataFrame, or pass feature_schema explicitly",
        )
    specs = []
    for name in frame.columns:
        col = frame[name]
        nullable = bool(col.isna().any())
        if pd.api.types.is_bool_dtype(col):
            specs.append(FeatureSpec(str(name), FeatureType.BOOLEAN, nullable))
        elif pd.api.types.is_integer_dtype(col):
            lo, hi = (col.min(), col.max()) if col.notna().any() else (None, None)
            specs.append(
                FeatureSpec(
                    str(name),
                    FeatureType.INTEGER,
                    nullable,
                    None if lo is None else float(lo),
                    None if hi is None else float(hi),
                )
            )
        elif pd.api.types.is_numeric_dtype(col):
            vals = col.to_numpy(dtype=float, na_value=np.nan)
            finite = vals[np.isfinite(vals)]
            lo = float(finite.min()) if finite.size else None
            hi = float(finite.max()) if finite.size else None
            specs.append(FeatureSpec(str(name), FeatureType.NUMERIC, nullable, lo, hi))
        elif pd.api.types.is_datetime64_any_dtype(col):
            specs.append(FeatureSpec(str(name), FeatureType.DATETIME, nullable))
        else:
            levels = pd.unique(col.dropna().astype(str))
            cats = tuple(sorted(levels)) if len(levels) <= MAX_CATEGORIES else None
            specs.append(FeatureSpec(str(name), FeatureType.CATEGORICAL, nullable, categories=cats))
    return tuple(specs)


def frame_hash(frame: pd.DataFrame | pd.Series | np.ndarray) -> str:
    """SHA-256 over column names, dtypes and values, column by column, in row order."""
    if isinstance(frame, np.ndarray):
        frame = pd.DataFrame(frame.reshape(len(frame), -1))
    if isinstance(frame, pd.Series):
        frame = frame.to_frame()
    h = hashlib.sha256()
    h.update(f"rows={len(frame)};cols={frame.shape[1]}\n".encode())
    for name in frame.columns:
        col = frame[name]
        h.update(f"{name}\x1f{col.dtype}\x1e".encode())
        if pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
            h.update(np.ascontiguousarray(col.to_numpy()).tobytes())
            h.update(np.ascontiguousarray(col.isna().to_numpy()).tobytes())
        else:
            text = "\x1f".join("\x00" if pd.isna(v) else str(v) for v in col.tolist())
            h.update(text.encode("utf-8", "surrogatepass"))
        h.update(b"\x1d")
    return h.hexdigest()


def describe_training_data(
    X: pd.DataFrame,
    y: Any = None,
    *,
    dataset_id: str,
    date_column: str | None = None,
) -> TrainingData:
    if not dataset_id or not str(dataset_id).strip():
        raise InvalidArgument(
            "the training data needs an identifier",
            field="dataset_id",
            remedy="pass dataset_id, e.g. 'german_credit@2026-11' or a table name and snapshot",
        )
    h = hashlib.sha256(frame_hash(X).encode())
    if y is not None:
        h.update(frame_hash(pd.Series(np.asarray(y), name="__target__")).encode())
    date_from = date_to = None
    if date_column is not None:
        if date_column not in X.columns:
            raise InvalidArgument(
                f"date column {date_column!r} is not in the training data",
                field="date_column",
                remedy=f"use one of: {', '.join(map(str, X.columns))}",
            )
        dates = pd.to_datetime(X[date_column])
        date_from, date_to = str(dates.min().date()), str(dates.max().date())
    return TrainingData(
        dataset_id=str(dataset_id),
        content_hash=h.hexdigest(),
        rows=len(X),
        columns=tuple(str(c) for c in X.columns),
        date_from=date_from,
        date_to=date_to,
    )


def hyperparameters(model: Any) -> dict[str, Any]:
    """JSON-safe ``get_params(deep=True)``: nested estimators become their class name."""
    get = getattr(model, "get_params", None)
    if get is None:
        return {}
    try:
        params = get(deep=True)
    except TypeError:
        params = get()
    out: dict[str, Any] = {}
    for k, v in sorted(params.items()):
        if hasattr(v, "get_params") or callable(v):
            out[k] = f"{type(v).__module__}.{type(v).__qualname__}"
        else:
            try:
                out[k] = jsonutil.loads(jsonutil.dumps(v))
            except (TypeError, ValueError):
                out[k] = repr(v)
    return out


def seeds(params: dict[str, Any]) -> dict[str, Any]:
    return {
        k: v
        for k, v in params.items()
        if (k.split("__")[-1] in ("random_state", "seed", "random_seed"))
        and (v is None or isinstance(v, int))
    }


def code_commit(cwd: Path | None = None) -> str | None:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
        if head.returncode != 0:
            return None
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = head.stdout.strip()
    return commit + ("-dirty" if status.stdout.strip() else "")


def environment() -> dict[str, Any]:
    pkgs = {}
    for name in TRACKED_PACKAGES:
        try:
            pkgs[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "packages": pkgs,
    }
