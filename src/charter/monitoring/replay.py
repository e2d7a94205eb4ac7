"""Historical replay: months of decision-log history, decided exactly as the service decides.

:func:`replay_applications` takes a frame of applications with their times (for example
:func:`charter.datasets.synthetic.credit_applications`, with its covariate shifts, concept drift
and label delays) and writes, in time order, what the live service would have logged had those
applicants arrived then: ``decisions``, ``shadow_scores``, ``scoring_errors`` and, once their
labels have arrived, ``outcomes``. :func:`replay_outcomes` records the outcomes that have arrived
by a later time. Both are idempotent: replaying the same frame again writes nothing twice.

The service's own code decides every row
----------------------------------------
* **Who answers.** A :class:`charter.serving.runtime.Runtime` (the object a serving worker holds)
  reads the model's aliases and traffic policy from the registry, compiles each version through
  ``compile_version`` (artifact hash checked, the reference profile as the explanations'
  background) and builds the :class:`~charter.serving.routing.TrafficPolicy` exactly as the
  service does; :func:`~charter.serving.routing.route` (pure, sticky on the entity key) picks the
  champion, challenger or canary of each row. The policy is re-read before every batch, after
  every ``on_day`` call and after every canary step.
* **Validation.** Each row's features are checked by the routed version's ``InputValidator``
  with the features of every served version accepted, as a request is. A row the service would
  refuse (422) is not logged, as the service logs nothing for it; :attr:`ReplaySummary.refused`
  counts them and :attr:`ReplaySummary.refusals` quotes the first few.
* **Scores** come from the compiled scorer's vectorised ``score_many`` over each version's rows
  of a batch. For linear scorers (the scorecards) this is the very function ``score_one`` calls,
  so scores are bit-identical to the service's; for native and generic scorers the batch goes
  through the library's predictor at once, which agrees with one-row calls to float rounding. If
  a batch fails, its rows are scored one by one and each row that fails is logged in
  ``scoring_errors`` (with its historical time and variant), as the service logs it.
* **Reason codes** are the service's: ``scorer.reasons(features)``, one row
  at a time (no scorer has a batch form). With ``reasons=False`` they are skipped and logged as
  ``[]``: only worth it for a generic model explained by permutation sampling, which costs tens
  of milliseconds per row.
* **Threshold and decision** are the version's: "decline" when ``score >= threshold``.
* **Rows** are serialised by :meth:`charter.serving.decision_log.DecisionRecord.values`, the
  decision log's own writer path, so ``inputs`` and ``reason_codes`` are byte-identical JSON.
* **Shadows** score every logged decision's features (validated by the shadow's validator; a row
  it refuses is skipped, as the service skips it) and go to ``shadow_scores`` with the decision's
  ``created_at``.

What is not what the service would have written
-----------------------------------------------
* **Time.** ``created_at`` is the row's historical time (``time_column``, canonical ISO text
  via the same format as :func:`charter.clock.iso`), not the wall clock.
* **Ids.** ``id`` is a deterministic UUID in the version-7 layout the service uses (48 bits of
  the row's time in milliseconds, then 74 bits of SHA-256 over model name, entity key and time),
  so ids still sort by time; :func:`replay_decision_id` computes it. ``request_id`` is
  ``"replay-" + id``, which marks every replayed row in the log and makes a rerun skip it.
* **Latency** (``latency_ms``) is *measured on this machine, now*, not historical: the time of
  the vectorised ``score_many`` call of the row's batch divided by its rows, plus the row's own
  measured ``contributions`` + reason-code time. The service measures the same span
  (``score_one`` + contributions + reason codes) per request, so the numbers are comparable,
  but they are not what a request took at that date and vary from run to run. Pass
  ``latency_ms=`` to write a fixed synthetic value instead (deterministic output); shadows get
  that value too, else their measured validation time plus their share of ``score_many``.
* **Outcomes** are written in the batch of their decision when their label time is at or
  before ``label_until`` (default: the last row's time), with ``observed_at`` *and*
  ``recorded_at`` set to the label time. A label time later than the simulated "now" of an
  ``on_day`` callback may therefore already be in the table: readers that want the labels known
  at a time must filter on ``recorded_at`` (monitoring does: ``label_as_of``, which
  ``monitor`` sets to the registry's clock). Rows with a missing label or label time get none.
* **No audit events.** The service does not audit individual decisions either; state changes
  made by the callbacks and canary steps are audited by the registry as usual.

Cost
----
The per-row work is the service's own (validation, scoring, reason codes, the decision log's
JSON); the database sees one bulk insert per table and batch. 100,000 credit applications over
180 days, with a champion, a 20% challenger and a shadow (three scorecards), took about 13 s of
CPU on SQLite and 17 s of client CPU on PostgreSQL (2 cores; wall time 13 s and 25 s when the
machine was otherwise idle). A generic model explained by permutation sampling adds tens of
milliseconds per row: use ``reasons=False`` for it.

Simulated time
--------------
Rows are processed in time order in batches of at most ``batch_rows`` (one transaction each:
the batch's decisions, shadow scores, scoring errors and outcomes commit together). Every UTC
calendar day from the first row's to the last row's, rows or not, ends with ``on_day(day)``,
called when simulated time reaches midnight after ``day`` (all rows before it are committed, none
after it has been decided); the caller can run monitoring, start a canary or change traffic
there, and the replay picks the change up at once. If a callback raises, the batches committed
so far stay; running the replay again skips them and goes on (calling ``on_day`` again for the
days it passes).

With ``canary_every`` the canary controller runs on a simulated timer, at midnight of the first
day plus every multiple of ``canary_every`` before the end of the last day (a tick that falls on
a midnight comes after that day's ``on_day``): whenever the served policy has a canary, it calls
:func:`charter.serving.canary.tick` (``observe`` over the decision log since the canary's window
start, then ``Registry.canary_step``) at that simulated time, as the service's timer does.

The registry's clock is never changed here. Audit events written during a replay (canary steps,
and whatever ``on_day`` does) carry ``registry.clock()``'s time, and ``Registry.start_canary``
stamps the canary's window start with it. To stamp them in simulated time, build the registry
with a :class:`charter.clock.ManualClock` and move it in ``on_day``, for example
``clock.now = datetime.combine(day + timedelta(days=1), time(0), UTC)`` (``ManualClock`` has a
public ``now`` and ``advance(delta)``; mind its ``step``, which moves it on every read). Register
and approve the versions at a clock time before the history starts, or the "validation in
force" of a replayed decision (``explain_decision``) will find none.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import exc, select

from charter.checks import check_int, check_number
from charter.errors import CharterError, Conflict, InvalidArgument, NotFound
from charter.registry.service import Registry
from charter.serving.canary import tick
from charter.serving.decision_log import COLUMNS, DecisionRecord
from charter.serving.routing import route
from charter.serving.runtime import ModelRuntime, Runtime, ServedVersion
from charter.serving.validation import RequestInvalid, check_text
from charter.storage.schema import decisions, outcomes, scoring_errors, shadow_scores

__all__ = [
    "REQUEST_ID_PREFIX",
    "CanaryTick",
    "OutcomeReplay",
    "ReplaySummary",
    "replay_applications",
    "replay_decision_id",
    "replay_outcomes",
]

REQUEST_ID_PREFIX = "replay-"
"""Every replayed decision's ``request_id`` is this prefix plus its id."""

MAX_REFUSAL_EXAMPLES = 5

_US_PER_MS = 1_000
_US_PER_DAY = 86_400_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_US = (datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC) - _EPOCH) // timedelta(
    microseconds=1
)
_NAT = np.iinfo(np.int64).min
# What the service catches around scoring a validated request (serving/app.py's score_item).
_SCORING_ERRORS = (CharterError, ArithmeticError, LookupError, TypeError, ValueError)


# --------------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CanaryTick:
    """One step of the canary controller at simulated time ``at``: the action of
    ``Registry.canary_step`` (hold, advance, promote, rollback or none) and the new state."""

    at: datetime
    action: str
    state: Mapping[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"at": _iso(self.at), "action": self.action, "state": dict(self.state)}


@dataclass(frozen=True)
class ReplaySummary:
    """What one :func:`replay_applications` call wrote.

    ``rows`` is the frame's row count; each row is either written (``decisions``), already in
    the log or a repeat of an earlier row (``skipped``), refused by validation (``refused``,
    nothing logged) or failed to score (``scoring_errors``, logged there). ``shadow_scores``
    counts shadow scores written per shadow version, ``shadow_refused`` the shadow scores the
    service would have skipped too (the shadow's validator refused the request, or it failed).
    ``decisions_by`` counts the written decisions per (version, variant). ``outcomes`` counts
    outcomes written (also for decisions logged by an earlier run); ``outcomes_pending`` the
    logged decisions whose label time is after ``label_until``. ``days`` is the number of
    simulated days (``on_day`` calls when one was given). ``latency`` is "measured" or "fixed"
    (see the module docstring); ``seconds`` the wall time of the call.
    """

    model: str
    rows: int
    decisions: int
    skipped: int
    refused: int
    scoring_errors: int
    decisions_by: Mapping[tuple[int, str], int]
    shadow_scores: Mapping[int, int]
    shadow_refused: int
    outcomes: int
    outcomes_pending: int
    days: int
    canary_ticks: tuple[CanaryTick, ...]
    refusals: tuple[str, ...]
    load_failures: tuple[str, ...]
    first_time: datetime | None
    last_time: datetime | None
    label_until: datetime | None
    latency: str
    seconds: float

    @property
    def by_version(self) -> dict[int, int]:
        """Written decisions per version."""
        out: Counter[int] = Counter()
        for (version, _), n in self.decisions_by.items():
            out[version] += n
        return dict(sorted(out.items()))

    @property
    def by_variant(self) -> dict[str, int]:
        """Written decisions per variant (champion, challenger, canary)."""
        out: Counter[str] = Counter()
        for (_, variant), n in self.decisions_by.items():
            out[variant] += n
        return dict(sorted(out.items()))

    @property
    def shadow_total(self) -> int:
        return sum(self.shadow_scores.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "rows": self.rows,
            "decisions": self.decisions,
            "skipped": self.skipped,
            "refused": self.refused,
            "scoring_errors": self.scoring_errors,
            "decisions_by": [
                {"version": v, "variant": var, "decisions": n}
                for (v, var), n in sorted(self.decisions_by.items())
            ],
            "shadow_scores": {str(v): n for v, n in sorted(self.shadow_scores.items())},
            "shadow_refused": self.shadow_refused,
            "outcomes": self.outcomes,
            "outcomes_pending": self.outcomes_pending,
            "days": self.days,
            "canary_ticks": [t.to_dict() for t in self.canary_ticks],
            "refusals": list(self.refusals),
            "load_failures": list(self.load_failures),
            "first_time": _iso(self.first_time),
            "last_time": _iso(self.last_time),
            "label_until": _iso(self.label_until),
            "latency": self.latency,
            "seconds": self.seconds,
        }


@dataclass(frozen=True)
class OutcomeReplay:
    """What one :func:`replay_outcomes` call wrote: ``written`` new outcomes, ``already``
    recorded before, ``pending`` (label time after ``until``), ``no_decision`` (labels due but
    the row's decision is not in the log: refused, failed, or never replayed) and
    ``unlabelled`` rows (missing label or label time)."""

    model: str
    rows: int
    written: int
    already: int
    pending: int
    no_decision: int
    unlabelled: int
    until: datetime
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "rows": self.rows,
            "written": self.written,
            "already": self.already,
            "pending": self.pending,
            "no_decision": self.no_decision,
            "unlabelled": self.unlabelled,
            "until": _iso(self.until),
            "seconds": self.seconds,
        }


# --------------------------------------------------------------------------------------------------
# Ids and times
# --------------------------------------------------------------------------------------------------


def _iso(ts: datetime | None) -> str | None:
    return None if ts is None else ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _from_us(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=int(us))


def _to_us(ts: datetime, field: str) -> int:
    if not isinstance(ts, datetime) or ts.tzinfo is None:
        raise InvalidArgument(
            f"{field} must be a timezone-aware datetime, got {ts!r}",
            field=field,
            remedy="pass e.g. datetime(2026, 6, 30, tzinfo=UTC)",
        )
    return (ts - _EPOCH) // timedelta(microseconds=1)


def _decision_id(name: str, entity_key: str, created_at: str, t_us: int) -> str:
    digest = hashlib.sha256(
        f"charter-replay\x1f{name}\x1f{entity_key}\x1f{created_at}".encode()
    ).digest()
    raw = bytearray((t_us // _US_PER_MS).to_bytes(6, "big") + digest[:10])
    raw[6] = (raw[6] & 0x0F) | 0x70  # version 7
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 9562 variant
    return str(uuid.UUID(bytes=bytes(raw)))


def replay_decision_id(name: str, entity_key: str, at: datetime) -> str:
    """The id :func:`replay_applications` gives the decision of ``entity_key`` at time ``at``
    for model ``name`` (its ``request_id`` is :data:`REQUEST_ID_PREFIX` plus this id)."""
    t_us = _to_us(at, "at")
    return _decision_id(name, entity_key, _iso(at) or "", t_us)


# --------------------------------------------------------------------------------------------------
# The frame, prepared once
# --------------------------------------------------------------------------------------------------


def _column(frame: pd.DataFrame, column: str, field: str) -> pd.Series:
    if not isinstance(column, str) or column not in frame.columns:
        raise InvalidArgument(
            f"the frame has no column {column!r}",
            field=field,
            remedy=f"pass {field}= the name of one of the frame's columns",
        )
    return frame[column]


def _times(frame: pd.DataFrame, column: str, field: str, *, required: bool) -> np.ndarray:
    """Microseconds since the epoch (int64, ``_NAT`` for missing) of a tz-aware time column."""
    s = _column(frame, column, field)
    if not isinstance(s.dtype, pd.DatetimeTZDtype):
        try:
            s = pd.to_datetime(s)
        except (TypeError, ValueError) as e:
            raise InvalidArgument(
                f"column {column!r} does not hold times: {e}",
                field=field,
                remedy="pass timezone-aware datetimes (e.g. datetime64[us, UTC])",
            ) from None
    if not isinstance(s.dtype, pd.DatetimeTZDtype):
        raise InvalidArgument(
            f"column {column!r} holds times without a timezone",
            field=field,
            remedy="localise them first, e.g. frame[col].dt.tz_localize('UTC')",
        )
    naive = s.dt.tz_convert(UTC).dt.tz_localize(None).dt.as_unit("us")
    us = naive.to_numpy(dtype="datetime64[us]").view(np.int64)
    missing = us == _NAT
    if required and bool(missing.any()):
        raise InvalidArgument(
            f"column {column!r} has {int(missing.sum())} missing time(s)",
            field=field,
            remedy="drop the rows without a time or fill them in",
        )
    present = us[~missing]
    if present.size and (int(present.min()) < 0 or int(present.max()) > _MAX_US):
        raise InvalidArgument(
            f"column {column!r} has times outside 1970..9999",
            field=field,
            remedy="check the unit and the year of the times",
        )
    return us


def _iso_texts(us: np.ndarray) -> list[str]:
    """Canonical ISO text (as :func:`charter.clock.iso`) of epoch microseconds, vectorised."""
    text = np.datetime_as_string(us.astype("datetime64[us]"), unit="us")
    return [t + "Z" for t in text.tolist()]


def _labels(frame: pd.DataFrame, column: str, field: str) -> np.ndarray:
    """Labels as float64: 0.0, 1.0 or NaN (missing)."""
    s = _column(frame, column, field)
    if pd.api.types.is_bool_dtype(s):
        s = s.astype("float64")
    if not pd.api.types.is_numeric_dtype(s):
        raise InvalidArgument(
            f"column {column!r} must hold the labels 0 and 1, got dtype {s.dtype}",
            field=field,
            remedy="pass 0 (good) or 1 (bad, e.g. defaulted), or NaN when unknown",
        )
    values = s.to_numpy(dtype=np.float64, na_value=np.nan)
    known = values[~np.isnan(values)]
    if not np.isin(known, (0.0, 1.0)).all():
        bad = sorted(set(known[~np.isin(known, (0.0, 1.0))].tolist()))[:3]
        raise InvalidArgument(
            f"column {column!r} holds labels other than 0 and 1: {bad}",
            field=field,
            remedy="pass 0 (good) or 1 (bad), or NaN when unknown",
        )
    return values


@dataclass
class _Rows:
    """The frame's rows in time order, with everything per row that does not depend on the
    routing state: times, ids, entity keys, labels."""

    frame: pd.DataFrame
    order: np.ndarray  # frame positions in time order
    t_us: np.ndarray
    iso: list[str]
    entity: list[str]
    ids: list[str]
    repeat: np.ndarray  # bool: the same (entity, time) as an earlier row
    label: np.ndarray | None  # float64 0/1/NaN
    label_us: np.ndarray | None  # int64, _NAT when missing
    label_iso: list[str] | None
    _columns: dict[str, tuple[np.ndarray, bool]]

    def __len__(self) -> int:
        return len(self.ids)

    def due(self, k: int, until_us: int) -> bool:
        """Row ``k`` has a label whose time is at or before ``until_us``."""
        if self.label is None or self.label_us is None:
            return False
        lu = int(self.label_us[k])
        return lu != _NAT and lu <= until_us and not np.isnan(self.label[k])

    def labelled(self, k: int) -> bool:
        if self.label is None or self.label_us is None:
            return False
        return int(self.label_us[k]) != _NAT and not np.isnan(self.label[k])

    def values(self, name: str, ks: Sequence[int]) -> list[Any]:
        """Plain Python values of feature column ``name`` at rows ``ks``: floats, ints, bools
        or text, and None for a missing value (as a JSON request would carry it)."""
        cached = self._columns.get(name)
        if cached is None:
            cached = _feature_array(self.frame[name].iloc[self.order])
            self._columns[name] = cached
        array, has_nan = cached
        out: list[Any] = array[np.asarray(ks, dtype=np.int64)].tolist()
        if has_nan:
            out = [None if v != v else v for v in out]
        return out


def _feature_array(s: pd.Series) -> tuple[np.ndarray, bool]:
    """A column as an array whose ``tolist()`` gives JSON-like values, and whether NaN must
    still be turned into None."""
    if pd.api.types.is_bool_dtype(s) and not s.isna().any():
        return s.to_numpy(dtype=bool), False
    if pd.api.types.is_integer_dtype(s) and not s.isna().any():
        return s.to_numpy(dtype=np.int64), False
    if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
        array = s.to_numpy(dtype=np.float64, na_value=np.nan)
        return array, bool(np.isnan(array).any())
    if pd.api.types.is_datetime64_any_dtype(s):
        text = s.map(lambda t: None if pd.isna(t) else t.isoformat())
        return text.to_numpy(dtype=object), False
    return s.to_numpy(dtype=object, na_value=None), False


def _prepare(
    name: str,
    frame: object,
    *,
    time_column: str,
    entity_column: str,
    label_column: str | None,
    label_time_column: str | None,
) -> _Rows:
    if not isinstance(name, str) or not name:
        raise InvalidArgument(
            f"name must be a model name, got {name!r}", field="name", remedy="pass the model name"
        )
    if not isinstance(frame, pd.DataFrame):
        raise InvalidArgument(
            f"frame must be a pandas DataFrame, got {type(frame).__name__}",
            field="frame",
            remedy="pass e.g. charter.datasets.synthetic.credit_applications(...)",
        )
    t_all = _times(frame, time_column, "time_column", required=True)
    order = np.argsort(t_all, kind="stable")
    t_us = t_all[order]
    iso = _iso_texts(t_us)
    keys = _column(frame, entity_column, "entity_column").iloc[order]
    if bool(keys.isna().any()):
        raise InvalidArgument(
            f"column {entity_column!r} has missing entity keys",
            field="entity_column",
            remedy="every application needs the id that routing hashes",
        )
    entity = [str(k) for k in keys.tolist()]
    for key in entity:
        if not key or len(key) > 256 or not check_text(key, "entity_key", []):
            raise InvalidArgument(
                f"entity key {key[:40]!r} must be valid text of 1 to 256 characters",
                field="entity_column",
                remedy="use the applicant's id as the entity key",
            )
    ids = [_decision_id(name, e, s, int(t)) for e, s, t in zip(entity, iso, t_us, strict=True)]
    seen: set[str] = set()
    repeat = np.zeros(len(ids), dtype=bool)
    for k, i in enumerate(ids):
        if i in seen:
            repeat[k] = True
        seen.add(i)
    label = label_us = label_iso = None
    if label_column is not None:
        label = _labels(frame, label_column, "label_column")[order]
        if label_time_column is None:
            raise InvalidArgument(
                "label_time_column is needed with label_column",
                field="label_time_column",
                remedy="name the column of the times the labels become known",
            )
        label_us = _times(frame, label_time_column, "label_time_column", required=False)[order]
        label_iso = _iso_texts(np.where(label_us == _NAT, 0, label_us))
    return _Rows(
        frame, order, t_us, iso, entity, ids, repeat, label, label_us, label_iso, _columns={}
    )


# --------------------------------------------------------------------------------------------------
# The replay
# --------------------------------------------------------------------------------------------------


def _check_features(features: object, frame: pd.DataFrame) -> tuple[str, ...] | None:
    if features is None:
        return None
    if isinstance(features, str) or not isinstance(features, Iterable):
        raise InvalidArgument(
            f"features must be a list of column names, got {features!r}",
            field="features",
            remedy="pass e.g. ['age', 'income'], or None for every feature a served version reads",
        )
    names = tuple(features)
    for n in names:
        _column(frame, n, "features")
    if len(set(names)) != len(names):
        raise InvalidArgument(
            f"features lists a column twice: {list(names)}",
            field="features",
            remedy="list each feature once",
        )
    return names


class _Replay:
    """The replay's state: the served runtime, the counters and the batch writer."""

    def __init__(
        self,
        registry: Registry,
        name: str,
        rows: _Rows,
        features: tuple[str, ...] | None,
        *,
        batch_rows: int,
        until_us: int,
        latency_ms: float | None,
        reasons: bool,
    ) -> None:
        self.registry = registry
        self.name = name
        self.rows = rows
        self.features = features
        self.batch_rows = batch_rows
        self.until_us = until_us
        self.fixed_latency = latency_ms
        self.reasons = reasons
        self.runtime = Runtime(registry)
        self.rt: ModelRuntime | None = None
        self.send: tuple[str, ...] = ()
        self.written = 0
        self.skipped = 0
        self.refused = 0
        self.errors = 0
        self.by: Counter[tuple[int, str]] = Counter()
        self.shadows: Counter[int] = Counter()
        self.shadow_refused = 0
        self.outcomes = 0
        self.pending = 0
        self.refusals: list[str] = []
        self.load_failures: list[str] = []
        self.ticks: list[CanaryTick] = []

    # -- who answers ------------------------------------------------------------------------------
    def refresh(self) -> ModelRuntime:
        self.runtime.refresh()
        failure = self.runtime.failures.get(self.name)
        rt = self.runtime.models.get(self.name)
        if rt is None:
            if failure is not None:
                raise NotFound(
                    f"model {self.name!r} cannot be served: {failure.error}",
                    field="name",
                    remedy="fix the version the error names; the replay serves what the "
                    "service would",
                )
            raise NotFound(
                f"model {self.name!r} is not served: it has no champion",
                field="name",
                remedy="give a version the champion alias before replaying history",
            )
        if failure is not None and failure.error not in self.load_failures:
            self.load_failures.append(failure.error)
        if rt is not self.rt:
            self.send = self._request_features(rt)
            self.rt = rt
        return rt

    def _request_features(self, rt: ModelRuntime) -> tuple[str, ...]:
        """The features each replayed request carries (as a client would send them)."""
        columns = self.rows.frame.columns
        if self.features is None:
            send = tuple(n for n in sorted(rt.accepted) if n in columns)
        else:
            send = self.features
            unknown = [n for n in send if n not in rt.accepted]
            if unknown:
                raise InvalidArgument(
                    f"no served version of {self.name!r} reads {unknown}, so the service would "
                    "refuse every request carrying them",
                    field="features",
                    remedy=f"send only features of the served versions: {sorted(rt.accepted)}",
                )
        missing = sorted(
            {
                spec.name
                for served in rt.versions.values()
                for spec in served.validator.schema
                if not spec.nullable and spec.name not in send
            }
        )
        if missing:
            raise InvalidArgument(
                f"the served versions of {self.name!r} need {missing}, which the replayed "
                "requests would not carry",
                field="features",
                remedy="add those columns to the frame (or to features=)",
            )
        return send

    # -- the loop ---------------------------------------------------------------------------------
    def run(
        self, on_day: Callable[[date], None] | None, every_us: int | None
    ) -> tuple[int, datetime | None, datetime | None]:
        t_us = self.rows.t_us
        n = len(t_us)
        if n == 0:
            return 0, None, None
        first_day = _from_us(int(t_us[0])).date()
        day_start = int(t_us[0]) - int(t_us[0]) % _US_PER_DAY
        end = int(t_us[-1]) - int(t_us[-1]) % _US_PER_DAY + _US_PER_DAY
        next_tick = None if every_us is None else day_start + every_us
        i = 0
        days = 0
        while day_start < end:
            day_end = day_start + _US_PER_DAY
            while next_tick is not None and next_tick < day_end:
                j = int(np.searchsorted(t_us, next_tick, side="left"))
                self.process(i, j)
                i = j
                self.tick(next_tick)
                next_tick += every_us or 0
            j = int(np.searchsorted(t_us, day_end, side="left"))
            self.process(i, j)
            i = j
            if on_day is not None:
                on_day(first_day + timedelta(days=days))
                self.refresh()
            days += 1
            day_start = day_end
            if next_tick is not None and next_tick == day_end and day_end < end:
                self.tick(next_tick)
                next_tick += every_us or 0
        return days, _from_us(int(t_us[0])), _from_us(int(t_us[-1]))

    def tick(self, at_us: int) -> None:
        """The canary controller at simulated time ``at_us``, as the service's timer runs it:
        only while the served policy has a canary."""
        rt = self.refresh()
        if rt.policy.canary is None:
            return
        at = _from_us(at_us)
        result = tick(self.registry, self.name, at)
        if result is not None:
            action, state = result
            self.ticks.append(CanaryTick(at, action, state))
            self.refresh()

    def process(self, i: int, j: int) -> None:
        for a in range(i, j, self.batch_rows):
            self.batch(a, min(a + self.batch_rows, j))

    # -- one batch --------------------------------------------------------------------------------
    def _existing(self, a: int, b: int) -> dict[str, str]:
        """request_id -> id of this model's decisions logged in the batch's time range."""
        lo, hi = self.rows.iso[a], self.rows.iso[b - 1]
        with self.registry.db.read() as conn:
            found = conn.execute(
                select(decisions.c.request_id, decisions.c.id).where(
                    decisions.c.model_name == self.name,
                    decisions.c.created_at >= lo,
                    decisions.c.created_at <= hi,
                )
            ).all()
        return {r.request_id: r.id for r in found}

    def _with_outcome(self, a: int, b: int) -> set[str]:
        lo, hi = self.rows.iso[a], self.rows.iso[b - 1]
        with self.registry.db.read() as conn:
            return _outcome_ids(conn, self.name, lo, hi)

    def _note_refusal(self, k: int, e: RequestInvalid) -> None:
        self.refused += 1
        if len(self.refusals) < MAX_REFUSAL_EXAMPLES:
            self.refusals.append(f"{self.rows.entity[k]} at {self.rows.iso[k]}: {e.message}")

    def _score(
        self, served: ServedVersion, feats: list[dict[str, Any]]
    ) -> tuple[list[float | None], list[float], list[str | None]]:
        """Scores (None where scoring failed), each row's share of the scoring time in ms, and
        each failure's message."""
        if not feats:
            return [], [], []
        t0 = time.perf_counter()
        try:
            scores = served.scorer.score_many(feats)
            each = (time.perf_counter() - t0) * 1000.0 / len(feats)
            return [float(s) for s in scores], [each] * len(feats), [None] * len(feats)
        except _SCORING_ERRORS:
            pass
        out: list[float | None] = []
        spent: list[float] = []
        failed: list[str | None] = []
        for f in feats:
            t = time.perf_counter()
            try:
                out.append(float(served.scorer.score_one(f)))
                failed.append(None)
            except _SCORING_ERRORS as e:
                out.append(None)
                failed.append(str(e)[:1000])
            spent.append((time.perf_counter() - t) * 1000.0)
        return out, spent, failed

    def _reasons(self, served: ServedVersion, features: dict[str, Any]) -> list[dict[str, Any]]:
        if not self.reasons:
            return []
        return served.scorer.reasons(features)

    def batch(self, a: int, b: int) -> None:
        rt = self.refresh()
        rows = self.rows
        existing = self._existing(a, b)
        fresh = [
            k
            for k in range(a, b)
            if not rows.repeat[k] and REQUEST_ID_PREFIX + rows.ids[k] not in existing
        ]
        self.skipped += (b - a) - len(fresh)
        columns = [rows.values(n, fresh) for n in self.send]
        raw = [dict(zip(self.send, vals, strict=True)) for vals in zip(*columns, strict=True)]
        if not self.send:
            raw = [{} for _ in fresh]

        # route, then score each version's rows at once
        groups: dict[int, list[int]] = {}
        variant: dict[int, str] = {}
        for p, k in enumerate(fresh):
            d = route(rows.entity[k], rt.policy)
            groups.setdefault(d.version, []).append(p)
            variant[p] = d.variant
        logged: list[tuple[int, dict[str, Any]]] = []  # (row, decision row), in row order later
        errors: list[dict[str, Any]] = []
        # each request's validated features and validation time (ms), by the routed version
        checked: dict[int, tuple[dict[str, Any], float]] = {}
        for version, ps in groups.items():
            served = rt.versions[version]
            valid: list[int] = []
            feats: list[dict[str, Any]] = []
            for p in ps:
                t = time.perf_counter()
                try:
                    f = served.validator.validate(raw[p], "features", rt.accepted)
                except RequestInvalid as e:
                    self._note_refusal(fresh[p], e)
                    continue
                checked[p] = (f, (time.perf_counter() - t) * 1000.0)
                feats.append(f)
                valid.append(p)
            scores, spent, failed = self._score(served, feats)
            for q, p in enumerate(valid):
                k = fresh[p]
                score = scores[q]
                message = failed[q]
                reasons: list[dict[str, Any]] = []
                extra = 0.0
                if score is not None:
                    t = time.perf_counter()
                    try:
                        reasons = self._reasons(served, feats[q])
                    except _SCORING_ERRORS as e:
                        message = str(e)[:1000]
                    extra = (time.perf_counter() - t) * 1000.0
                if score is None or message is not None:
                    errors.append(
                        {
                            "model_name": self.name,
                            "version": version,
                            "variant": variant[p],
                            "message": message or "",
                            "created_at": rows.iso[k],
                        }
                    )
                    continue
                rec = DecisionRecord(
                    id=rows.ids[k],
                    request_id=REQUEST_ID_PREFIX + rows.ids[k],
                    entity_key=rows.entity[k],
                    model_name=self.name,
                    version=version,
                    variant=variant[p],
                    inputs=feats[q],
                    score=score,
                    threshold=served.threshold,
                    decision=served.decide(score),
                    reason_codes=reasons,
                    latency_ms=self.fixed_latency
                    if self.fixed_latency is not None
                    else spent[q] + extra,
                    created_at=rows.iso[k],
                )
                logged.append((p, dict(zip(COLUMNS, rec.values(), strict=True))))
        logged.sort(key=lambda item: item[0])

        # shadows score every logged decision's request
        shadow_rows: list[dict[str, Any]] = []
        for version in rt.policy.shadows:
            served = rt.versions[version]
            # Validation is a function of the schema and the request: where the shadow's schema
            # is the routed version's, its result (and measured time) is reused.
            same = {v: rt.versions[v].validator.schema == served.validator.schema for v in groups}
            todo: list[tuple[dict[str, Any], dict[str, Any], float]] = []
            for p, row in logged:
                if same[row["version"]]:
                    f, ms = checked[p]
                    todo.append((row, f, ms))
                    continue
                t = time.perf_counter()
                try:
                    f = served.validator.validate(raw[p], "features", rt.accepted)
                except RequestInvalid:
                    self.shadow_refused += 1
                    continue
                todo.append((row, f, (time.perf_counter() - t) * 1000.0))
            scores, spent, _failed = self._score(served, [f for _, f, _ in todo])
            for (row, _, check_ms), score, ms in zip(todo, scores, spent, strict=True):
                if score is None:  # the service logs a warning and skips it
                    self.shadow_refused += 1
                    continue
                shadow_rows.append(
                    {
                        "decision_id": row["id"],
                        "model_name": self.name,
                        "version": version,
                        "score": score,
                        "decision": served.decide(score),
                        "latency_ms": self.fixed_latency
                        if self.fixed_latency is not None
                        else check_ms + ms,
                        "created_at": row["created_at"],
                    }
                )
                self.shadows[version] += 1

        # outcomes that have arrived by label_until, for new and earlier-logged decisions
        outcome_rows: list[dict[str, Any]] = []
        for p, row in logged:
            k = fresh[p]
            if rows.due(k, self.until_us):
                outcome_rows.append(_outcome_row(rows, k, row["id"]))
            elif rows.labelled(k):
                self.pending += 1
        earlier = [
            k
            for k in range(a, b)
            if not rows.repeat[k] and REQUEST_ID_PREFIX + rows.ids[k] in existing
        ]
        if earlier:
            due = [k for k in earlier if rows.due(k, self.until_us)]
            self.pending += sum(1 for k in earlier if rows.labelled(k)) - len(due)
            have = self._with_outcome(a, b) if due else set()
            for k in due:
                did = existing[REQUEST_ID_PREFIX + rows.ids[k]]
                if did not in have:
                    outcome_rows.append(_outcome_row(rows, k, did))

        self._write([row for _, row in logged], shadow_rows, errors, outcome_rows)
        self.written += len(logged)
        for _, row in logged:
            self.by[(int(row["version"]), str(row["variant"]))] += 1
        self.errors += len(errors)
        self.outcomes += len(outcome_rows)

    def _write(
        self,
        decision_rows: list[dict[str, Any]],
        shadow_rows: list[dict[str, Any]],
        error_rows: list[dict[str, Any]],
        outcome_rows: list[dict[str, Any]],
    ) -> None:
        if not (decision_rows or shadow_rows or error_rows or outcome_rows):
            return
        try:
            with self.registry.db.write(registry_lock=False) as conn:
                if decision_rows:
                    conn.execute(decisions.insert(), decision_rows)
                if shadow_rows:
                    conn.execute(shadow_scores.insert(), shadow_rows)
                if error_rows:
                    conn.execute(scoring_errors.insert(), error_rows)
                if outcome_rows:
                    conn.execute(outcomes.insert(), outcome_rows)
        except exc.IntegrityError as e:
            raise Conflict(
                f"another writer logged some of these decisions or outcomes meanwhile: "
                f"{str(e).splitlines()[0]}",
                remedy="run the replay again: it skips whatever is logged already",
            ) from None


def _outcome_row(rows: _Rows, k: int, decision_id: str) -> dict[str, Any]:
    """The outcome of row ``k`` (only called for rows with a label, see ``_Rows.due``)."""
    label = rows.label[k] if rows.label is not None else np.nan
    at = rows.label_iso[k] if rows.label_iso is not None else ""
    return {
        "decision_id": decision_id,
        "label": int(label),
        "observed_at": at,
        "recorded_at": at,
    }


def _outcome_ids(conn: Any, name: str, lo: str, hi: str) -> set[str]:
    """Ids of this model's decisions in ``[lo, hi]`` that have an outcome already."""
    found = conn.execute(
        select(outcomes.c.decision_id)
        .join(decisions, decisions.c.id == outcomes.c.decision_id)
        .where(
            decisions.c.model_name == name,
            decisions.c.created_at >= lo,
            decisions.c.created_at <= hi,
        )
    ).all()
    return {r.decision_id for r in found}


def _check_every(every: object) -> int | None:
    if every is None:
        return None
    if not isinstance(every, timedelta) or every <= timedelta(0):
        raise InvalidArgument(
            f"canary_every must be a positive timedelta, got {every!r}",
            field="canary_every",
            remedy="pass e.g. timedelta(hours=6), or None to leave canaries alone",
        )
    us = every // timedelta(microseconds=1)
    if us < 1:
        raise InvalidArgument(
            "canary_every is shorter than a microsecond",
            field="canary_every",
            remedy="pass e.g. timedelta(hours=6)",
        )
    return int(us)


def replay_applications(
    registry: Registry,
    name: str,
    frame: pd.DataFrame,
    *,
    time_column: str = "decision_time",
    entity_column: str = "application_id",
    label_column: str | None = "default",
    label_time_column: str | None = "label_available_at",
    features: Sequence[str] | None = None,
    batch_rows: int = 5000,
    on_day: Callable[[date], None] | None = None,
    canary_every: timedelta | None = None,
    label_until: datetime | None = None,
    latency_ms: float | None = None,
    reasons: bool = True,
) -> ReplaySummary:
    """Decide every application of ``frame`` at its historical time, as the service would have
    with the registry's state at that time, and write the decision log (see the module
    docstring for what is real and what is not).

    ``time_column`` holds timezone-aware times, ``entity_column`` the key routing hashes (the
    applicant id). ``label_column`` (0/1, NaN unknown; None: write no outcomes) and
    ``label_time_column`` give the outcome and when it becomes known; outcomes due by
    ``label_until`` (default: the last row's time) are written. ``features`` are the columns each
    request carries (default: every feature a served version reads). ``batch_rows`` caps the
    rows per transaction. ``on_day(day)`` runs at the end of each simulated UTC day;
    ``canary_every`` runs the canary controller on that simulated period. ``latency_ms`` writes
    a fixed latency instead of the measured one; ``reasons=False`` skips reason codes.

    Rows logged by an earlier run (same model, entity and time) are skipped, so a rerun writes
    nothing twice; outcomes due by the new ``label_until`` are still added to them. Raises
    ``NotFound`` if the model is not served (no champion), ``InvalidArgument`` for a bad column,
    argument, or features the served versions cannot take, ``Conflict`` if another writer logged
    the same decisions at the same moment.
    """
    started = time.perf_counter()
    rows = _prepare(
        name,
        frame,
        time_column=time_column,
        entity_column=entity_column,
        label_column=label_column,
        label_time_column=label_time_column,
    )
    batch = check_int(batch_rows, "batch_rows", minimum=1)
    every_us = _check_every(canary_every)
    fixed = None if latency_ms is None else check_number(latency_ms, "latency_ms", minimum=0.0)
    if on_day is not None and not callable(on_day):
        raise InvalidArgument(
            "on_day must be callable", field="on_day", remedy="pass a function of one date"
        )
    if not isinstance(reasons, bool):
        raise InvalidArgument(
            f"reasons must be True or False, got {reasons!r}", field="reasons", remedy="pass True"
        )
    wanted = _check_features(features, frame)
    if label_until is not None:
        until_us = _to_us(label_until, "label_until")
    else:
        until_us = int(rows.t_us[-1]) if len(rows) else 0
    replay = _Replay(
        registry,
        name,
        rows,
        wanted,
        batch_rows=batch,
        until_us=until_us,
        latency_ms=fixed,
        reasons=reasons,
    )
    replay.refresh()
    days, first, last = replay.run(on_day, every_us)
    return ReplaySummary(
        model=name,
        rows=len(rows),
        decisions=replay.written,
        skipped=replay.skipped,
        refused=replay.refused,
        scoring_errors=replay.errors,
        decisions_by=dict(sorted(replay.by.items())),
        shadow_scores=dict(sorted(replay.shadows.items())),
        shadow_refused=replay.shadow_refused,
        outcomes=replay.outcomes,
        outcomes_pending=replay.pending,
        days=days,
        canary_ticks=tuple(replay.ticks),
        refusals=tuple(replay.refusals),
        load_failures=tuple(replay.load_failures),
        first_time=first,
        last_time=last,
        label_until=_from_us(until_us) if len(rows) else label_until,
        latency="measured" if fixed is None else "fixed",
        seconds=time.perf_counter() - started,
    )


def replay_outcomes(
    registry: Registry,
    name: str,
    frame: pd.DataFrame,
    until: datetime,
    *,
    time_column: str = "decision_time",
    entity_column: str = "application_id",
    label_column: str = "default",
    label_time_column: str = "label_available_at",
    batch_rows: int = 5000,
) -> OutcomeReplay:
    """Record the outcomes of ``frame``'s replayed decisions whose label time is at or before
    ``until`` and that are not recorded yet (``observed_at`` and ``recorded_at`` = label time).

    Pass the frame (and column names) given to :func:`replay_applications`; decisions are found
    by their deterministic ids, so a row whose decision was never logged (refused, failed, not
    replayed) gets no outcome and is counted in ``no_decision``. Idempotent: a second call with
    the same ``until`` writes nothing. One transaction per ``batch_rows`` rows.
    """
    started = time.perf_counter()
    until_us = _to_us(until, "until")
    if not isinstance(label_column, str) or not isinstance(label_time_column, str):
        raise InvalidArgument(
            "label_column and label_time_column must name columns",
            field="label_column",
            remedy="pass the columns of the label and of its time",
        )
    rows = _prepare(
        name,
        frame,
        time_column=time_column,
        entity_column=entity_column,
        label_column=label_column,
        label_time_column=label_time_column,
    )
    batch = check_int(batch_rows, "batch_rows", minimum=1)
    registry.get_model(name)  # NotFound names the model
    written = already = pending = no_decision = unlabelled = 0
    for a in range(0, len(rows), batch):
        b = min(a + batch, len(rows))
        due: list[int] = []
        for k in range(a, b):
            if rows.repeat[k]:
                continue
            if not rows.labelled(k):
                unlabelled += 1
            elif rows.due(k, until_us):
                due.append(k)
            else:
                pending += 1
        if not due:
            continue
        lo, hi = rows.iso[a], rows.iso[b - 1]
        try:
            with registry.db.write(registry_lock=False) as conn:
                logged = {
                    r.id
                    for r in conn.execute(
                        select(decisions.c.id).where(
                            decisions.c.model_name == name,
                            decisions.c.created_at >= lo,
                            decisions.c.created_at <= hi,
                        )
                    )
                }
                have = _outcome_ids(conn, name, lo, hi)
                new = []
                for k in due:
                    did = rows.ids[k]
                    if did not in logged:
                        no_decision += 1
                    elif did in have:
                        already += 1
                    else:
                        new.append(_outcome_row(rows, k, did))
                if new:
                    conn.execute(outcomes.insert(), new)
        except exc.IntegrityError as e:
            raise Conflict(
                f"another writer recorded some of these outcomes meanwhile: "
                f"{str(e).splitlines()[0]}",
                remedy="run replay_outcomes again: it skips what is recorded",
            ) from None
        written += len(new)
    return OutcomeReplay(
        model=name,
        rows=len(rows),
        written=written,
        already=already,
        pending=pending,
        no_decision=no_decision,
        unlabelled=unlabelled,
        until=until,
        seconds=time.perf_counter() - started,
    )
