"""The validation gates: each takes the prepared data of a run and its settings from the policy,
and returns a typed ``GateResult`` with its criteria (value, limit, pass or fail) and the evidence
a validation report draws from.

Conventions shared by every gate:

* ``y == 1`` is the event (default, fraud); scores are probabilities where higher is riskier;
  an applicant is **declined** when ``score >= threshold`` (the version's operating threshold) and
  **approved** otherwise. Fairness is judged on approvals, the favourable outcome.
* A criterion compares one number with one limit (``>=`` or ``<=``); a gate passes when all its
  criteria do. Warnings (a PSI between the warning and the failing band) never fail a gate.
* Statistics come from ``charter.stats`` (AUC, KS, PSI, calibration, DeLong, Hosmer-Lemeshow)
  and, for fairness, from fairlearn, as the issue asks; the tests pin both against scikit-learn,
  scipy and fairlearn.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from charter.entities import FeatureSpec, FeatureType
from charter.errors import InvalidArgument
from charter.stats import classification as cls
from charter.stats.experiments import delong_test
from charter.validation.policy import ProtectedAttribute

NUMERIC_TYPES = (FeatureType.NUMERIC, FeatureType.INTEGER)
ROC_POINTS = 101
HIST_BINS = 20


@dataclass(frozen=True)
class Criterion:
    name: str
    value: float | None
    limit: float
    op: str  # ">=" or "<="
    passed: bool
    dataset: str | None = None
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "dataset": self.dataset,
            "value": _jf(self.value),
            "limit": self.limit,
            "op": self.op,
            "passed": self.passed,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class GateResult:
    gate: str
    passed: bool
    summary: str
    criteria: tuple[Criterion, ...]
    warnings: tuple[str, ...] = ()
    evidence: Mapping[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> tuple[Criterion, ...]:
        return tuple(c for c in self.criteria if not c.passed)

    def to_dict(self) -> dict[str, Any]:
        return {
            "gate": self.gate,
            "passed": self.passed,
            "summary": self.summary,
            "criteria": [c.to_dict() for c in self.criteria],
            "warnings": list(self.warnings),
            "evidence": dict(self.evidence),
        }


def _jf(x: float | None) -> float | None:
    if x is None or not math.isfinite(float(x)):
        return None
    return float(x)


def criterion(
    name: str,
    value: float | None,
    limit: float,
    op: str,
    *,
    dataset: str | None = None,
    detail: str = "",
) -> Criterion:
    """``value op limit``; a missing or NaN value fails."""
    ok = False
    if value is not None and math.isfinite(value):
        ok = value >= limit if op == ">=" else value <= limit
    return Criterion(name, value, float(limit), op, bool(ok), dataset, detail)


def _result(
    gate: str, criteria: list[Criterion], warnings: list[str], evidence: dict[str, Any]
) -> GateResult:
    failed = [c for c in criteria if not c.passed]
    if failed:
        first = failed[0]
        where = f" on {first.dataset}" if first.dataset else ""
        shown = "n/a" if first.value is None else f"{first.value:.4g}"
        summary = (
            f"{len(failed)} of {len(criteria)} criteria failed; first: {first.name}{where} "
            f"{shown} (needs {first.op} {first.limit:g})"
        )
    else:
        summary = f"all {len(criteria)} criteria passed" + (
            f", {len(warnings)} warning(s)" if warnings else ""
        )
    return GateResult(gate, not failed, summary, tuple(criteria), tuple(warnings), evidence)


# ------------------------------------------------------------------------------------ context
Scorer = Callable[[pd.DataFrame], np.ndarray]


@dataclass
class Dataset:
    """One labelled data set of a run, scored by the candidate once."""

    name: str
    frame: pd.DataFrame
    y: np.ndarray
    scores: np.ndarray
    sha256: str

    @property
    def rows(self) -> int:
        return int(self.y.size)


@dataclass
class Context:
    features: tuple[FeatureSpec, ...]
    threshold: float
    score: Scorer  # the candidate on a frame of its features
    datasets: dict[str, Dataset]
    reference_profile: Any = None  # the version's stored ReferenceProfile, if any
    champion: Any = None  # (version number, Scorer) of the current champion, or None
    candidate_family: str = "other"  # "linear" | "tree" | "other"

    def dataset(self, name: str) -> Dataset:
        try:
            return self.datasets[name]
        except KeyError:
            raise InvalidArgument(
                f"the policy needs the {name} data set",
                field=name,
                remedy=f"pass --{name.replace('_', '-')} FILE",
            ) from None


# ------------------------------------------------------------------------------ data quality
def data_quality(ctx: Context, s: Mapping[str, Any]) -> GateResult:
    criteria: list[Criterion] = []
    tables: dict[str, list[dict[str, Any]]] = {}
    for ds in ctx.datasets.values():
        rows = []
        worst = {"missing": 0.0, "range": 0.0, "unseen": 0.0}
        for spec in ctx.features:
            col = ds.frame[spec.name]
            n = max(len(col), 1)
            missing = float(col.isna().sum()) / n
            out_of_range = unseen = 0.0
            present = col.dropna()
            if spec.type in NUMERIC_TYPES:
                vals = pd.to_numeric(present, errors="coerce").to_numpy(dtype=float)
                lo = -np.inf if spec.minimum is None else spec.minimum
                hi = np.inf if spec.maximum is None else spec.maximum
                out_of_range = float(np.sum((vals < lo) | (vals > hi) | np.isnan(vals))) / n
            elif spec.categories is not None:
                unseen = float((~present.astype(str).isin(spec.categories)).sum()) / n
            worst["missing"] = max(worst["missing"], missing)
            worst["range"] = max(worst["range"], out_of_range)
            worst["unseen"] = max(worst["unseen"], unseen)
            rows.append(
                {
                    "feature": spec.name,
                    "type": spec.type.value,
                    "nullable": spec.nullable,
                    "missing_rate": missing,
                    "out_of_range_rate": out_of_range,
                    "unseen_category_rate": unseen,
                }
            )
        tables[ds.name] = rows
        criteria += [
            criterion(
                "max missing rate", worst["missing"], s["max_missing_rate"], "<=", dataset=ds.name
            ),
            criterion(
                "max out-of-range rate",
                worst["range"],
                s["max_out_of_range_rate"],
                "<=",
                dataset=ds.name,
            ),
            criterion(
                "max unseen-category rate",
                worst["unseen"],
                s["max_unseen_category_rate"],
                "<=",
                dataset=ds.name,
            ),
        ]
    evidence = {
        "datasets": {
            n: {"rows": d.rows, "bad_rate": float(d.y.mean()), "sha256": d.sha256}
            for n, d in ctx.datasets.items()
        },
        "features": tables,
    }
    return _result("data_quality", criteria, [], evidence)


# ------------------------------------------------------------------------------- performance
def _roc_points(y: np.ndarray, s: np.ndarray) -> dict[str, list[float]]:
    """The ROC curve at up to ``ROC_POINTS`` thresholds (score quantiles), for charts."""
    thresholds = np.unique(np.quantile(s, np.linspace(0, 1, ROC_POINTS)))[::-1]
    bad = y == 1
    n_bad, n_good = max(int(bad.sum()), 1), max(int((~bad).sum()), 1)
    tpr = [0.0] + [float(np.sum(bad & (s >= t)) / n_bad) for t in thresholds] + [1.0]
    fpr = [0.0] + [float(np.sum(~bad & (s >= t)) / n_good) for t in thresholds] + [1.0]
    return {"fpr": fpr, "tpr": tpr}


def _histogram(y: np.ndarray, s: np.ndarray) -> dict[str, list[float]]:
    edges = np.linspace(0.0, 1.0, HIST_BINS + 1)
    good, _ = np.histogram(s[y == 0], bins=edges)
    bad, _ = np.histogram(s[y == 1], bins=edges)
    return {"edges": edges.tolist(), "good": good.tolist(), "bad": bad.tolist()}


def performance(ctx: Context, s: Mapping[str, Any]) -> GateResult:
    criteria: list[Criterion] = []
    warnings: list[str] = []
    metrics: dict[str, Any] = {}
    champion: dict[str, Any] = {}
    for name in s["datasets"]:
        ds = ctx.dataset(name)
        m = cls.classification_report(ds.y, ds.scores, ctx.threshold)
        metrics[name] = {
            **{k: v for k, v in m.to_dict().items() if k != "reliability"},
            "roc": _roc_points(ds.y, ds.scores),
            "histogram": _histogram(ds.y, ds.scores),
        }
        criteria.append(criterion("AUC", m.auc, s["min_auc"], ">=", dataset=name))
        criteria.append(criterion("KS", m.ks, s["min_ks"], ">=", dataset=name))
        if s["min_precision"] > 0:
            criteria.append(
                criterion("precision", m.precision, s["min_precision"], ">=", dataset=name)
            )
        if s["min_recall"] > 0:
            criteria.append(criterion("recall", m.recall, s["min_recall"], ">=", dataset=name))
        if s["compare_champion"] and ctx.champion is not None:
            number, score = ctx.champion
            champ_scores = score(ds.frame)
            r = delong_test(ds.y, champ_scores, ds.scores)
            champion[name] = {"version": number, **r.to_dict()}
            criteria.append(
                criterion(
                    "AUC minus champion's",
                    r.difference,
                    -s["max_auc_drop_vs_champion"],
                    ">=",
                    dataset=name,
                    detail=f"champion v{number} AUC {r.auc_a:.4f}, DeLong p {r.p_value:.3g}",
                )
            )
            if s["require_significant_improvement"]:
                better = r.difference > 0 and r.p_value < s["alpha"]
                criteria.append(
                    Criterion(
                        "significant improvement over champion",
                        r.p_value,
                        s["alpha"],
                        "<=",
                        better,
                        name,
                        "DeLong two-sided p-value, with a positive difference",
                    )
                )
    if s["compare_champion"] and ctx.champion is None:
        warnings.append("no champion to compare with (first version in service?)")
    evidence = {"threshold": ctx.threshold, "metrics": metrics, "champion": champion}
    return _result("performance", criteria, warnings, evidence)


# --------------------------------------------------------------------------------- stability
def stability(ctx: Context, s: Mapping[str, Any]) -> GateResult:
    from charter.stats.compare import compare
    from charter.stats.sketches import build_profile

    oot = ctx.dataset("out_of_time")
    names = [f.name for f in ctx.features]
    numeric = [f.name for f in ctx.features if f.type in NUMERIC_TYPES]
    categorical = [f.name for f in ctx.features if f.name not in numeric]
    profile = ctx.reference_profile
    reference = "the version's training profile"
    if profile is None or not set(names) <= set(profile.columns):
        train = ctx.datasets.get("train")
        if train is None:
            raise InvalidArgument(
                "the stability gate needs the training reference: this version has no stored "
                "profile of its features",
                field="train",
                remedy="pass --train FILE (the training data)",
            )
        profile = build_profile(
            train.frame[names], numeric=numeric, categorical=categorical, bins=s["bins"]
        )
        reference = "the train data set"
    report = compare(profile, profile.accumulator().update(oot.frame[names]))
    criteria: list[Criterion] = []
    warnings: list[str] = []
    rows = []
    for f in report.features:
        if f.feature not in names:
            continue
        criteria.append(
            criterion(f"PSI {f.feature}", f.psi, s["max_feature_psi"], "<=", dataset="out_of_time")
        )
        if s["warn_feature_psi"] < f.psi <= s["max_feature_psi"]:
            warnings.append(f"{f.feature}: PSI {f.psi:.3f} above {s['warn_feature_psi']:g}")
        rows.append(
            {
                "feature": f.feature,
                "kind": f.kind,
                "psi": _jf(f.psi),
                "bins": list(f.bins),
                "reference_share": list(f.reference_share),
                "current_share": list(f.current_share),
            }
        )
    # The score is judged out of sample: holdout (in time) against out-of-time. Training scores
    # of a flexible model are fitted to their own labels, so their PSI against any new data
    # mixes overfitting with instability; it is reported, and warned about, not judged.
    base = ctx.dataset("holdout")
    score_psi = cls.score_band_psi(base.scores, oot.scores, s["bins"])
    criteria.append(
        criterion("PSI score", score_psi, s["max_score_psi"], "<=", dataset="out_of_time")
    )
    if s["warn_score_psi"] < score_psi <= s["max_score_psi"]:
        warnings.append(f"score: PSI {score_psi:.3f} above {s['warn_score_psi']:g}")
    edges = np.linspace(0, 1, HIST_BINS + 1)
    histogram = {"edges": edges.tolist()}
    train_psi = None
    train = ctx.datasets.get("train")
    if train is not None:
        train_psi = cls.score_band_psi(train.scores, oot.scores, s["bins"])
        histogram["train"] = np.histogram(train.scores, edges)[0].tolist()
        if train_psi > s["max_score_psi"]:
            warnings.append(
                f"score: PSI train -> out-of-time {train_psi:.3f} (holdout -> out-of-time "
                f"{score_psi:.3f}): training scores differ from out-of-sample ones (overfitting?)"
            )
    histogram["holdout"] = np.histogram(base.scores, edges)[0].tolist()
    histogram["out_of_time"] = np.histogram(oot.scores, edges)[0].tolist()
    # The monitoring baseline: the holdout score's quantile profile and approval rate, so that
    # prediction drift in production is measured against the validated, out-of-sample scores.
    score_profile = build_profile(
        {"score": np.asarray(base.scores, dtype=np.float64)},
        numeric=["score"],
        bins=s["bins"],
        fine_bins=s["bins"] * 10,
    )
    evidence = {
        "feature_reference": reference,
        "score_reference": base.name,
        "score_profile": score_profile.to_dict(),
        "approval_rate": float(np.mean(np.asarray(base.scores) < ctx.threshold)),
        "features": rows,
        "score_psi": score_psi,
        "score_psi_train": train_psi,
        "score_histogram": histogram,
    }
    return _result("stability", criteria, warnings, evidence)


# ---------------------------------------------------------------------------------- fairness
def protected_groups(
    frame: pd.DataFrame, attr: ProtectedAttribute, where: str = "policy.gates.fairness.attributes"
) -> pd.Series:
    """The group of every row for one protected attribute (missing stays missing); errors name
    the field ``where.<attribute>...`` of the policy or plan that defined it."""
    if attr.column not in frame.columns:
        raise InvalidArgument(
            f"protected attribute {attr.name!r} needs the column {attr.column!r}, which the data "
            "does not have",
            field=f"{where}.{attr.name}.column",
            remedy="add the column to the data, or point the attribute at another column",
        )
    col = frame[attr.column]
    if attr.bins:
        vals = pd.to_numeric(col, errors="coerce").to_numpy(dtype=float)
        edges = list(attr.bins)
        labels = [f"<{edges[0]:g}"]
        labels += [f"{lo:g}-{hi:g}" for lo, hi in itertools.pairwise(edges)]
        labels += [f"{edges[-1]:g}+"]
        idx = np.searchsorted(np.asarray(edges), vals, side="right")
        out = pd.Series(np.asarray(labels, dtype=object)[idx], index=frame.index)
        return out.where(~np.isnan(vals))
    text = col.astype(str).where(col.notna())
    if attr.split is not None:
        return text.str.split(attr.split, n=1).str[0].str.strip().str.lower()
    if attr.mapping is not None:
        unknown = sorted(set(text.dropna()) - set(attr.mapping))
        if unknown:
            raise InvalidArgument(
                f"protected attribute {attr.name!r}: values {unknown[:5]} have no group in its map",
                field=f"{where}.{attr.name}.map",
                remedy="map every value of the column to a group",
            )
        return text.map(attr.mapping)
    return text


def _rate(num: np.ndarray, den: np.ndarray) -> float:
    return float(num.sum() / den.sum()) if den.sum() else float("nan")


def fairness(
    ctx: Context, s: Mapping[str, Any], attributes: Sequence[ProtectedAttribute]
) -> GateResult:
    from fairlearn.metrics import (
        demographic_parity_difference,
        demographic_parity_ratio,
        equalized_odds_difference,
    )

    ds = ctx.dataset(s["dataset"])
    approved = (ds.scores < ctx.threshold).astype(int)
    good = 1 - ds.y  # the favourable truth: the applicant repaid
    criteria: list[Criterion] = []
    warnings: list[str] = []
    out: dict[str, Any] = {}
    for attr in attributes:
        groups = protected_groups(ds.frame, attr)
        sizes = groups.value_counts()
        judged = sizes[sizes >= s["min_group_size"]].index
        mask = groups.isin(judged).to_numpy()
        table: list[dict[str, Any]] = []
        for g in sorted(sizes.index, key=str):
            m = (groups == g).to_numpy()
            table.append(
                {
                    "group": str(g),
                    "n": int(m.sum()),
                    "judged": bool(g in judged),
                    "approval_rate": _rate(approved[m], np.ones(int(m.sum()))),
                    "bad_rate": float(ds.y[m].mean()),
                    "n_bad": int(ds.y[m].sum()),
                    "approval_rate_good": _rate(approved[m] * good[m], good[m]),
                    "approval_rate_bad": _rate(approved[m] * ds.y[m], ds.y[m]),
                }
            )
        small = [t["group"] for t in table if not t["judged"]]
        if small:
            warnings.append(
                f"{attr.name}: groups {small} have fewer than {s['min_group_size']} rows; "
                "reported, not judged"
            )
        entry: dict[str, Any] = {"column": attr.column, "groups": table}
        if len(judged) < 2:
            warnings.append(f"{attr.name}: fewer than two groups large enough to compare")
            out[attr.name] = entry
            continue
        sf = groups[mask].astype(str).to_numpy()
        yt, yp = good[mask], approved[mask]
        dpd = float(demographic_parity_difference(yt, yp, sensitive_features=sf))
        dir_ = float(demographic_parity_ratio(yt, yp, sensitive_features=sf))
        need = s["min_group_outcomes"]
        with_outcomes = [
            str(t["group"])
            for t in table
            if t["judged"] and min(t["n_bad"], t["n"] - t["n_bad"]) >= need
        ]
        eod: float | None = None
        if len(with_outcomes) >= 2:
            m2 = groups.astype(str).isin(with_outcomes).to_numpy()
            eod = float(
                equalized_odds_difference(
                    good[m2], approved[m2], sensitive_features=groups[m2].astype(str).to_numpy()
                )
            )
        else:
            warnings.append(
                f"{attr.name}: fewer than two groups with {need} bads and {need} goods; "
                "equalized odds reported by group, not judged"
            )
        entry.update(
            {
                "demographic_parity_difference": dpd,
                "equalized_odds_difference": eod,
                "disparate_impact_ratio": dir_,
            }
        )
        out[attr.name] = entry
        criteria += [
            criterion(
                f"{attr.name} demographic parity difference",
                dpd,
                s["max_demographic_parity_difference"],
                "<=",
                dataset=ds.name,
            ),
            criterion(
                f"{attr.name} disparate impact ratio (four-fifths rule)",
                dir_,
                s["min_disparate_impact_ratio"],
                ">=",
                dataset=ds.name,
            ),
        ]
        if eod is not None:
            criteria.insert(
                len(criteria) - 1,
                criterion(
                    f"{attr.name} equalized odds difference",
                    eod,
                    s["max_equalized_odds_difference"],
                    "<=",
                    dataset=ds.name,
                ),
            )
    return _result("fairness", criteria, warnings, {"dataset": ds.name, "attributes": out})


# ------------------------------------------------------------------------------- calibration
def calibration(ctx: Context, s: Mapping[str, Any]) -> GateResult:
    ds = ctx.dataset(s["dataset"])
    table = cls.reliability_table(ds.y, ds.scores, n_bins=s["bins"])
    ece = table.ece
    hl = cls.hosmer_lemeshow(ds.y, ds.scores, n_groups=s["bins"])
    criteria = [
        criterion("expected calibration error", ece, s["max_ece"], "<=", dataset=ds.name),
        criterion(
            "Hosmer-Lemeshow p-value", hl.p_value, s["min_hosmer_lemeshow_p"], ">=", dataset=ds.name
        ),
    ]
    evidence = {
        "dataset": ds.name,
        "reliability": table.to_dict(),
        "ece": ece,
        "brier": cls.brier_score(ds.y, ds.scores),
        "hosmer_lemeshow": {
            "statistic": _jf(hl.statistic),
            "df": int(hl.df),
            "p_value": _jf(hl.p_value),
        },
    }
    return _result("calibration", criteria, [], evidence)


# ------------------------------------------------------------------------------- sensitivity
def sensitivity(ctx: Context, s: Mapping[str, Any]) -> GateResult:
    ds = ctx.dataset(s["dataset"])
    base = ds.scores
    declined = base >= ctx.threshold
    criteria: list[Criterion] = []
    warnings: list[str] = []
    shifts_out = []
    top = max(s["shifts"])
    for spec in ctx.features:
        if spec.type not in NUMERIC_TYPES:
            continue
        row: dict[str, Any] = {"feature": spec.name, "shifts": []}
        worst_change = worst_flip = 0.0
        for shift in s["shifts"]:
            for sign in (-1, 1):
                frame = ds.frame.copy()
                frame[spec.name] = frame[spec.name].astype(float) * (1 + sign * shift)
                moved = ctx.score(frame)
                change = np.abs(moved - base)
                flips = float(np.mean((moved >= ctx.threshold) != declined))
                row["shifts"].append(
                    {
                        "shift": sign * shift,
                        "mean_abs_change": float(change.mean()),
                        "max_abs_change": float(change.max()),
                        "mean_change": float((moved - base).mean()),
                        "decision_flip_rate": flips,
                    }
                )
                if shift == top:
                    worst_change = max(worst_change, float(change.mean()))
                    worst_flip = max(worst_flip, flips)
        shifts_out.append(row)
        criteria.append(
            criterion(
                f"{spec.name} mean |score change| at +/-{top:.0%}",
                worst_change,
                s["max_mean_abs_change"],
                "<=",
                dataset=ds.name,
            )
        )
        criteria.append(
            criterion(
                f"{spec.name} decision flip rate at +/-{top:.0%}",
                worst_flip,
                s["max_decision_flip_rate"],
                "<=",
                dataset=ds.name,
            )
        )
    missing_out = []
    for spec in ctx.features:
        frame = ds.frame.copy()
        frame[spec.name] = np.nan if spec.type in NUMERIC_TYPES else None
        try:
            moved = ctx.score(frame)
            result: dict[str, Any] = {
                "feature": spec.name,
                "nullable": spec.nullable,
                "scores": bool(np.all(np.isfinite(moved))),
                "mean_abs_change": float(np.nanmean(np.abs(moved - base))),
                "error": None,
            }
        except Exception as e:  # the behaviour under test: how the model fails on a missing value
            result = {
                "feature": spec.name,
                "nullable": spec.nullable,
                "scores": False,
                "mean_abs_change": None,
                "error": f"{type(e).__name__}: {str(e).splitlines()[0][:200]}",
            }
        missing_out.append(result)
        must = s["missing"] == "must_score" or (
            s["missing"] == "nullable_must_score" and spec.nullable
        )
        if must:
            criteria.append(
                Criterion(
                    f"{spec.name} scores when missing",
                    1.0 if result["scores"] else 0.0,
                    1.0,
                    ">=",
                    bool(result["scores"]),
                    ds.name,
                    result["error"] or "",
                )
            )
        elif not result["scores"]:
            warnings.append(
                f"{spec.name}: a missing value is not scored ({result['error']}); the serving "
                "schema rejects it at the boundary"
                if not spec.nullable
                else f"{spec.name}: a missing value is not scored"
            )
    evidence = {"dataset": ds.name, "shifts": shifts_out, "missing": missing_out}
    return _result("sensitivity", criteria, warnings, evidence)


# --------------------------------------------------------------------------------- benchmark
def benchmark_model(kind: str, features: Sequence[FeatureSpec], seed: int) -> Any:
    """A simple, transparent benchmark: a regularised logistic regression or gradient boosting."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

    numeric = [f.name for f in features if f.type in NUMERIC_TYPES]
    other = [f.name for f in features if f.type not in NUMERIC_TYPES]
    if kind == "logistic_regression":
        pre = ColumnTransformer(
            [
                ("num", Pipeline([("imp", SimpleImputer()), ("sc", StandardScaler())]), numeric),
                (
                    "cat",
                    Pipeline(
                        [
                            ("imp", SimpleImputer(strategy="most_frequent")),
                            ("oh", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
                        ]
                    ),
                    other,
                ),
            ]
        )
        return Pipeline(
            [("prep", pre), ("lr", LogisticRegression(C=1.0, max_iter=2000, random_state=seed))]
        )
    pre = ColumnTransformer(
        [
            ("num", "passthrough", numeric),
            (
                "cat",
                OrdinalEncoder(
                    handle_unknown="use_encoded_value",
                    unknown_value=np.nan,
                    encoded_missing_value=np.nan,
                ),
                other,
            ),
        ]
    )
    cat_mask = [False] * len(numeric) + [True] * len(other)
    return Pipeline(
        [
            ("prep", pre),
            (
                "gb",
                HistGradientBoostingClassifier(
                    max_iter=200,
                    learning_rate=0.05,
                    categorical_features=cat_mask if other else None,
                    random_state=seed,
                ),
            ),
        ]
    )


def benchmark(ctx: Context, s: Mapping[str, Any]) -> GateResult:
    train = ctx.dataset("train")
    ds = ctx.dataset(s["dataset"])
    kind = s["model"]
    if kind == "auto":
        kind = "gradient_boosting" if ctx.candidate_family == "linear" else "logistic_regression"
    names = [f.name for f in ctx.features]
    model = benchmark_model(kind, ctx.features, s["seed"])
    # One thread (also set by the runner): OpenMP's default team on a busy 2-core machine makes
    # this small fit about 5x slower.
    with threadpool_limits(limits=1):
        model.fit(_as_text(train.frame[names], ctx.features), train.y)
        bench = np.asarray(
            model.predict_proba(_as_text(ds.frame[names], ctx.features))[:, 1], dtype=float
        )
    r = delong_test(ds.y, bench, ds.scores)
    criteria = [
        criterion(
            "AUC minus benchmark's",
            r.difference,
            -s["max_auc_shortfall"],
            ">=",
            dataset=ds.name,
            detail=f"{kind.replace('_', ' ')} AUC {r.auc_a:.4f}, DeLong p {r.p_value:.3g}",
        )
    ]
    evidence = {
        "dataset": ds.name,
        "benchmark": kind,
        "candidate_auc": r.auc_b,
        "benchmark_auc": r.auc_a,
        "delong": r.to_dict(),
        "trained_on": {"rows": train.rows, "sha256": train.sha256},
    }
    return _result("benchmark", criteria, [], evidence)


def _as_text(frame: pd.DataFrame, features: Sequence[FeatureSpec]) -> pd.DataFrame:
    """Categorical inputs as object text so the encoders see one type (NaN stays missing)."""
    out = frame.copy()
    for f in features:
        if f.type not in NUMERIC_TYPES:
            col = out[f.name]
            out[f.name] = (
                col.astype(object)
                .where(col.notna(), np.nan)
                .map(lambda v: v if isinstance(v, float) else str(v))
            )
    return out
