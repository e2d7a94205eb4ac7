"""Flat decision frames read from the decision log, in chunks.

:func:`iter_decision_frames` streams the decisions of one model in a window ``[start, end)``
(half-open: a decision logged exactly at ``end`` belongs to the next window), LEFT-joined with
their outcomes, as flat decision frames (:mod:`charter.monitoring.frame`). Chunks come by keyset
pagination on ``(created_at, id)``: each page is one short read transaction that resumes after
the last row of the page before, so ten million decisions never sit in memory at once, no
transaction stays open while the caller works on a chunk, and the pages neither skip nor repeat
a row however the chunk size is chosen.

Conventions
-----------
Labels "arrive". An outcome counts as the decision's label only if it was *recorded* at or
before ``label_as_of`` (default: no limit, every outcome recorded so far); otherwise ``label``
is NaN and ``label_observed_at`` NaT, exactly as if the outcome had not arrived yet. A window
recomputed later with the same ``label_as_of`` gives the same frames.

Features. Each requested feature becomes the column ``f__<name>``, decoded from the decision's
``inputs`` JSON. Pass ``features`` as a mapping ``{name: "numeric" | "categorical"}``
(:func:`feature_kinds` builds it from a reference profile); a plain sequence of names means
"infer the kind per chunk", which is slower and cannot tell a categorical coded as numbers from a
numeric feature.

* numeric: ``float64`` with NaN for a missing value (key absent, ``null`` or ``NaN``); numbers
  are kept exactly as JSON gave them (integers become floats). If a chunk holds a value that is
  not a number (text, a boolean, a list), that chunk's column is ``object`` instead: numbers as
  ``float``, missing as NaN and each non-number as its text (``str(value)`` for text, booleans
  and numbers; canonical JSON for lists and objects), so that a data-quality accumulator can
  count it as a type violation rather than a missing value. ``"Infinity"`` (how canonical JSON
  stores an infinite input) is kept as text too.
* categorical: the pandas default string dtype (``str`` under pandas 3), missing as NA; a value
  that is not text is turned into text the same way (``3`` -> ``"3"``, ``true`` -> ``"True"``,
  matching how a reference profile names levels: ``str(value)``).

Decoding uses pyarrow's multithreaded JSON reader with an explicit schema when the kinds are
given (about four times faster than ``json.loads`` per row); a chunk that reader refuses (a
mistyped value, an integer too large for a double) is decoded again with the standard library,
which applies the same conventions.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.json as pa_json
from sqlalchemy import and_, func, or_, select

from charter.checks import check_int
from charter.clock import iso
from charter.errors import InvalidArgument
from charter.monitoring.frame import feature_column
from charter.storage.db import Database
from charter.storage.schema import decisions, outcomes, scoring_errors

__all__ = [
    "CATEGORICAL",
    "KINDS",
    "NUMERIC",
    "STRING_DTYPE",
    "count_scoring_errors",
    "daily_volume",
    "decisions_per_day",
    "decode_features",
    "empty_frame",
    "feature_kinds",
    "iter_decision_frames",
]

NUMERIC = "numeric"
CATEGORICAL = "categorical"
KINDS = (NUMERIC, CATEGORICAL)

STRING_DTYPE = pd.Series(["x"]).dtype
"""The pandas default string dtype (``str``, pyarrow-backed, under pandas 3; ``object`` under
pandas 2): what decision ids, variants, decisions and categorical features use."""

TIMESTAMP_DTYPE = "datetime64[us, UTC]"
LABEL_RECORDED_AT = "label_recorded_at"

Features = Sequence[str] | Mapping[str, str]

_SELECT = (
    decisions.c.id,
    decisions.c.created_at,
    decisions.c.entity_key,
    decisions.c.version,
    decisions.c.variant,
    decisions.c.score,
    decisions.c.threshold,
    decisions.c.decision,
    decisions.c.latency_ms,
    decisions.c.inputs,
    outcomes.c.label,
    outcomes.c.observed_at,
    outcomes.c.recorded_at,
)


# ---------------------------------------------------------------------------------- arguments
def feature_kinds(profile: Any) -> dict[str, str]:
    """``{feature: "numeric" | "categorical"}`` of a :class:`~charter.stats.ReferenceProfile`."""
    return {str(name): str(p.kind) for name, p in profile.columns.items()}


def check_features(features: Features, *, require_kinds: bool = False) -> dict[str, str | None]:
    """Feature names (in order) and their kinds (None: infer per chunk)."""
    if isinstance(features, str) or not isinstance(features, Sequence | Mapping):
        raise InvalidArgument(
            f"features must be a list of names or a mapping of name to kind, got {features!r}",
            field="features",
            remedy='pass e.g. {"income": "numeric", "region": "categorical"}',
        )
    if isinstance(features, Mapping):
        out: dict[str, str | None] = {}
        for name, kind in features.items():
            if kind not in KINDS:
                raise InvalidArgument(
                    f"feature {name!r} has the kind {kind!r}",
                    field="features",
                    remedy="use 'numeric' or 'categorical' (feature_kinds(profile) builds it)",
                )
            out[_check_name(name)] = kind
        return out
    if require_kinds and len(features):
        raise InvalidArgument(
            "the kind of every feature must be given",
            field="features",
            remedy="pass {name: 'numeric' | 'categorical'}, e.g. feature_kinds(profile)",
        )
    names = [_check_name(n) for n in features]
    if len(set(names)) != len(names):
        raise InvalidArgument("features are repeated", field="features", remedy="name each once")
    return dict.fromkeys(names)


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not name:
        raise InvalidArgument(
            f"a feature name must be non-empty text, got {name!r}",
            field="features",
            remedy="pass the input names the model was served with",
        )
    return name


def check_time(value: object, field: str) -> datetime:
    if not isinstance(value, datetime):
        raise InvalidArgument(
            f"{field} must be a datetime, got {value!r}",
            field=field,
            remedy="pass a timezone-aware datetime, e.g. datetime(2026, 11, 1, tzinfo=UTC)",
        )
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidArgument(
            f"{field} must be timezone-aware, got {value.isoformat()}",
            field=field,
            remedy="attach a timezone, e.g. value.replace(tzinfo=UTC)",
        )
    return value.astimezone(UTC)


def check_window(start: object, end: object) -> tuple[datetime, datetime]:
    lo, hi = check_time(start, "start"), check_time(end, "end")
    if not lo < hi:
        raise InvalidArgument(
            f"the window is empty: start {iso(lo)} is not before end {iso(hi)}",
            field="end",
            remedy="pass start < end (the window is [start, end))",
        )
    return lo, hi


def check_versions(versions: Sequence[int] | None) -> list[int] | None:
    if versions is None:
        return None
    if isinstance(versions, int | str) or not isinstance(versions, Sequence | set | frozenset):
        raise InvalidArgument(
            f"versions must be a list of version numbers, got {versions!r}",
            field="versions",
            remedy="pass e.g. [3, 4], or None for every version",
        )
    return sorted({check_int(v, "versions", minimum=1) for v in versions})


# ---------------------------------------------------------------------------------- frames
def empty_frame(features: Features) -> pd.DataFrame:
    """A flat decision frame with no rows and the columns and dtypes of :mod:`frame`."""
    kinds = check_features(features)
    cols: dict[str, Any] = {
        "decision_id": pd.Series([], dtype=STRING_DTYPE),
        "created_at": pd.Series([], dtype=TIMESTAMP_DTYPE),
        "entity_key": pd.Series([], dtype=STRING_DTYPE),
        "version": pd.Series([], dtype=np.int64),
        "variant": pd.Series([], dtype=STRING_DTYPE),
        "score": pd.Series([], dtype=np.float64),
        "threshold": pd.Series([], dtype=np.float64),
        "decision": pd.Series([], dtype=STRING_DTYPE),
        "latency_ms": pd.Series([], dtype=np.float64),
        "label": pd.Series([], dtype=np.float64),
        "label_observed_at": pd.Series([], dtype=TIMESTAMP_DTYPE),
    }
    for name, kind in kinds.items():
        dtype = STRING_DTYPE if kind == CATEGORICAL else np.float64
        cols[feature_column(name)] = pd.Series([], dtype=dtype)
    return pd.DataFrame(cols)


def parse_timestamps(values: Sequence[str | None]) -> pd.Series:
    """Charter's canonical ISO 8601 text (None -> NaT) as ``datetime64[us, UTC]``."""
    s = pd.Series(values, dtype=object)
    if s.isna().all():
        return pd.Series(
            np.full(len(s), np.datetime64("NaT", "us")), dtype="datetime64[us]"
        ).dt.tz_localize("UTC")
    # "ISO8601" is pandas' fast path for this text (an explicit strptime format is ~15x slower)
    return pd.to_datetime(s, format="ISO8601", utc=True).astype(TIMESTAMP_DTYPE)


def _text(v: Any) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, bool | int | float):
        return str(v)
    return json.dumps(v, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _float(v: Any) -> float:
    try:
        return float(v)
    except OverflowError:  # an integer beyond the range of a double
        return math.copysign(math.inf, v)


_NUMBER_TYPES = {int, float, type(None)}


def _numeric_column(values: list[Any], kind: str | None) -> Any:
    """A numeric (or inferred) feature from decoded JSON values."""
    types = set(map(type, values))
    if types <= _NUMBER_TYPES:
        try:
            return np.array(values, dtype=np.float64)
        except OverflowError:
            return np.array([math.nan if v is None else _float(v) for v in values])
    if kind is None and types <= {str, type(None)}:
        return pd.Series(values, dtype=STRING_DTYPE)
    out = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):
        t = type(v)
        out[i] = math.nan if v is None else _float(v) if t is int or t is float else _text(v)
    return pd.Series(out, dtype=object)


def _categorical_column(values: list[Any]) -> pd.Series:
    if not set(map(type, values)) <= {str, type(None)}:
        values = [None if v is None else _text(v) for v in values]
    return pd.Series(values, dtype=STRING_DTYPE)


def _decode_stdlib(texts: Sequence[str], kinds: Mapping[str, str | None]) -> dict[str, Any]:
    docs = []
    for t in texts:
        d = json.loads(t)
        docs.append(d if isinstance(d, dict) else {})
    out: dict[str, Any] = {}
    for name, kind in kinds.items():
        values = [d.get(name) for d in docs]
        out[name] = (
            _categorical_column(values) if kind == CATEGORICAL else _numeric_column(values, kind)
        )
    return out


def _decode_arrow(texts: Sequence[str], kinds: Mapping[str, str | None]) -> dict[str, Any] | None:
    schema = pa.schema(
        [(n, pa.string() if k == CATEGORICAL else pa.float64()) for n, k in kinds.items()]
    )
    # Canonical JSON is one line per document, so the inputs make newline-delimited JSON.
    buf = "\n".join(texts).encode()
    try:
        table = pa_json.read_json(
            io.BytesIO(buf),
            read_options=pa_json.ReadOptions(block_size=1 << 20),
            parse_options=pa_json.ParseOptions(
                explicit_schema=schema, unexpected_field_behavior="ignore"
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        # Arrow refuses a chunk with a mistyped value or an integer beyond a double: the caller
        # decodes that chunk with the standard library, which keeps such values as text so the
        # accumulator counts them as type violations (see the module docstring). Not a silenced
        # error: the slow path gives the same frame.
        return None
    if table.num_rows != len(texts):  # pragma: no cover - a document that spans lines
        return None
    out: dict[str, Any] = {}
    for name, kind in kinds.items():
        col = table.column(name)
        if kind == CATEGORICAL:
            text = pd.Series(col.to_pandas(), dtype=STRING_DTYPE)
            text.name = None
            out[name] = text
        else:
            out[name] = col.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
    return out


def decode_features(texts: Sequence[str], features: Features) -> dict[str, Any]:
    """Columns (by feature name) decoded from ``inputs`` JSON texts, per the module's rules."""
    return _decode(texts, check_features(features))


def _decode(texts: Sequence[str], kinds: Mapping[str, str | None]) -> dict[str, Any]:
    if not kinds:
        return {}
    if all(k is not None for k in kinds.values()):
        decoded = _decode_arrow(texts, kinds)
        if decoded is not None:
            return decoded
    return _decode_stdlib(texts, kinds)


def _frame(
    rows: Sequence[Any], kinds: Mapping[str, str | None], recorded_at: bool = False
) -> pd.DataFrame:
    (ids, created, entity, version, variant, score, threshold, decision, latency, inputs,
     label, observed, recorded) = (list(c) for c in zip(*rows, strict=True))  # fmt: skip
    data: dict[str, Any] = {
        "decision_id": pd.Series(ids, dtype=STRING_DTYPE),
        "created_at": parse_timestamps(created),
        "entity_key": pd.Series(entity, dtype=STRING_DTYPE),
        "version": np.array(version, dtype=np.int64),
        "variant": pd.Series(variant, dtype=STRING_DTYPE),
        "score": np.array(score, dtype=np.float64),
        "threshold": np.array(threshold, dtype=np.float64),
        "decision": pd.Series(decision, dtype=STRING_DTYPE),
        "latency_ms": np.array(latency, dtype=np.float64),
        "label": np.array(label, dtype=np.float64),
        "label_observed_at": parse_timestamps(observed),
    }
    for name, col in _decode(inputs, kinds).items():
        data[feature_column(name)] = col
    if recorded_at:  # for exports, which apply a label cut-off later
        data[LABEL_RECORDED_AT] = parse_timestamps(recorded)
    return pd.DataFrame(data)


# ---------------------------------------------------------------------------------- reading
def _fetch_tuples(result: Any) -> list[Any]:
    """All rows as the driver's plain tuples: none of the selected columns needs SQLAlchemy's
    result processing, and skipping its Row objects halves the cost of a page."""
    cursor = getattr(result, "cursor", None)
    if cursor is None:  # pragma: no cover - a result without a DBAPI cursor
        return list(result.all())
    try:
        return list(cursor.fetchall())
    finally:
        result.close()


def _window_filter(
    model_name: str, lo: datetime, hi: datetime, versions: list[int] | None
) -> list[Any]:
    where = [
        decisions.c.model_name == model_name,
        decisions.c.created_at >= iso(lo),
        decisions.c.created_at < iso(hi),
    ]
    if versions is not None:
        where.append(decisions.c.version.in_(versions))
    return where


def iter_decision_frames(
    db: Database,
    model_name: str,
    start: datetime,
    end: datetime,
    *,
    versions: Sequence[int] | None = None,
    features: Features,
    label_as_of: datetime | None = None,
    chunk_rows: int = 50_000,
    with_recorded_at: bool = False,
) -> Iterator[pd.DataFrame]:
    """Flat decision frames of ``model_name``'s decisions with ``start <= created_at < end``.

    Frames come in ``(created_at, id)`` order, each of at most ``chunk_rows`` rows (an empty
    window yields no frame; :func:`empty_frame` gives the columns). ``versions`` keeps only
    those model versions. ``label_as_of``: outcomes recorded after it are not labels yet.
    ``with_recorded_at`` adds the column ``label_recorded_at`` (when each label was recorded;
    NaT without one), which is not part of the flat frame: exports keep it so that a later
    reader can apply an earlier label cut-off.
    """
    if not isinstance(model_name, str) or not model_name:
        raise InvalidArgument(
            f"model_name must be a model's name, got {model_name!r}",
            field="model_name",
            remedy="pass the registered model's name",
        )
    lo, hi = check_window(start, end)
    kinds = check_features(features)
    chunk = check_int(chunk_rows, "chunk_rows", minimum=1)
    vers = check_versions(versions)
    on = outcomes.c.decision_id == decisions.c.id
    if label_as_of is not None:
        on = and_(on, outcomes.c.recorded_at <= iso(check_time(label_as_of, "label_as_of")))
    joined = decisions.outerjoin(outcomes, on)
    base = select(*_SELECT).select_from(joined).where(*_window_filter(model_name, lo, hi, vers))
    for rows in _pages(db, base, chunk):
        yield _frame(rows, kinds, with_recorded_at)


def _pages(db: Database, base: Any, chunk: int) -> Iterator[list[Any]]:
    """Keyset pagination on (created_at, id): each page resumes after the last row of the one
    before, in its own short read transaction."""
    last: tuple[str, str] | None = None
    while True:
        q = base
        if last is not None:
            ts, did = last
            q = q.where(
                decisions.c.created_at >= ts,
                or_(decisions.c.created_at > ts, decisions.c.id > did),
            )
        q = q.order_by(decisions.c.created_at, decisions.c.id).limit(chunk)
        with db.read() as conn:
            rows = _fetch_tuples(conn.execute(q))
        if not rows:
            return
        last = (rows[-1][1], rows[-1][0])
        yield rows
        if len(rows) < chunk:
            return


# ---------------------------------------------------------------------------------- counts
def count_scoring_errors(
    db: Database, model_name: str, start: datetime, end: datetime
) -> dict[int, int]:
    """Failed scorings per model version in ``[start, end)`` (versions with none are absent)."""
    lo, hi = check_window(start, end)
    q = (
        select(scoring_errors.c.version, func.count())
        .where(
            scoring_errors.c.model_name == model_name,
            scoring_errors.c.created_at >= iso(lo),
            scoring_errors.c.created_at < iso(hi),
        )
        .group_by(scoring_errors.c.version)
    )
    with db.read() as conn:
        return {int(v): int(n) for v, n in conn.execute(q)}


def daily_volume(
    db: Database,
    model_name: str,
    start: datetime,
    end: datetime,
    *,
    versions: Sequence[int] | None = None,
) -> dict[date, int]:
    """Decisions per UTC calendar day in ``[start, end)``; every day of the range is present
    (zero when nothing was logged). The first and last day count only their part in range."""
    lo, hi = check_window(start, end)
    day = func.substr(decisions.c.created_at, 1, 10)
    q = (
        select(day, func.count())
        .where(*_window_filter(model_name, lo, hi, check_versions(versions)))
        .group_by(day)
    )
    with db.read() as conn:
        counts = {date.fromisoformat(d): int(n) for d, n in conn.execute(q)}
    first, last = lo.date(), (hi - timedelta(microseconds=1)).date()
    return {
        first + timedelta(days=i): counts.get(first + timedelta(days=i), 0)
        for i in range((last - first).days + 1)
    }


def decisions_per_day(
    db: Database,
    model_name: str,
    start: datetime,
    end: datetime,
    *,
    versions: Sequence[int] | None = None,
) -> float:
    """The decision rate over ``[start, end)`` in decisions per day (the "normal" volume when
    the range is a trailing period, e.g. the 28 days before a window)."""
    lo, hi = check_window(start, end)
    q = (
        select(func.count())
        .select_from(decisions)
        .where(*_window_filter(model_name, lo, hi, check_versions(versions)))
    )
    with db.read() as conn:
        n = int(conn.execute(q).scalar() or 0)
    return n / ((hi - lo) / timedelta(days=1))
