"""One monitoring window of one model version: a mergeable accumulator over flat decision frames
(:mod:`charter.monitoring.frame`) and its result in the six dimensions.

``WindowAccumulator(spec).update(frame)`` adds a chunk of decisions (rows of other versions or
outside the window are ignored, so a Spark partition can hold anything), ``merge`` adds another
accumulator of the same spec, ``to_state``/``from_state`` move it between processes as plain JSON,
and ``result()`` computes the frozen :class:`WindowResult`. Every part is a sum of counts or of
floats, so one pass, a stream of chunks and partitions merged in any order give the same binned
statistics exactly (and float sums up to rounding).

What each dimension reads
    performance   decisions whose outcome arrived (``label`` not NaN): binned AUC (within its
                  bound), Gini, KS, Brier, ECE; precision and recall of "decline" exactly, from
                  the logged decisions. Judged only once the window's labels are due
                  (``window_end + label_maturity <= as_of``) and both classes are present.
    estimated     every decision's score, assumed calibrated (:mod:`charter.stats.estimation`).
    data_drift    the ``f__`` inputs against the version's reference profile (PSI, KS or
                  chi-square with the correction of the drift policy).
    prediction    the score against the validation baseline's holdout score profile; mean and
                  percentiles from 1,000 uniform bins on [0, 1] (percentiles within 0.001);
                  approval rate from the logged decisions.
    data_quality  missing, non-finite or mistyped, out-of-reference-range values, new categories.
    operations    volume (and its ratio to the normal daily volume), latency quantiles from a
                  log-spaced histogram (each within 2.4% above the exact value), error rate with
                  the failed scorings that the source counted.
    business      approval rate, default rate among approved decisions with labels, and the
                  cost of wrong decisions from the per-model cost matrix.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm

from charter.errors import InvalidArgument
from charter.monitoring.frame import feature_column
from charter.stats.classification import BinnedScoreAccumulator, auc_standard_error
from charter.stats.compare import compare
from charter.stats.estimation import EstimationAccumulator
from charter.stats.policy import DriftPolicy
from charter.stats.sketches import CurrentAccumulator, NumericProfile, ReferenceProfile

SCORE_BINS = 1000
LATENCY_EDGES = np.geomspace(0.01, 100_000.0, 701)  # ms; neighbouring edges differ by 2.33%
MIN_LABELLED_PER_CLASS = 1


@dataclass(frozen=True)
class CostMatrix:
    """Cost of each wrong decision, in the bank's unit (e.g. thousands of euros).

    ``false_positive``: a good applicant declined (lost margin); ``false_negative``: a bad
    applicant approved (credit loss). Right decisions cost nothing.
    """

    false_positive: float = 1.0
    false_negative: float = 5.0


@dataclass(frozen=True)
class Baseline:
    """What the version was validated against: the holdout of its latest passed gate run."""

    source: str
    auc: float | None = None
    approval_rate: float | None = None
    bad_rate: float | None = None
    score_profile: ReferenceProfile | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "auc": self.auc,
            "approval_rate": self.approval_rate,
            "bad_rate": self.bad_rate,
            "score_profile": self.score_profile is not None,
        }


@dataclass(frozen=True)
class WindowSpec:
    """Everything a window's accumulator needs; picklable, so it travels to Spark workers."""

    model_name: str
    version: int
    threshold: float
    window_start: datetime
    window_end: datetime
    as_of: datetime
    label_maturity: timedelta
    profile: ReferenceProfile
    baseline: Baseline
    cost: CostMatrix = field(default_factory=CostMatrix)
    normal_daily_volume: float | None = None
    drift_policy: DriftPolicy = field(default_factory=DriftPolicy)
    min_decisions: int = 100

    def __post_init__(self) -> None:
        if self.window_end <= self.window_start:
            raise InvalidArgument(
                "the window must end after it starts",
                field="window_end",
                remedy="pass an end later than the start",
            )
        if not 0.0 < self.threshold < 1.0:
            raise InvalidArgument(
                f"threshold {self.threshold!r} is not a probability",
                field="threshold",
                remedy="monitoring needs a score in [0, 1] and its decision threshold",
            )

    @property
    def features(self) -> tuple[str, ...]:
        return tuple(self.profile.columns)

    @property
    def days(self) -> float:
        return (self.window_end - self.window_start).total_seconds() / 86_400.0

    @property
    def labels_due(self) -> bool:
        return self.window_end + self.label_maturity <= self.as_of


def _utc64(t: datetime) -> np.datetime64:
    return np.datetime64(pd.Timestamp(t).tz_convert("UTC").tz_localize(None), "us")


class WindowAccumulator:
    """Mergeable state of one window of one version (see the module docstring)."""

    def __init__(self, spec: WindowSpec) -> None:
        self.spec = spec
        self.n = 0
        self.n_approved = 0
        self.score_sum = 0.0
        self.score_hist = np.zeros(SCORE_BINS, dtype=np.int64)
        self.latency = np.zeros(LATENCY_EDGES.size + 1, dtype=np.int64)
        self.errors = 0
        self.features = CurrentAccumulator(spec.profile)
        sp = spec.baseline.score_profile
        self.scores = CurrentAccumulator(sp) if sp is not None else None
        self.estimation = EstimationAccumulator(spec.threshold)
        self.labelled = BinnedScoreAccumulator()
        # logged decision x label on labelled rows: "decline" is the positive prediction
        self.tp = self.fp = self.tn = self.fn = 0
        self._start = _utc64(spec.window_start)
        self._end = _utc64(spec.window_end)

    # ----------------------------------------------------------------------------- update
    def _rows(self, frame: pd.DataFrame) -> pd.DataFrame:
        created = frame["created_at"]
        t = created.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy("datetime64[us]")
        keep = (
            (frame["version"].to_numpy() == self.spec.version)
            & (t >= self._start)
            & (t < self._end)
        )
        return frame if bool(keep.all()) else frame.loc[keep]

    def update(self, frame: pd.DataFrame) -> WindowAccumulator:
        """Add a flat decision frame (rows of other versions or times are skipped)."""
        missing = [c for c in ("created_at", "version", "score", "decision") if c not in frame]
        if missing:
            raise InvalidArgument(
                f"the decision frame lacks {missing}",
                field="frame",
                remedy="build it with charter.monitoring.source (see monitoring/frame.py)",
            )
        rows = self._rows(frame)
        if rows.empty:
            return self
        score = rows["score"].to_numpy(dtype=np.float64)
        if not bool(np.all((score >= 0.0) & (score <= 1.0))):
            raise InvalidArgument(
                "scores must be probabilities in [0, 1]",
                field="score",
                remedy="monitor models whose score is a probability of the bad outcome",
            )
        decline = rows["decision"].to_numpy() == "decline"
        self.n += int(score.size)
        self.n_approved += int(score.size - decline.sum())
        self.score_sum += float(score.sum())
        ids = np.minimum((score * SCORE_BINS).astype(np.int64), SCORE_BINS - 1)
        self.score_hist += np.bincount(ids, minlength=SCORE_BINS)
        if "latency_ms" in rows:
            lat = rows["latency_ms"].to_numpy(dtype=np.float64)
            lat = lat[np.isfinite(lat)]
            self.latency += np.bincount(
                np.searchsorted(LATENCY_EDGES, lat, side="right"), minlength=self.latency.size
            )
        columns = {
            name: rows[feature_column(name)]
            for name in self.spec.features
            if feature_column(name) in rows
        }
        if columns:
            self.features.update(columns)
        if self.scores is not None:
            self.scores.update({"score": score})
        self.estimation.update(score)
        if "label" in rows:
            label = rows["label"].to_numpy(dtype=np.float64)
            has = ~np.isnan(label)
            if has.any():
                bad = label[has] == 1.0
                self.labelled.update(bad.astype(np.int64), score[has])
                d = decline[has]
                self.tp += int((d & bad).sum())
                self.fp += int((d & ~bad).sum())
                self.fn += int((~d & bad).sum())
                self.tn += int((~d & ~bad).sum())
        return self

    def add_errors(self, count: int) -> WindowAccumulator:
        """Failed scorings of this version in the window (they are not decisions)."""
        self.errors += int(count)
        return self

    # ----------------------------------------------------------------------------- merge
    def merge(self, other: WindowAccumulator) -> WindowAccumulator:
        if not _same_spec(self.spec, other.spec):
            raise InvalidArgument(
                "cannot merge accumulators of different windows or versions",
                field="other",
                remedy="merge only partitions computed with the same WindowSpec",
            )
        out = WindowAccumulator(self.spec)
        out.n = self.n + other.n
        out.n_approved = self.n_approved + other.n_approved
        out.score_sum = self.score_sum + other.score_sum
        out.score_hist = self.score_hist + other.score_hist
        out.latency = self.latency + other.latency
        out.errors = self.errors + other.errors
        out.features = self.features.merge(other.features)
        if self.scores is not None and other.scores is not None:
            out.scores = self.scores.merge(other.scores)
        out.estimation = self.estimation.merge(other.estimation)
        out.labelled = self.labelled.merge(other.labelled)
        out.tp, out.fp = self.tp + other.tp, self.fp + other.fp
        out.tn, out.fn = self.tn + other.tn, self.fn + other.fn
        return out

    def to_state(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "n_approved": self.n_approved,
            "score_sum": self.score_sum,
            "score_hist": self.score_hist.tolist(),
            "latency": self.latency.tolist(),
            "errors": self.errors,
            "features": self.features.to_state(),
            "scores": None if self.scores is None else self.scores.to_state(),
            "estimation": self.estimation.to_state(),
            "labelled": self.labelled.to_state(),
            "confusion": [self.tp, self.fp, self.tn, self.fn],
        }

    @classmethod
    def from_state(cls, spec: WindowSpec, state: Mapping[str, Any]) -> WindowAccumulator:
        out = cls(spec)
        out.n = int(state["n"])
        out.n_approved = int(state["n_approved"])
        out.score_sum = float(state["score_sum"])
        out.score_hist = np.asarray(state["score_hist"], dtype=np.int64)
        out.latency = np.asarray(state["latency"], dtype=np.int64)
        out.errors = int(state["errors"])
        out.features = CurrentAccumulator.from_state(spec.profile, state["features"])
        sp = spec.baseline.score_profile
        if sp is not None and state["scores"] is not None:
            out.scores = CurrentAccumulator.from_state(sp, state["scores"])
        out.estimation = EstimationAccumulator.from_state(state["estimation"])
        out.labelled = BinnedScoreAccumulator.from_state(state["labelled"])
        out.tp, out.fp, out.tn, out.fn = (int(x) for x in state["confusion"])
        return out

    # ----------------------------------------------------------------------------- result
    def result(self, computed_at: datetime | None = None) -> WindowResult:
        s = self.spec
        judged_volume = self.n >= s.min_decisions
        notes: list[str] = []
        if not judged_volume:
            notes.append(
                f"{self.n} decisions, fewer than the {s.min_decisions} needed to judge drift"
            )
        dims: dict[str, dict[str, Any]] = {
            "performance": self._performance(notes),
            "estimated": self._estimated(),
            "data_drift": {},
            "prediction": self._prediction(judged_volume),
            "data_quality": {},
            "operations": self._operations(),
            "business": self._business(),
        }
        dims["data_drift"], dims["data_quality"] = self._drift(judged_volume)
        return WindowResult(
            model_name=s.model_name,
            version=s.version,
            window_start=s.window_start,
            window_end=s.window_end,
            as_of=s.as_of,
            n=self.n,
            labels_status=self._labels_status(),
            baseline=s.baseline.to_dict(),
            dimensions=dims,
            notes=tuple(notes),
        )

    def _labels_status(self) -> str:
        if self.spec.labels_due:
            return "matured"
        return "pending" if self.labelled.n else "none"

    def _performance(self, notes: list[str]) -> dict[str, Any]:
        s = self.spec
        n_lab = self.tp + self.fp + self.tn + self.fn
        out: dict[str, Any] = {
            "judged": False,
            "labelled": n_lab,
            "labels_due_at": (s.window_end + s.label_maturity).isoformat(),
        }
        both = self.tp + self.fn >= MIN_LABELLED_PER_CLASS and self.tn + self.fp >= 1
        if n_lab and both:
            m = self.labelled.result()
            se = auc_standard_error(m.auc, m.n_bad, m.n - m.n_bad)
            base = s.baseline.auc
            out.update(
                auc=m.auc,
                auc_bound=m.auc_bound,
                gini=m.gini,
                ks=m.ks,
                ks_bound=m.ks_bound,
                brier=m.brier,
                ece=m.ece,
                bad_rate=m.bad_rate,
                precision=self.tp / (self.tp + self.fp) if self.tp + self.fp else None,
                recall=self.tp / (self.tp + self.fn) if self.tp + self.fn else None,
                auc_change=_change(m.auc, base),
                auc_se=se,
                # one-sided: how likely an AUC this low is if the model still ranks as well as
                # at validation (the baseline taken as exact)
                auc_drop_p=None
                if base is None or se == 0
                else float(norm.cdf((m.auc - base) / se)),
            )
            out["judged"] = s.labels_due
        if not s.labels_due:
            notes.append(f"labels are due {out['labels_due_at']}: performance is shown, not judged")
        return out

    def _estimated(self) -> dict[str, Any]:
        if self.n == 0:
            return {}
        e = self.estimation.result()
        d = e.to_dict()
        d["auc_change"] = _change(e.auc, self.spec.baseline.auc)
        return d

    def _prediction(self, judged: bool) -> dict[str, Any]:
        if self.n == 0:
            return {}
        b = self.spec.baseline
        approval = self.n_approved / self.n
        out: dict[str, Any] = {
            "score_mean": self.score_sum / self.n,
            "score_p50": _hist_quantile(self.score_hist, 0.5),
            "score_p90": _hist_quantile(self.score_hist, 0.9),
            "approval_rate": approval,
            "approval_rate_change": None if b.approval_rate is None else approval - b.approval_rate,
            "score_psi": None,
        }
        if self.scores is not None and b.score_profile is not None and judged:
            rep = compare(b.score_profile, self.scores, self.spec.drift_policy)
            out["score_psi"] = rep.features[0].psi
            out["score_tier"] = rep.features[0].tier
        return out

    def _drift(self, judged: bool) -> tuple[dict[str, Any], dict[str, Any]]:
        if self.n == 0:
            return {}, {}
        rep = compare(self.spec.profile, self.features, self.spec.drift_policy)
        drift_rows, quality_rows = [], []
        for f in rep.features:
            q = f.quality
            n_rows = max(q.n_rows, 1)
            drift_rows.append(
                {
                    "feature": f.feature,
                    "kind": f.kind,
                    "psi": f.psi if judged else None,
                    "test": f.test,
                    "statistic": f.statistic,
                    "p_value": f.p_adjusted if judged else None,
                    "tier": f.tier if judged else "not judged",
                }
            )
            quality_rows.append(
                {
                    "feature": f.feature,
                    "missing_rate": q.missing_rate,
                    "schema_violation_rate": (q.nonfinite + q.type_errors) / n_rows,
                    "out_of_range_rate": q.out_of_range_rate if f.kind == "numeric" else None,
                    "new_category_rate": q.new_category_rate if f.kind == "categorical" else None,
                    "new_categories": list(q.new_categories[:20]),
                    "column_missing": q.column_missing,
                }
            )
        drifted = sum(1 for r in drift_rows if r["tier"] in ("warning", "critical"))
        return (
            {"features": drift_rows, "features_drifted": drifted if judged else None},
            {
                "features": quality_rows,
                "missing_columns": list(rep.missing_columns),
                "extra_columns": list(rep.extra_columns),
            },
        )

    def _operations(self) -> dict[str, Any]:
        s = self.spec
        per_day = self.n / s.days
        attempts = self.n + self.errors
        out: dict[str, Any] = {
            "volume": self.n,
            "per_day": per_day,
            "normal_per_day": s.normal_daily_volume,
            "volume_ratio": per_day / s.normal_daily_volume if s.normal_daily_volume else None,
            "errors": self.errors,
            "error_rate": self.errors / attempts if attempts else None,
        }
        for q, key in ((0.5, "latency_p50_ms"), (0.95, "latency_p95_ms"), (0.99, "latency_p99_ms")):
            out[key] = _latency_quantile(self.latency, q)
        return out

    def _business(self) -> dict[str, Any]:
        c = self.spec.cost
        n_lab = self.tp + self.fp + self.tn + self.fn
        approved_labelled = self.tn + self.fn
        out: dict[str, Any] = {
            "approval_rate": self.n_approved / self.n if self.n else None,
            "default_rate": self.fn / approved_labelled if approved_labelled else None,
            "false_positive_cost": self.fp * c.false_positive if n_lab else None,
            "false_negative_cost": self.fn * c.false_negative if n_lab else None,
        }
        if n_lab:
            out["cost"] = out["false_positive_cost"] + out["false_negative_cost"]
            out["cost_per_decision"] = out["cost"] / n_lab
        else:
            out["cost"] = out["cost_per_decision"] = None
        return out


def _same_spec(a: WindowSpec, b: WindowSpec) -> bool:
    """Equal specs, also when built apart (their profiles hold numpy arrays, which ``==`` on the
    dataclass cannot compare)."""
    if a is b:
        return True
    plain = (
        "model_name",
        "version",
        "threshold",
        "window_start",
        "window_end",
        "as_of",
        "label_maturity",
        "cost",
        "normal_daily_volume",
        "drift_policy",
        "min_decisions",
    )
    if any(getattr(a, f) != getattr(b, f) for f in plain):
        return False
    sa, sb = a.baseline.score_profile, b.baseline.score_profile
    if (sa is None) != (sb is None):
        return False
    if sa is not None and sb is not None and sa is not sb and sa.to_dict() != sb.to_dict():
        return False
    return a.profile is b.profile or a.profile.to_dict() == b.profile.to_dict()


def _change(value: float | None, base: float | None) -> float | None:
    if value is None or base is None or base == 0:
        return None
    return (value - base) / base


def _bin_of_quantile(counts: np.ndarray, q: float) -> int | None:
    """The bin where the cumulative count reaches ``q`` of the total (None when empty)."""
    total = int(counts.sum())
    if total == 0:
        return None
    return int(np.searchsorted(np.cumsum(counts), math.ceil(q * total)))


def _hist_quantile(counts: np.ndarray, q: float) -> float | None:
    """The upper edge of the uniform [0, 1] bin where the cumulative share reaches ``q``."""
    j = _bin_of_quantile(counts, q)
    return None if j is None else (j + 1) / counts.size


def _latency_quantile(counts: np.ndarray, q: float) -> float | None:
    j = _bin_of_quantile(counts, q)
    return None if j is None else float(LATENCY_EDGES[min(j, LATENCY_EDGES.size - 1)])


@dataclass(frozen=True)
class SeriesPoint:
    dimension: str
    metric: str
    feature: str
    value: float | None

    def __post_init__(self) -> None:
        v = self.value
        if v is not None:
            f = float(v)
            object.__setattr__(self, "value", f if math.isfinite(f) else None)


@dataclass(frozen=True)
class WindowResult:
    model_name: str
    version: int
    window_start: datetime
    window_end: datetime
    as_of: datetime
    n: int
    labels_status: str  # matured | pending | none
    baseline: dict[str, Any]
    dimensions: dict[str, dict[str, Any]]
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model_name,
            "version": self.version,
            "window_start": self.window_start.isoformat(),
            "window_end": self.window_end.isoformat(),
            "as_of": self.as_of.isoformat(),
            "n": self.n,
            "labels_status": self.labels_status,
            "baseline": self.baseline,
            "dimensions": _json_safe(self.dimensions),
            "notes": list(self.notes),
        }

    def value(self, metric: str, feature: str = "") -> float | None:
        for p in self.series():
            if p.metric == metric and p.feature == feature:
                return p.value
        return None

    def series(self) -> Iterator[SeriesPoint]:
        """Every catalogue metric of this window (``None`` where it was not computed/judged)."""
        d = self.dimensions
        perf = d["performance"]
        judged = bool(perf.get("judged"))
        for name in ("auc", "gini", "ks", "precision", "recall", "brier", "ece", "auc_change"):
            yield SeriesPoint("performance", name, "", perf.get(name) if judged else None)
        yield SeriesPoint("performance", "labelled", "", float(perf.get("labelled", 0)))
        est = d["estimated"]
        for metric, key in (
            ("auc_estimated", "auc"),
            ("auc_estimated_low", "auc_low"),
            ("auc_estimated_high", "auc_high"),
            ("auc_estimated_change", "auc_change"),
            ("bad_rate_estimated", "bad_rate"),
            ("precision_estimated", "precision"),
            ("recall_estimated", "recall"),
        ):
            yield SeriesPoint("estimated", metric, "", est.get(key))
        drift = d["data_drift"]
        for row in drift.get("features", []):
            yield SeriesPoint("data_drift", "feature_psi", row["feature"], row["psi"])
            yield SeriesPoint("data_drift", "feature_p_value", row["feature"], row["p_value"])
        drifted = drift.get("features_drifted")
        yield SeriesPoint(
            "data_drift", "features_drifted", "", None if drifted is None else float(drifted)
        )
        pred = d["prediction"]
        for name in (
            "score_psi",
            "score_mean",
            "score_p50",
            "score_p90",
            "approval_rate",
            "approval_rate_change",
        ):
            yield SeriesPoint("prediction", name, "", pred.get(name))
        for row in d["data_quality"].get("features", []):
            for name in (
                "missing_rate",
                "schema_violation_rate",
                "out_of_range_rate",
                "new_category_rate",
            ):
                if row[name] is not None:
                    yield SeriesPoint("data_quality", name, row["feature"], row[name])
        ops = d["operations"]
        for name in (
            "volume",
            "volume_ratio",
            "latency_p50_ms",
            "latency_p95_ms",
            "latency_p99_ms",
            "error_rate",
        ):
            v = ops.get(name)
            yield SeriesPoint("operations", name, "", None if v is None else float(v))
        bus = d["business"]
        for name in ("default_rate", "cost", "cost_per_decision", "false_positive_cost"):
            yield SeriesPoint("business", name, "", bus.get(name))


def _json_safe(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _json_safe(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_json_safe(v) for v in x]
    if isinstance(x, float | np.floating):
        f = float(x)
        return f if math.isfinite(f) else None
    if isinstance(x, np.integer):
        return int(x)
    return x


def baseline_from_gate_report(report: Mapping[str, Any], gate_run_id: int) -> Baseline:
    """The monitoring baseline recorded by a gate run: holdout AUC, bad rate, approval rate and
    score profile (the stability gate stores the last two)."""
    auc = bad_rate = approval = None
    profile = None
    for g in report.get("gates", []):
        ev = g.get("evidence", {})
        if g.get("gate") == "performance":
            hold = ev.get("metrics", {}).get("holdout", {})
            auc, bad_rate = hold.get("auc"), hold.get("bad_rate")
        if g.get("gate") == "stability":
            approval = ev.get("approval_rate")
            sp = ev.get("score_profile")
            if sp is not None:
                profile = ReferenceProfile.from_dict(sp)
    if profile is not None and not isinstance(profile.columns.get("score"), NumericProfile):
        profile = None
    return Baseline(
        source=f"gate run #{gate_run_id} (holdout)",
        auc=auc,
        approval_rate=approval,
        bad_rate=bad_rate,
        score_profile=profile,
    )
