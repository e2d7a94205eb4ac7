"""Compiled scoring functions: compile a model version once at load, then score rows fast.

:func:`compile_model` turns a fitted model into a :class:`CompiledScorer`:

* :class:`LinearScorer` (``kind == "linear"``) for a binary scikit-learn ``LogisticRegression``,
  alone or at the end of a ``Pipeline`` whose preprocessing is one of: nothing, ``SimpleImputer``
  / ``StandardScaler`` steps over all inputs, or a ``ColumnTransformer`` whose parts are
  ``"passthrough"``, ``StandardScaler``, ``SimpleImputer`` (or a ``Pipeline`` of those) on numeric
  columns and ``OneHotEncoder`` (optionally after one ``SimpleImputer``) on categorical columns.
  The whole model is folded into plain Python numbers at compile time: per numeric input a weight
  and an offset (``w_j / scale_j`` and the centring term), per categorical input a dict level ->
  weight, the imputed values' terms, and the intercept. Scoring a row is ``sigmoid(intercept +
  sum of terms)``: no pandas, no numpy, no scikit-learn on the request path.
* :class:`NativeScorer` (``kind == "native"``) for XGBoost (``Booster``, ``XGBClassifier``) and
  LightGBM (``Booster``, ``LGBMClassifier``) binary models on numeric inputs: the library's own
  predictor on a 2-D float64 array in the model's feature order.
* :class:`GenericScorer` (``kind == "generic"``) for anything else with ``predict_proba``: a
  DataFrame with the model's columns is built per call. Slow, but exact by construction; it says
  why the model was not compiled (``fallback_reason``). It explains a score only when given a
  background (see Contributions below), else contributions are None.

Anything the compiler does not recognise exactly (another transformer, an encoder with infrequent
categories, an imputer with an indicator, a categorical model in XGBoost ...) falls back to the
generic scorer; the compiler never guesses.

Conventions (pinned by ``tests/unit/test_compiled.py``):

* **Probability.** Every scorer returns P(y = 1), with y = 1 the adverse outcome (bad, default,
  fraud): ``predict_proba(X)[:, 1]`` of a model whose ``classes_`` are ``[0, 1]``. Models with
  other classes are refused rather than guessed at.
* **Missing values.** ``None``, ``float('nan')`` and ``pandas.NA`` all mean missing. A model with
  an imputer for the input uses the imputer's fitted statistic; without one, a missing numeric
  input is refused (``InvalidArgument`` naming the feature) as scikit-learn refuses NaN, and a
  missing categorical input is treated as an unknown level. Note a scikit-learn quirk the compiled
  scorer does not reproduce: in a one-row DataFrame a ``None`` in a text column is not seen as
  missing by ``SimpleImputer`` (the column has object dtype) and is encoded as an unknown level;
  the compiled scorer imputes it, as the same pipeline does for a NaN or for a batch.
* **Unknown categories** contribute 0, as ``OneHotEncoder(handle_unknown="ignore")`` encodes them
  as all zeros; with ``handle_unknown="error"`` they are refused. A level dropped by the
  encoder's ``drop=`` option is known and contributes 0.
* **Contributions** are in log-odds, per original feature, against a documented baseline, with
  ``baseline_logit + sum(contributions) == logit`` (see :class:`Explanation`).

  - Linear: the model's logit is ``intercept + sum_j t_j(x_j)`` where ``t_j`` is feature j's term.
    The contribution of j is ``t_j(x_j) - b_j``. With ``background`` (a sample of the training
    data), ``b_j`` is the mean of ``t_j`` over the background rows (same imputation, unknown
    levels 0), so ``baseline_logit = intercept + sum_j b_j`` is the mean logit over the
    background. ``background`` may also be the version's reference profile
    (:class:`~charter.stats.sketches.ReferenceProfile`): ``t_j`` is linear in a numeric x, so its
    mean is ``t_j`` at the profiled mean (finite values) weighted with the missing values' term;
    for a categorical input the level counts give the same mean exactly (up to rounding); the
    profile's non-finite values are left out. Without background, the baseline is known only
    when every input is numeric and ends in a centring ``StandardScaler``: then ``b_j = 0`` and
    the contribution is ``w_j / scale_j * (x_j - mean_j)`` with ``mean_j =
    StandardScaler.mean_`` (the training mean as the scaler saw it); otherwise there is no
    baseline and ``explain`` returns None. Pass
    ``background`` to explain models with categorical inputs.
  - Native: the library's exact path-dependent tree SHAP values (``pred_contribs`` /
    ``pred_contrib``), computed from a table built at load (:mod:`charter.serving.tree_table`)
    when the model fits one; the baseline is the library's bias term (the expected margin), the
    same for every row.
  - Generic, with a background (``compile_model(..., background=...)``; at most
    ``background_size`` rows of it, a seeded sample of a DataFrame or a sample drawn from a
    profile by :func:`charter.explain.shapley.background_from_profile`): interventional Shapley
    values of the log-odds against that background, the same game as the linear case (for a
    linear model they are the same numbers); the baseline is the mean log-odds over the
    background. A scikit-learn tree model on numeric inputs (``DecisionTree``, ``ExtraTree``,
    ``RandomForest``, ``ExtraTrees``, ``GradientBoosting``, ``HistGradientBoosting`` without
    categorical features) is explained exactly by ``shap.TreeExplainer`` when shap is installed
    (``method`` ``"tree_shap_interventional"``; checked at compile time to add up to the model's
    own output to 1e-6); forests and single trees output probabilities, whose attributions are
    mapped to log-odds by one factor per row (``"tree_shap_interventional_rescaled"``, see
    :class:`_TreeExplainer`). Any other model gets the permutation-sampling estimate of
    :func:`charter.explain.shapley.sampling_shapley` with ``n_permutations`` orderings and a
    fixed seed (``"permutation_sampling"``; deterministic, efficient exactly, with standard
    errors). Probabilities are clipped to ``[1e-12, 1 - 1e-12]`` before taking log-odds.
    Its cost: one model call on at most ``n_permutations * background_size * (d - 1)`` rows per
    explanation (``benchmarks/explain_bench.py``); ``explainer="none"`` switches it off.
* **Reason codes** (:func:`reason_codes`) are the features with the largest positive
  contributions (pushing toward decline), at most ``top``, ties broken by feature name.
"""

from __future__ import annotations

import json
import math
import numbers
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from charter.errors import InvalidArgument, OptionalDependencyMissing, require_extra
from charter.explain.shapley import background_from_profile, sample_background, shapley_values
from charter.serving.tree_table import (
    TableUnavailable,
    TreeTable,
    check_against,
    lightgbm_table,
    xgboost_table,
)
from charter.stats.sketches import CategoricalProfile, NumericProfile, ReferenceProfile

__all__ = [
    "CategoricalTerm",
    "CompiledScorer",
    "Explanation",
    "GenericScorer",
    "LinearScorer",
    "NativeScorer",
    "NumericTerm",
    "ReasonCode",
    "compile_model",
    "reason_codes",
]

_NA = pd.NA
_FLOAT = float
REQUEST_PERMUTATIONS = 8
"""Orderings the generic scorer's sampling fallback draws per explanation (4 antithetic pairs)."""
REQUEST_BACKGROUND_SIZE = 16
"""Background rows a generic scorer keeps for its explanations."""
_INT = int


class _Unsupported(Exception):
    """The model has no exact compiled form; the message says why (internal)."""


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Explanation:
    """Log-odds attribution of one score.

    ``logit == baseline_logit + sum(contributions.values())`` up to floating-point rounding;
    ``logit`` is computed as that sum. ``method`` says how the contributions were computed
    (see the module docstring): ``"exact"`` (linear), ``"tree_shap"`` (XGBoost/LightGBM),
    ``"tree_shap_interventional"`` and ``"tree_shap_interventional_rescaled"`` (scikit-learn
    trees through shap) or ``"permutation_sampling"`` (any other model; ``std_errors`` then
    holds each contribution's Monte Carlo standard error, else it is None).
    """

    contributions: Mapping[str, float]
    baseline_logit: float
    logit: float
    method: str = "exact"
    std_errors: Mapping[str, float] | None = None


@dataclass(frozen=True)
class ReasonCode:
    """One reason a score was high: the feature, its log-odds contribution and a sentence."""

    feature: str
    contribution: float
    text: str


def reason_codes(
    contributions: Mapping[str, float],
    *,
    top: int = 4,
    catalogue: Mapping[str, str] | None = None,
) -> list[ReasonCode]:
    """The features that pushed the score toward "bad" the most.

    Only strictly positive contributions are listed, largest first, ties broken by feature name
    (so the result is deterministic), at most ``top`` of them. The text comes from
    ``catalogue[feature]`` when present, else ``"<feature> increased the risk"``.
    """
    if isinstance(top, bool) or not isinstance(top, int) or top < 0:
        raise InvalidArgument(
            f"top must be a non-negative integer, got {top!r}",
            field="top",
            remedy="pass top=4 (the default) or another count",
        )
    if not isinstance(contributions, Mapping):
        raise InvalidArgument(
            "contributions must be a mapping feature -> log-odds, "
            f"got {type(contributions).__name__}",
            field="contributions",
            remedy="pass scorer.contributions(row)",
        )
    # (minus the value, name): sorting these puts the largest first, ties by name
    positive: list[tuple[float, str]] = []
    for feature, raw in contributions.items():
        if type(raw) is float and raw - raw == 0.0:  # finite float: the common case
            value = raw
        else:
            value = _finite_contribution(feature, raw)
        if value > 0.0:
            positive.append((-value, feature if type(feature) is str else str(feature)))
    positive.sort()
    texts = catalogue or {}
    return [
        ReasonCode(feature, -minus, texts.get(feature) or f"{feature} increased the risk")
        for minus, feature in positive[:top]
    ]


def _finite_contribution(feature: object, raw: object) -> float:
    if isinstance(raw, bool) or not isinstance(raw, numbers.Real):
        raise InvalidArgument(
            f"the contribution of {feature!r} must be a number, got {type(raw).__name__}",
            field=str(feature),
            remedy="pass the log-odds contributions a scorer returned",
        )
    value = float(raw)
    if not math.isfinite(value):
        raise InvalidArgument(
            f"the contribution of {feature!r} is not finite ({value})",
            field=str(feature),
            remedy="pass the log-odds contributions a scorer returned",
        )
    return value


# --------------------------------------------------------------------------------------------
# Small helpers shared by the scorers
# --------------------------------------------------------------------------------------------


def _is_missing(value: Any) -> bool:
    if value is None or value is _NA:
        return True
    if isinstance(value, float | np.floating):
        return bool(value != value)
    return False


def _number(name: str, value: Any) -> float:
    """``value`` as a float, NaN when missing; anything else non-numeric or infinite is refused."""
    if type(value) is float and value - value == 0.0:  # the common case: a finite float
        return value
    if _is_missing(value):
        return math.nan
    if isinstance(value, str | bytes) or not isinstance(value, numbers.Real | np.bool_):
        raise InvalidArgument(
            f"feature {name!r} must be a number or null, got {type(value).__name__} {value!r:.60}",
            field=name,
            remedy="send a finite number, or null for a missing value",
        )
    x = float(value)
    if not math.isfinite(x):
        raise InvalidArgument(
            f"feature {name!r} must be finite, got {x}",
            field=name,
            remedy="send a finite number, or null for a missing value",
        )
    return x


def _absent(name: str) -> InvalidArgument:
    return InvalidArgument(
        f"feature {name!r} is missing from the row",
        field=name,
        remedy="send every feature of the version's schema (null for a missing value)",
    )


def _row_error(row: object, name: str, exc: Exception) -> InvalidArgument:
    if not isinstance(row, Mapping):
        return InvalidArgument(
            f"a row must be a mapping feature -> value, got {type(row).__name__}",
            field="row",
            remedy="send a JSON object with one entry per feature",
        )
    if name not in row:
        return _absent(name)
    return InvalidArgument(f"cannot read feature {name!r}: {exc}", field=name)


def _get(row: Mapping[str, Any], name: str) -> Any:
    try:
        return row[name]
    except (KeyError, TypeError, IndexError) as exc:
        raise _row_error(row, name, exc) from None


def _check_rows(rows: object) -> Sequence[Mapping[str, Any]]:
    if isinstance(rows, Mapping | str | bytes) or not isinstance(rows, Sequence):
        raise InvalidArgument(
            f"rows must be a sequence of mappings, got {type(rows).__name__}",
            field="rows",
            remedy="pass a list of rows (one mapping feature -> value each)",
        )
    return rows


def _sigmoid(z: float) -> float:
    if z >= 0.0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def _check_feature_names(feature_names: Sequence[str]) -> tuple[str, ...]:
    if isinstance(feature_names, str) or not isinstance(feature_names, Sequence | np.ndarray):
        raise InvalidArgument(
            "feature_names must be a sequence of feature names",
            field="feature_names",
            remedy="pass the names of the version's features, in schema order",
        )
    names = tuple(feature_names)
    bad = [n for n in names if not isinstance(n, str) or not n]
    if not names or bad:
        raise InvalidArgument(
            f"feature_names must be non-empty strings, got {list(names)[:5]!r}",
            field="feature_names",
            remedy="pass the names of the version's features, in schema order",
        )
    if len(set(names)) != len(names):
        dupes = sorted({n for n in names if names.count(n) > 1})
        raise InvalidArgument(
            f"feature_names has duplicates: {dupes}",
            field="feature_names",
            remedy="name every feature once",
        )
    return names


def _check_positive_class(model: object) -> None:
    """Refuse models whose classes are not [0, 1]: which class is "bad" must not be guessed."""
    classes = getattr(model, "classes_", None)
    if classes is None:
        raise InvalidArgument(
            f"{type(model).__name__} has no classes_, so the positive class is unknown",
            field="model",
            remedy="pass a fitted binary classifier trained on y in {0, 1} (1 = bad)",
        )
    arr = np.asarray(classes)
    if arr.shape != (2,) or arr.dtype.kind not in "biuf" or arr[0] != 0 or arr[1] != 1:
        raise InvalidArgument(
            f"{type(model).__name__} has classes {arr.tolist()!r}; Charter scores P(y = 1) and "
            "needs exactly the classes [0, 1] with 1 the adverse outcome (bad, default, fraud)",
            field="model",
            remedy="refit with the target coded 0/1, 1 for the adverse outcome",
        )


def _model_columns(names: tuple[str, ...], columns: Sequence[str]) -> tuple[str, ...]:
    """The model's own column order, each checked against the version's feature names."""
    known = set(names)
    for column in columns:
        if column not in known:
            raise InvalidArgument(
                f"the model uses the column {column!r}, which is not among feature_names",
                field=str(column),
                remedy="pass feature_names that include every column the model was trained on",
            )
    return tuple(str(c) for c in columns)


# --------------------------------------------------------------------------------------------
# The scorer interface
# --------------------------------------------------------------------------------------------


def _reason_dicts(contributions: Mapping[str, float], top: int) -> list[dict[str, Any]]:
    return [
        {"feature": r.feature, "contribution": r.contribution, "text": r.text}
        for r in reason_codes(contributions, top=top)
    ]


class CompiledScorer(ABC):
    """A scoring function compiled once per model version and reused for every request.

    ``feature_names`` are the version's features (what a row should carry); ``used_features``
    the ones the model reads, in ``feature_names`` order for linear scorers and the model's own
    order otherwise. ``kind`` is ``"linear"``, ``"native"`` or ``"generic"``.
    """

    feature_names: tuple[str, ...]
    used_features: tuple[str, ...]
    kind: str

    @abstractmethod
    def score_one(self, row: Mapping[str, Any]) -> float:
        """P(y = 1) for one row (a mapping feature -> value)."""

    @abstractmethod
    def score_many(self, rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """P(y = 1) for each row, as a float64 array."""

    @abstractmethod
    def explain(self, row: Mapping[str, Any]) -> Explanation | None:
        """Exact log-odds attribution of the row's score, or None if this scorer cannot."""

    def contributions(self, row: Mapping[str, Any]) -> dict[str, float] | None:
        """Per-feature log-odds contributions (see :meth:`explain`), or None."""
        explanation = self.explain(row)
        return None if explanation is None else dict(explanation.contributions)

    def reasons(self, row: Mapping[str, Any], top: int = 4) -> list[dict[str, Any]]:
        """The decision's reason codes as the decision log stores them (``feature``,
        ``contribution``, ``text``): ``reason_codes`` of the contributions; [] when this scorer
        has none. The service, replays and the monitoring replay all call this."""
        contributions = self.contributions(row)
        return [] if contributions is None else _reason_dicts(contributions, top)

    def score_and_reasons(
        self, row: Mapping[str, Any], top: int = 4
    ) -> tuple[float, list[dict[str, Any]]]:
        """``(score_one(row), reasons(row, top))``; scorers that can share the work override it."""
        return float(self.score_one(row)), self.reasons(row, top)


# --------------------------------------------------------------------------------------------
# Linear models and scorecards
# --------------------------------------------------------------------------------------------


class NumericTerm(NamedTuple):
    """A numeric input's log-odds term: ``weight * x + offset``, ``missing`` when x is missing.

    ``missing`` None means a missing value is refused. ``centered``: the model input derived from
    x has mean 0 over the training data (it ends in a centring ``StandardScaler``), so the term's
    training baseline is 0 without any background sample.
    """

    feature: str
    weight: float
    offset: float
    missing: float | None
    centered: bool


class CategoricalTerm(NamedTuple):
    """A categorical input's log-odds term: ``weights[level]``.

    An unknown level contributes 0, or is refused when ``strict``; ``missing`` is the term of a
    missing value (None: refused).
    """

    feature: str
    weights: dict[Any, float]
    missing: float | None
    strict: bool


class LinearScorer(CompiledScorer):
    """``sigmoid(intercept + sum of terms)`` in plain Python floats; exact contributions.

    Built by :func:`compile_model` from scikit-learn pipelines, or directly from terms (a
    scorecard is a set of categorical terms over binned inputs). ``baseline_source`` is
    ``"background"`` (a DataFrame sample), ``"profile"`` (a reference profile),
    ``"scaler_mean"`` or None (no baseline: ``explain`` returns None).
    """

    kind = "linear"

    def __init__(
        self,
        feature_names: Sequence[str],
        intercept: float,
        numeric: Sequence[NumericTerm],
        categorical: Sequence[CategoricalTerm],
        *,
        background: pd.DataFrame | ReferenceProfile | None = None,
    ) -> None:
        self.feature_names = _check_feature_names(feature_names)
        self.intercept = float(intercept)
        if not math.isfinite(self.intercept):
            raise InvalidArgument("the intercept is not finite", field="intercept")
        self._numeric = tuple(NumericTerm(*t) for t in numeric)
        self._categorical = tuple(CategoricalTerm(*t) for t in categorical)
        parts = {t.feature for t in self._numeric} | {t.feature for t in self._categorical}
        _model_columns(self.feature_names, sorted(parts))
        self.used_features = tuple(n for n in self.feature_names if n in parts)
        self.baselines: dict[str, float] | None
        self.baseline_source: str | None
        if isinstance(background, ReferenceProfile):
            self.baselines = self._profile_baselines(background)
            self.baseline_source = "profile"
        elif background is not None:
            self.baselines = self._background_baselines(background)
            self.baseline_source = "background"
        elif not self._categorical and all(t.centered for t in self._numeric):
            self.baselines = dict.fromkeys(self.used_features, 0.0)
            self.baseline_source = "scaler_mean"
        else:
            self.baselines = None
            self.baseline_source = None
        self.baseline_logit: float | None = (
            None
            if self.baselines is None
            else self.intercept + math.fsum(self.baselines[f] for f in self.used_features)
        )
        # contributions' fast path: one term per feature, in used_features order
        numeric_by = {t.feature: t for t in self._numeric}
        categorical_by = {t.feature: t for t in self._categorical}
        single = len(numeric_by) + len(categorical_by) == len(self.used_features)
        self._ordered: tuple[tuple[str, NumericTerm | None, CategoricalTerm | None], ...] | None
        self._ordered = (
            tuple((f, numeric_by.get(f), categorical_by.get(f)) for f in self.used_features)
            if single
            else None
        )
        self._reason_texts = {f: f"{f} increased the risk" for f in self.used_features}

    # The request path: no allocation beyond floats, one dict lookup per categorical input.
    def _logit(self, row: Mapping[str, Any]) -> float:
        z = self.intercept
        name = ""
        try:
            for term in self._numeric:
                name, w, b, _m, _c = term
                v = row[name]
                t = type(v)
                if t is _INT or (t is _FLOAT and v - v == 0.0):
                    z += w * v + b
                else:
                    z += self._numeric_term(term, v)
            for cterm in self._categorical:
                name = cterm[0]
                v = row[name]
                try:
                    z += cterm[1][v]
                except (KeyError, TypeError):
                    z += self._categorical_term(cterm, v)
        except (KeyError, TypeError, IndexError) as exc:
            raise _row_error(row, name, exc) from None
        return z

    @staticmethod
    def _numeric_term(term: NumericTerm, value: Any) -> float:
        t = type(value)
        if t is _INT or (t is _FLOAT and value - value == 0.0):
            return term.weight * value + term.offset
        x = _number(term.feature, value)
        if x != x:
            if term.missing is None:
                raise InvalidArgument(
                    f"feature {term.feature!r} is missing and the model has no imputer for it",
                    field=term.feature,
                    remedy="send a value for this feature",
                )
            return term.missing
        return term.weight * x + term.offset

    @staticmethod
    def _categorical_term(term: CategoricalTerm, value: Any) -> float:
        try:
            return term.weights[value]
        except (KeyError, TypeError):
            pass
        if _is_missing(value):
            if term.missing is None:
                raise InvalidArgument(
                    f"feature {term.feature!r} is missing and the model refuses unknown levels",
                    field=term.feature,
                    remedy="send one of the levels the model was trained on",
                )
            return term.missing
        try:
            return term.weights[value]
        except TypeError:
            raise InvalidArgument(
                f"feature {term.feature!r} must be a category label, got {type(value).__name__}",
                field=term.feature,
                remedy="send the level as a string",
            ) from None
        except KeyError:
            if term.strict:
                raise InvalidArgument(
                    f"feature {term.feature!r} has the unknown level {value!r:.60}",
                    field=term.feature,
                    remedy=f"send one of the {len(term.weights)} levels the model was trained on",
                ) from None
            return 0.0

    def score_one(self, row: Mapping[str, Any]) -> float:
        return _sigmoid(self._logit(row))

    def score_many(self, rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
        rows = _check_rows(rows)
        return np.fromiter(
            (_sigmoid(self._logit(r)) for r in rows), dtype=np.float64, count=len(rows)
        )

    def logit(self, row: Mapping[str, Any]) -> float:
        """The model's log-odds for the row."""
        return self._logit(row)

    def feature_term(self, feature: str, value: Any) -> float:
        """Feature ``feature``'s log-odds term at ``value`` (0.0 for a feature the model does
        not use); the logit is ``intercept`` plus the terms of every used feature."""
        total = 0.0
        for term in self._numeric:
            if term.feature == feature:
                total += self._numeric_term(term, value)
        for cterm in self._categorical:
            if cterm.feature == feature:
                total += self._categorical_term(cterm, value)
        return total

    def _terms(self, row: Mapping[str, Any]) -> tuple[dict[str, float], float]:
        """Per-feature terms and the logit, summed in the same order as :meth:`_logit`."""
        terms: dict[str, float] = {}
        z = self.intercept
        for term in self._numeric:
            t = self._numeric_term(term, _get(row, term.feature))
            z += t
            terms[term.feature] = terms.get(term.feature, 0.0) + t
        for cterm in self._categorical:
            t = self._categorical_term(cterm, _get(row, cterm.feature))
            z += t
            terms[cterm.feature] = terms.get(cterm.feature, 0.0) + t
        return terms, z

    def contributions(self, row: Mapping[str, Any]) -> dict[str, float] | None:
        """Per-feature log-odds contributions, equal to :meth:`explain`'s, computed inline
        (no Explanation, no intermediate dict) because the request path calls it every time."""
        base = self.baselines
        ordered = self._ordered
        if base is None or ordered is None:
            return super().contributions(row)
        out: dict[str, float] = {}
        name = ""
        try:
            for name, num, cat in ordered:
                v = row[name]
                if num is not None:
                    t = type(v)
                    if t is _INT or (t is _FLOAT and v - v == 0.0):
                        out[name] = (num[1] * v + num[2]) - base[name]
                    else:
                        out[name] = self._numeric_term(num, v) - base[name]
                elif cat is not None:
                    try:
                        out[name] = cat[1][v] - base[name]
                    except (KeyError, TypeError):
                        out[name] = self._categorical_term(cat, v) - base[name]
        except (KeyError, TypeError, IndexError) as exc:
            raise _row_error(row, name, exc) from None
        return out

    def score_and_reasons(
        self, row: Mapping[str, Any], top: int = 4
    ) -> tuple[float, list[dict[str, Any]]]:
        """``score_one`` and ``reasons`` in one pass over the terms: the logit is summed in
        :meth:`_logit`'s order (so the score is ``score_one``'s, bit for bit) and each
        contribution is the term minus its baseline, as :meth:`contributions` computes it. The
        request path calls this on every decision; a property test holds it to the two calls.
        The term loop repeats :meth:`_logit`'s inline on purpose: both are on the request path,
        and a shared generator of terms cost more than the rest of either."""
        base = self.baselines
        if base is None or self._ordered is None or type(top) is not int or top < 0:
            return super().score_and_reasons(row, top)  # (which also refuses a bad ``top``)
        z = self.intercept
        positive: list[tuple[float, str]] = []
        name = ""
        try:
            for term in self._numeric:
                name, w, b, _m, _c = term
                v = row[name]
                t = type(v)
                if t is _INT or (t is _FLOAT and v - v == 0.0):
                    x = w * v + b
                else:
                    x = self._numeric_term(term, v)
                z += x
                c = x - base[name]
                if c > 0.0 and c - c == 0.0:
                    positive.append((-c, name))
                elif c - c != 0.0:  # not finite: the general path says which and why
                    return super().score_and_reasons(row, top)
            for cterm in self._categorical:
                name = cterm[0]
                v = row[name]
                try:
                    x = cterm[1][v]
                except (KeyError, TypeError):
                    x = self._categorical_term(cterm, v)
                z += x
                c = x - base[name]
                if c > 0.0 and c - c == 0.0:
                    positive.append((-c, name))
                elif c - c != 0.0:
                    return super().score_and_reasons(row, top)
        except (KeyError, TypeError, IndexError) as exc:
            raise _row_error(row, name, exc) from None
        positive.sort()
        texts = self._reason_texts
        return _sigmoid(z), [
            {"feature": f, "contribution": -minus, "text": texts[f]} for minus, f in positive[:top]
        ]

    def explain(self, row: Mapping[str, Any]) -> Explanation | None:
        if self.baselines is None or self.baseline_logit is None:
            return None
        terms, _ = self._terms(row)
        contributions = {f: terms[f] - self.baselines[f] for f in self.used_features}
        logit = self.baseline_logit + math.fsum(contributions.values())
        return Explanation(contributions, self.baseline_logit, logit)

    def _background_baselines(self, background: pd.DataFrame) -> dict[str, float]:
        if not isinstance(background, pd.DataFrame) or len(background) == 0:
            raise InvalidArgument(
                "background must be a non-empty pandas DataFrame",
                field="background",
                remedy="pass a sample of the training data with the model's columns",
            )
        sums: dict[str, float] = {}
        n = len(background)
        for term in self._numeric:
            values = self._background_column(background, term.feature)
            mean = math.fsum(self._numeric_term(term, v) for v in values) / n
            sums[term.feature] = sums.get(term.feature, 0.0) + mean
        for cterm in self._categorical:
            values = self._background_column(background, cterm.feature)
            mean = math.fsum(self._categorical_term(cterm, v) for v in values) / n
            sums[cterm.feature] = sums.get(cterm.feature, 0.0) + mean
        return {f: sums[f] for f in self.used_features}

    def _profile_baselines(self, profile: ReferenceProfile) -> dict[str, float]:
        sums: dict[str, float] = {}
        for term in self._numeric:
            num = profile.columns.get(term.feature)
            if not isinstance(num, NumericProfile):
                raise self._profile_error(term.feature, "numeric")
            parts = [num.n * (term.weight * num.mean + term.offset)] if num.n else []
            if num.n_missing:
                parts.append(num.n_missing * self._profile_missing(term.feature, term.missing))
            sums[term.feature] = sums.get(term.feature, 0.0) + self._profile_mean(
                term.feature, parts, num.n + num.n_missing
            )
        for cterm in self._categorical:
            cat = profile.columns.get(cterm.feature)
            if not isinstance(cat, CategoricalProfile):
                raise self._profile_error(cterm.feature, "categorical")
            by_text = {str(level): w for level, w in cterm.weights.items()}
            parts = []
            for level, count in zip(cat.levels, cat.counts.tolist(), strict=True):
                weight = by_text.get(level)
                if weight is None:
                    weight = self._categorical_term(cterm, level)  # unknown: 0, or refused
                parts.append(int(count) * weight)
            if cat.n_missing:
                parts.append(cat.n_missing * self._profile_missing(cterm.feature, cterm.missing))
            sums[cterm.feature] = sums.get(cterm.feature, 0.0) + self._profile_mean(
                cterm.feature, parts, cat.n + cat.n_missing
            )
        return {f: sums[f] for f in self.used_features}

    @staticmethod
    def _profile_error(name: str, kind: str) -> InvalidArgument:
        return InvalidArgument(
            f"the reference profile has no {kind} column {name!r}",
            field=name,
            remedy="profile the training data with every column the model uses",
        )

    @staticmethod
    def _profile_missing(name: str, missing: float | None) -> float:
        if missing is None:
            raise InvalidArgument(
                f"the reference profile counts missing values of {name!r}, which the model "
                "cannot score",
                field=name,
                remedy="profile the data the model was trained on",
            )
        return missing

    @staticmethod
    def _profile_mean(name: str, parts: list[float], total: int) -> float:
        if total <= 0:
            raise InvalidArgument(
                f"the reference profile has no values of {name!r}",
                field=name,
                remedy="profile the data the model was trained on",
            )
        return math.fsum(parts) / total

    @staticmethod
    def _background_column(background: pd.DataFrame, name: str) -> list[Any]:
        if name not in background.columns:
            raise InvalidArgument(
                f"background has no column {name!r}",
                field=name,
                remedy="pass a sample of the training data with every column the model uses",
            )
        return list(background[name].tolist())


# --------------------------------------------------------------------------------------------
# Compiling scikit-learn logistic regressions
# --------------------------------------------------------------------------------------------


@dataclass
class _NumColumn:
    name: str
    scale: float = 1.0  # model input = scale * x + shift for a present x
    shift: float = 0.0
    missing: float | None = None  # model input for a missing x (None: not imputed)
    centered: bool = False


@dataclass
class _CatColumn:
    name: str
    levels: list[Any]  # every level the encoder knows
    outputs: list[Any]  # the levels that have an output column, in output order
    missing_level: Any  # the imputed level, or _NO_IMPUTER
    strict: bool


_NO_IMPUTER = object()


def _resolve_columns(selector: object, input_columns: tuple[str, ...]) -> list[str]:
    if isinstance(selector, str) or callable(selector):
        raise _Unsupported(f"column selector {selector!r} is not a list of columns")
    items = list(np.asarray(selector, dtype=object).ravel()) if selector is not None else []
    if all(isinstance(c, str) for c in items):
        return [str(c) for c in items]
    if all(isinstance(c, numbers.Integral) and not isinstance(c, bool | np.bool_) for c in items):
        return [input_columns[int(c)] for c in items]
    raise _Unsupported(f"column selector {selector!r} is neither names nor indices")


def _imputer_statistics(imputer: Any, width: int) -> list[Any]:
    missing_values = imputer.missing_values
    if not (isinstance(missing_values, float) and math.isnan(missing_values)):
        raise _Unsupported(f"SimpleImputer(missing_values={missing_values!r}) is not NaN")
    if imputer.add_indicator:
        raise _Unsupported("SimpleImputer(add_indicator=True)")
    stats = list(np.asarray(imputer.statistics_, dtype=object).ravel())
    if len(stats) != width or any(_is_missing(s) for s in stats):
        raise _Unsupported("SimpleImputer dropped an all-missing column")
    return stats


def _numeric_block(steps: list[Any], columns: list[str]) -> list[_NumColumn]:
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import StandardScaler

    out = [_NumColumn(name) for name in columns]
    for step in steps:
        if type(step) is SimpleImputer:
            stats = _imputer_statistics(step, len(out))
            for col, stat in zip(out, stats, strict=True):
                if isinstance(stat, str | bytes) or not isinstance(stat, numbers.Real):
                    raise _Unsupported(f"non-numeric imputed value {stat!r} for {col.name!r}")
                if col.missing is None:
                    col.missing = float(stat)
                col.centered = False
        elif type(step) is StandardScaler:
            if step.n_features_in_ != len(out):
                raise _Unsupported("StandardScaler width does not match its columns")
            means = np.asarray(step.mean_, dtype=np.float64) if step.with_mean else None
            scales = np.asarray(step.scale_, dtype=np.float64) if step.with_std else None
            for i, col in enumerate(out):
                mu = float(means[i]) if means is not None else 0.0
                s = float(scales[i]) if scales is not None else 1.0
                col.scale = col.scale / s
                col.shift = (col.shift - mu) / s
                if col.missing is not None:
                    col.missing = (col.missing - mu) / s
                col.centered = bool(step.with_mean)
        else:
            raise _Unsupported(f"{type(step).__name__} on numeric columns")
    return out


def _categorical_block(steps: list[Any], columns: list[str]) -> list[_CatColumn]:
    from sklearn.impute import SimpleImputer

    encoder = steps[-1]
    before = steps[:-1]
    if len(before) > 1 or any(type(s) is not SimpleImputer for s in before):
        raise _Unsupported("only one SimpleImputer may precede a OneHotEncoder")
    if encoder.min_frequency is not None or encoder.max_categories is not None:
        raise _Unsupported("OneHotEncoder with infrequent categories")
    if encoder.handle_unknown not in ("ignore", "error", "warn", "infrequent_if_exist"):
        raise _Unsupported(f"OneHotEncoder(handle_unknown={encoder.handle_unknown!r})")
    strict = encoder.handle_unknown == "error"
    categories = list(encoder.categories_)
    if len(categories) != len(columns):
        raise _Unsupported("OneHotEncoder width does not match its columns")
    stats: list[Any] = (
        _imputer_statistics(before[0], len(columns)) if before else [_NO_IMPUTER] * len(columns)
    )
    drop_idx = encoder.drop_idx_
    out = []
    for i, name in enumerate(columns):
        levels = list(np.asarray(categories[i], dtype=object).tolist())
        if any(_is_missing(level) for level in levels):
            raise _Unsupported(f"OneHotEncoder has a missing-value level for {name!r}")
        if len(set(levels)) != len(levels):
            raise _Unsupported(f"OneHotEncoder has equal levels for {name!r}")
        dropped = None if drop_idx is None else drop_idx[i]
        outputs = [lv for j, lv in enumerate(levels) if dropped is None or j != int(dropped)]
        out.append(_CatColumn(name, levels, outputs, stats[i], strict))
    return out


def _is_identity(transformer: Any) -> bool:
    """``"passthrough"``, or the identity ``FunctionTransformer`` a fitted ColumnTransformer
    puts in its place."""
    from sklearn.preprocessing import FunctionTransformer

    if isinstance(transformer, str):
        return transformer == "passthrough"
    return type(transformer) is FunctionTransformer and transformer.func is None


def _block(transformer: Any, columns: list[str]) -> list[_NumColumn] | list[_CatColumn]:
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    if _is_identity(transformer):
        return _numeric_block([], columns)
    if type(transformer) is Pipeline:
        steps = [s for _, s in transformer.steps if s is not None and not isinstance(s, str)]
        if any(isinstance(s, str) and s != "passthrough" for _, s in transformer.steps):
            raise _Unsupported("a pipeline step is a string other than 'passthrough'")
    else:
        steps = [transformer]
    if steps and type(steps[-1]) is OneHotEncoder:
        return _categorical_block(steps, columns)
    if all(type(s) in (SimpleImputer, StandardScaler) for s in steps):
        return _numeric_block(steps, columns)
    raise _Unsupported(f"transformer {type(transformer).__name__} has no compiled form")


def _input_columns(model: Any, names: tuple[str, ...]) -> tuple[str, ...]:
    """The columns a fitted scikit-learn model reads, in its own order."""
    fitted_names = getattr(model, "feature_names_in_", None)
    if fitted_names is not None:
        return _model_columns(names, [str(c) for c in fitted_names])
    width = getattr(model, "n_features_in_", None)
    if width is not None and int(width) != len(names):
        raise InvalidArgument(
            f"the model was fitted on {width} unnamed columns but {len(names)} feature_names "
            "were given",
            field="feature_names",
            remedy="pass the feature names in the order of the training matrix's columns",
        )
    return names


def _compile_sklearn_linear(
    model: Any, names: tuple[str, ...]
) -> tuple[float, list[NumericTerm], list[CategoricalTerm]]:
    from sklearn.compose import ColumnTransformer
    from sklearn.exceptions import NotFittedError
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.utils.validation import check_is_fitted

    if type(model) is Pipeline:
        if any(isinstance(s, str) and s != "passthrough" for _, s in model.steps):
            raise _Unsupported("a pipeline step is a string other than 'passthrough'")
        steps = [s for _, s in model.steps if s is not None and not isinstance(s, str)]
    else:
        steps = [model]
    if not steps or type(steps[-1]) not in (LogisticRegression, LogisticRegressionCV):
        raise _Unsupported(f"{type(model).__name__} is not a logistic regression or its pipeline")
    try:
        check_is_fitted(model)
    except NotFittedError as exc:
        raise InvalidArgument(
            f"{type(model).__name__} is not fitted", field="model", remedy="fit the model first"
        ) from exc
    _check_positive_class(model)
    regression = steps[-1]
    coef = np.asarray(regression.coef_, dtype=np.float64)
    intercept = np.asarray(regression.intercept_, dtype=np.float64).ravel()
    if coef.ndim != 2 or coef.shape[0] != 1 or intercept.shape != (1,):
        raise _Unsupported("not a binary logistic regression")
    weights = coef[0]
    input_columns = _input_columns(model, names)

    before = steps[:-1]
    blocks: list[list[_NumColumn] | list[_CatColumn]] = []
    if len(before) == 1 and type(before[0]) is ColumnTransformer:
        for _name, transformer, selector in before[0].transformers_:
            if isinstance(transformer, str) and transformer == "drop":
                continue
            columns = _resolve_columns(selector, input_columns)
            if columns:
                _model_columns(names, columns)
                blocks.append(_block(transformer, columns))
    elif all(type(s) in (SimpleImputer, StandardScaler) for s in before):
        blocks.append(_numeric_block(before, list(input_columns)))
    else:
        kinds = ", ".join(type(s).__name__ for s in before)
        raise _Unsupported(f"preprocessing {kinds} has no compiled form")

    width = sum(1 if isinstance(c, _NumColumn) else len(c.outputs) for b in blocks for c in b)
    if width != weights.shape[0]:
        raise _Unsupported(f"{width} transformed columns but {weights.shape[0]} coefficients")

    numeric: list[NumericTerm] = []
    categorical: list[CategoricalTerm] = []
    position = 0
    for block in blocks:
        for column in block:
            if isinstance(column, _NumColumn):
                w = float(weights[position])
                position += 1
                missing = None if column.missing is None else w * column.missing
                numeric.append(
                    NumericTerm(
                        column.name, w * column.scale, w * column.shift, missing, column.centered
                    )
                )
                continue
            table = dict.fromkeys(column.levels, 0.0)
            for level in column.outputs:
                table[level] = float(weights[position])
                position += 1
            fallback = None if column.strict else 0.0
            if column.missing_level is _NO_IMPUTER:
                missing_term = fallback
            else:
                missing_term = table.get(column.missing_level, fallback)
            categorical.append(CategoricalTerm(column.name, table, missing_term, column.strict))
    return float(intercept[0]), numeric, categorical


# --------------------------------------------------------------------------------------------
# Gradient-boosted trees: the library's own predictor
# --------------------------------------------------------------------------------------------

_Predict = Callable[[np.ndarray], np.ndarray]


class NativeScorer(CompiledScorer):
    """XGBoost or LightGBM scored by the library's native predictor on a float64 matrix.

    Inputs must be numbers or missing (NaN, which the trees route natively). Contributions are
    the library's path-dependent tree SHAP values in log-odds, the baseline its bias term:
    computed from the model's TreeSHAP table (``table``, built at load and checked against the
    library on probe rows; several times faster than the library's per-call walk) or, for a
    model the table cannot hold (deep trees, dart, categorical splits), by the library itself.
    """

    kind = "native"

    def __init__(
        self,
        feature_names: Sequence[str],
        columns: Sequence[str],
        predict: _Predict,
        contributions: _Predict,
        *,
        library: str,
        table: TreeTable | None = None,
    ) -> None:
        self.feature_names = _check_feature_names(feature_names)
        self.used_features = _model_columns(self.feature_names, list(columns))
        self.library = library
        self.table = table
        self._predict = predict
        self._contributions = contributions

    def _matrix(self, rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
        columns = self.used_features
        data = [[_number(name, _get(row, name)) for name in columns] for row in rows]
        return np.array(data, dtype=np.float64).reshape(len(rows), len(columns))

    def score_one(self, row: Mapping[str, Any]) -> float:
        return float(self._predict(self._matrix((row,)))[0])

    def score_many(self, rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
        rows = _check_rows(rows)
        if not rows:
            return np.empty(0, dtype=np.float64)
        return np.asarray(self._predict(self._matrix(rows)), dtype=np.float64).reshape(-1)

    def contributions_from_library(self, row: Mapping[str, Any]) -> dict[str, float]:
        """The library's own contributions for ``row`` (what the table reproduces), bias left
        out; for comparison and benchmarks."""
        values = np.asarray(self._contributions(self._matrix((row,))), dtype=np.float64)[0]
        return dict(zip(self.used_features, values.tolist(), strict=False))

    def _values(self, x: np.ndarray) -> np.ndarray:
        """The contributions of a one-row matrix, bias last."""
        if self.table is not None:
            return self.table.row(x[0])
        return np.asarray(self._contributions(x), dtype=np.float64)[0]

    def explain(self, row: Mapping[str, Any]) -> Explanation:
        values = self._values(self._matrix((row,)))
        contributions = dict(zip(self.used_features, values.tolist(), strict=False))
        baseline = float(values[len(self.used_features)])
        logit = baseline + math.fsum(contributions.values())
        return Explanation(contributions, baseline, logit, method="tree_shap")

    def score_and_reasons(
        self, row: Mapping[str, Any], top: int = 4
    ) -> tuple[float, list[dict[str, Any]]]:
        """``score_one`` and ``reasons`` from one matrix."""
        x = self._matrix((row,))
        score = float(self._predict(x)[0])
        values = self._values(x).tolist()
        return score, _reason_dicts(dict(zip(self.used_features, values, strict=False)), top)


def _not_fitted(model: object, exc: Exception) -> InvalidArgument:
    return InvalidArgument(
        f"{type(model).__name__} is not fitted ({exc})", field="model", remedy="fit the model first"
    )


def _tree_columns(
    names: tuple[str, ...], model_names: Sequence[str] | None, width: int
) -> tuple[str, ...]:
    if model_names is None:
        if width != len(names):
            raise InvalidArgument(
                f"the model was trained on {width} unnamed features but {len(names)} "
                "feature_names were given",
                field="feature_names",
                remedy="pass the feature names in the order of the training matrix's columns",
            )
        return names
    return _model_columns(names, list(model_names))


def _compile_xgboost(model: Any, names: tuple[str, ...]) -> NativeScorer:
    xgb = require_extra("xgboost", "explain")
    iteration_range: tuple[int, int] = (0, 0)
    if isinstance(model, xgb.XGBClassifier):
        try:
            booster = model.get_booster()
        except (AttributeError, ValueError) as exc:
            raise _not_fitted(model, exc) from exc
        _check_positive_class(model)
        missing = model.missing
        if not (isinstance(missing, float) and math.isnan(missing)):
            raise _Unsupported(f"XGBClassifier(missing={missing!r}) is not NaN")
        try:
            iteration_range = (0, int(model.best_iteration) + 1)
        except AttributeError:
            iteration_range = (0, 0)
    elif isinstance(model, xgb.Booster):
        booster = model
    else:
        raise _Unsupported(f"{type(model).__name__} is not an XGBoost classifier or booster")
    learner = json.loads(booster.save_config())["learner"]
    objective = learner["objective"]["name"]
    if objective != "binary:logistic":
        raise _Unsupported(f"XGBoost objective {objective!r} is not 'binary:logistic'")
    engine = learner["gradient_booster"]["name"]
    if engine not in ("gbtree", "dart"):
        raise _Unsupported(f"XGBoost booster {engine!r} is not a tree booster")
    types = booster.feature_types
    if types is not None and any(t == "c" for t in types):
        raise _Unsupported("XGBoost model with categorical features")
    model_names = booster.feature_names
    columns = _tree_columns(names, model_names, booster.num_features())

    def predict(x: np.ndarray) -> np.ndarray:
        out = booster.inplace_predict(
            x, iteration_range=iteration_range, predict_type="value", missing=math.nan
        )
        return np.asarray(out, dtype=np.float64)

    def contributions(x: np.ndarray) -> np.ndarray:
        # the matrix's columns are in the booster's order by construction, so the names need
        # not be attached and checked (that costs about a third of a one-row call)
        matrix = xgb.DMatrix(x, missing=math.nan, nthread=1)
        out = booster.predict(
            matrix, pred_contribs=True, iteration_range=iteration_range, validate_features=False
        )
        return np.asarray(out, dtype=np.float64)

    # XGBoost computes its contributions in float32; the table's are float64
    table = _shap_table(lambda: xgboost_table(booster, iteration_range), contributions, 1e-4)
    return NativeScorer(names, columns, predict, contributions, library="xgboost", table=table)


def _shap_table(
    build: Callable[[], TreeTable], library: _Predict, tolerance: float
) -> TreeTable | None:
    """The model's TreeSHAP table (:mod:`charter.serving.tree_table`), checked against the
    library's own contributions on probe rows; None when the model cannot be tabulated."""
    try:
        table = build()
        check_against(table, library, tolerance)
    except TableUnavailable:
        return None
    return table


def _lightgbm_objective(booster: Any) -> str:
    for line in booster.model_to_string().splitlines():
        if line.startswith("objective="):
            return str(line[len("objective=") :])
        if line.startswith("Tree="):
            break
    return ""


def _compile_lightgbm(model: Any, names: tuple[str, ...]) -> NativeScorer:
    lgb = require_extra("lightgbm", "explain")
    if isinstance(model, lgb.LGBMClassifier):
        try:
            booster = model.booster_
        except (AttributeError, ValueError) as exc:
            raise _not_fitted(model, exc) from exc
        _check_positive_class(model)
    elif isinstance(model, lgb.Booster):
        booster = model
    else:
        raise _Unsupported(f"{type(model).__name__} is not a LightGBM classifier or booster")
    objective = _lightgbm_objective(booster)
    if objective.split(" ")[0] != "binary" or booster.num_model_per_iteration() != 1:
        raise _Unsupported(f"LightGBM objective {objective!r} is not 'binary'")
    if booster.pandas_categorical:
        raise _Unsupported("LightGBM model with pandas categorical features")
    model_names = list(booster.feature_name())
    unnamed = model_names == [f"Column_{i}" for i in range(len(model_names))]
    columns = _tree_columns(names, None if unnamed else model_names, booster.num_feature())

    def predict(x: np.ndarray) -> np.ndarray:
        return np.asarray(booster.predict(x), dtype=np.float64)

    def contributions(x: np.ndarray) -> np.ndarray:
        return np.asarray(booster.predict(x, pred_contrib=True), dtype=np.float64)

    table = _shap_table(lambda: lightgbm_table(booster), contributions, 1e-9)
    return NativeScorer(names, columns, predict, contributions, library="lightgbm", table=table)


# --------------------------------------------------------------------------------------------
# Anything else with predict_proba
# --------------------------------------------------------------------------------------------


class GenericScorer(CompiledScorer):
    """``model.predict_proba`` on a DataFrame with the model's columns: exact and slow.

    Models fitted on a DataFrame get a DataFrame with their ``feature_names_in_``; models fitted
    on a matrix get a matrix in ``feature_names`` order (so scikit-learn does not warn about
    feature names). ``fallback_reason`` says why the model was not compiled.

    Explanations need a ``background`` (see :func:`compile_model` for the choice of explainer).
    ``explain_method`` is ``"tree_shap_interventional"``, ``"tree_shap_interventional_rescaled"``,
    ``"permutation_sampling"`` or None (``explain`` returns None); ``explain_note`` says why the
    method was chosen or why there is none. ``background`` holds the background rows actually
    used (at most ``background_size``), or None.
    """

    kind = "generic"

    def __init__(
        self,
        model: Any,
        feature_names: Sequence[str],
        *,
        fallback_reason: str = "",
        background: pd.DataFrame | ReferenceProfile | None = None,
        explainer: str = "auto",
        n_permutations: int = REQUEST_PERMUTATIONS,
        background_size: int = REQUEST_BACKGROUND_SIZE,
        seed: int = 0,
    ) -> None:
        self.feature_names = _check_feature_names(feature_names)
        self.fallback_reason = fallback_reason
        if not callable(getattr(model, "predict_proba", None)):
            raise InvalidArgument(
                f"cannot score {type(model).__name__}: {fallback_reason or 'no compiled form'}, "
                "and it has no predict_proba",
                field="model",
                remedy="register a binary classifier with predict_proba, or a supported model",
            )
        _check_positive_class(model)
        self._model = model
        fitted_names = getattr(model, "feature_names_in_", None)
        self._as_frame = fitted_names is not None
        self.used_features = _input_columns(model, self.feature_names)
        _check_explainer(explainer)
        self.n_permutations = _check_count(n_permutations, "n_permutations")
        if self.n_permutations % 2:
            raise InvalidArgument(
                f"n_permutations must be even (antithetic pairs), got {n_permutations}",
                field="n_permutations",
                remedy=f"pass {self.n_permutations + 1}",
            )
        self.background_size = _check_count(background_size, "background_size")
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
            raise InvalidArgument(
                f"seed must be a non-negative integer, got {seed!r}",
                field="seed",
                remedy="pass seed=0",
            )
        self.seed: int = int(seed)
        self.explain_method: str | None = None
        self.explain_note: str = ""
        self.background: pd.DataFrame | None = None
        self._tree: _TreeExplainer | None = None
        self._setup_explainer(background, explainer)

    def _input(self, rows: Sequence[Mapping[str, Any]]) -> Any:
        columns = self.used_features
        data = [[_get(row, name) for name in columns] for row in rows]
        frame = pd.DataFrame(data, columns=list(columns))
        return frame if self._as_frame else frame.to_numpy()

    def _proba(self, rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
        proba = np.asarray(self._model.predict_proba(self._input(rows)), dtype=np.float64)
        return proba[:, 1]

    def score_one(self, row: Mapping[str, Any]) -> float:
        return float(self._proba((row,))[0])

    def score_many(self, rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
        rows = _check_rows(rows)
        if not rows:
            return np.empty(0, dtype=np.float64)
        return self._proba(rows)

    # ---------------------------------------------------------------- explanations
    def _predict_logit(self, frame: pd.DataFrame) -> np.ndarray:
        model_input = frame if self._as_frame else frame.to_numpy()
        proba = np.asarray(self._model.predict_proba(model_input), dtype=np.float64)[:, 1]
        return _clipped_logit(proba)

    def _setup_explainer(
        self, background: pd.DataFrame | ReferenceProfile | None, explainer: str
    ) -> None:
        if explainer == "none":
            self.explain_note = "explanations are switched off (explainer='none')"
            return
        if background is None:
            if explainer != "auto":
                raise InvalidArgument(
                    f"explainer={explainer!r} needs a background",
                    field="background",
                    remedy="pass a sample of the training data or the reference profile",
                )
            self.explain_note = "no background was given, so there is no baseline to explain"
            return
        if isinstance(background, ReferenceProfile):
            self.background = background_from_profile(
                background, self.used_features, self.background_size, seed=self.seed
            )
        else:
            self.background = sample_background(
                background, self.background_size, columns=self.used_features, seed=self.seed
            )
        if explainer in ("auto", "tree_shap"):
            reason = self._setup_tree(explainer == "tree_shap")
            if self._tree is not None:
                return
            if explainer == "tree_shap":
                raise InvalidArgument(
                    f"explainer='tree_shap' cannot explain {type(self._model).__name__}: {reason}",
                    field="explainer",
                    remedy="use explainer='auto' or 'sampling'",
                )
            self.explain_note = f"sampling Shapley values: {reason}"
        else:
            self.explain_note = "sampling Shapley values (explainer='sampling')"
        self.explain_method = "permutation_sampling"

    def _setup_tree(self, required: bool) -> str:
        """Set ``self._tree`` for a scikit-learn tree model; else return why not."""
        output = _sklearn_tree_output(self._model)
        if output is None:
            return f"{type(self._model).__name__} is not a supported scikit-learn tree model"
        if output == "categorical":
            return "HistGradientBoosting with categorical features (shap cannot read them)"
        shap = _import_shap(required)
        if shap is None:
            return "shap is not installed (pip install shap for exact tree explanations)"
        if self.background is None:
            return "there is no background"
        try:
            data = self.background.to_numpy(dtype=np.float64)
        except (TypeError, ValueError):
            return "the background is not numeric"
        try:
            explainer = shap.TreeExplainer(
                self._model, data=data, feature_perturbation="interventional", model_output="raw"
            )
        except Exception as exc:  # shap raises many types for models it cannot read
            return f"shap cannot read the model ({type(exc).__name__}: {exc})"
        tree = _TreeExplainer(explainer, output == "probability")
        # self-check: shap's values must add up to the model's own output
        rows = [dict(r) for r in self.background.head(3).to_dict("records")]
        if output == "margin":
            own = np.asarray(self._model.decision_function(self._input(rows)), dtype=np.float64)
        else:
            own = self._proba(rows)
        got = np.array([tree.raw_total(self._row_matrix(r)) for r in rows])
        if not np.allclose(got, own.reshape(-1), rtol=0.0, atol=1e-6):
            return "shap's tree values do not add up to the model's output"
        self._tree = tree
        self.explain_method = (
            "tree_shap_interventional_rescaled"
            if output == "probability"
            else "tree_shap_interventional"
        )
        self.explain_note = "exact interventional TreeSHAP (shap.TreeExplainer)"
        return ""

    def _row_matrix(self, row: Mapping[str, Any]) -> np.ndarray:
        values = [_number(name, _get(row, name)) for name in self.used_features]
        return np.array([values], dtype=np.float64)

    def explain(self, row: Mapping[str, Any]) -> Explanation | None:
        if self.explain_method is None or self.background is None:
            return None
        if self._tree is not None:
            return self._tree.explain(self._row_matrix(row), self.used_features)
        result = shapley_values(
            self._predict_logit,
            row,
            self.background,
            self.used_features,
            method="permutation",
            n_permutations=self.n_permutations,
            seed=self.seed,
        )
        contributions = dict(result.values)
        logit = result.base_value + math.fsum(contributions.values())
        return Explanation(
            contributions,
            result.base_value,
            logit,
            method="permutation_sampling",
            std_errors=dict(result.std_errors),
        )


_LOGIT_EPS = 1e-12


def _clipped_logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(np.asarray(p, dtype=np.float64), _LOGIT_EPS, 1.0 - _LOGIT_EPS)
    return np.asarray(np.log(q) - np.log1p(-q), dtype=np.float64)


def _logit1(p: float) -> float:
    q = min(max(p, _LOGIT_EPS), 1.0 - _LOGIT_EPS)
    return math.log(q) - math.log1p(-q)


class _TreeExplainer:
    """shap's interventional TreeExplainer for one scikit-learn tree model.

    ``rescale`` (averaging ensembles, whose raw output is a probability): shap's values
    ``phi_j`` add up to ``p - p0`` and are mapped to log-odds by one factor per row,
    ``(logit(p) - logit(p0)) / (p - p0)`` (``1 / (p (1 - p))`` when ``p == p0``), which keeps
    their signs, order and shares and makes them add up to ``logit(p) - logit(p0)``.
    """

    def __init__(self, explainer: Any, rescale: bool) -> None:
        self._explainer = explainer
        self.rescale = rescale
        expected = np.asarray(explainer.expected_value, dtype=np.float64).reshape(-1)
        self.expected = float(expected[-1])

    def values(self, x: np.ndarray) -> np.ndarray:
        raw = np.asarray(self._explainer.shap_values(x, check_additivity=False), dtype=np.float64)
        return raw[0, :, -1] if raw.ndim == 3 else raw[0]

    def raw_total(self, x: np.ndarray) -> float:
        return self.expected + math.fsum(self.values(x).tolist())

    def explain(self, x: np.ndarray, names: Sequence[str]) -> Explanation:
        phi = self.values(x)
        if not self.rescale:
            contributions = {n: float(phi[j]) for j, n in enumerate(names)}
            logit = self.expected + math.fsum(contributions.values())
            return Explanation(
                contributions, self.expected, logit, method="tree_shap_interventional"
            )
        p0 = self.expected
        p = p0 + math.fsum(phi.tolist())
        z0, z = _logit1(p0), _logit1(p)
        if abs(p - p0) > 1e-12:
            factor = (z - z0) / (p - p0)
        else:
            q = min(max(p, _LOGIT_EPS), 1.0 - _LOGIT_EPS)
            factor = 1.0 / (q * (1.0 - q))
        contributions = {n: float(phi[j]) * factor for j, n in enumerate(names)}
        logit = z0 + math.fsum(contributions.values())
        return Explanation(contributions, z0, logit, method="tree_shap_interventional_rescaled")


def _sklearn_tree_output(model: object) -> str | None:
    """ "margin" (log-odds trees), "probability" (averaged probabilities), "categorical"
    (a HistGradientBoosting model with categorical splits) or None (not a supported tree)."""
    if type(model).__module__.split(".", 1)[0] != "sklearn":
        return None
    from sklearn.ensemble import (
        ExtraTreesClassifier,
        GradientBoostingClassifier,
        HistGradientBoostingClassifier,
        RandomForestClassifier,
    )
    from sklearn.tree import DecisionTreeClassifier, ExtraTreeClassifier

    kind = type(model)
    if kind is HistGradientBoostingClassifier:
        categorical = getattr(model, "is_categorical_", None)
        if categorical is not None and bool(np.any(categorical)):
            return "categorical"
        return "margin"
    if kind is GradientBoostingClassifier:
        return "margin"
    if kind in (
        RandomForestClassifier,
        ExtraTreesClassifier,
        DecisionTreeClassifier,
        ExtraTreeClassifier,
    ):
        return "probability"
    return None


def _import_shap(required: bool) -> Any:
    try:
        import shap
    except ImportError as exc:
        if required:
            raise OptionalDependencyMissing(
                "exact tree explanations need the optional package 'shap', which is not installed",
                field="explainer",
                remedy="pip install shap",
            ) from exc
        return None
    return shap


_EXPLAINERS = ("auto", "tree_shap", "sampling", "none")


def _check_explainer(explainer: object) -> str:
    if explainer not in _EXPLAINERS:
        raise InvalidArgument(
            f"explainer must be one of {', '.join(_EXPLAINERS)}, got {explainer!r}",
            field="explainer",
            remedy="use 'auto' unless you need to force a method",
        )
    return str(explainer)


def _check_count(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) < 1:
        raise InvalidArgument(
            f"{name} must be a positive integer, got {value!r}",
            field=name,
            remedy="use the default",
        )
    return int(value)


# --------------------------------------------------------------------------------------------
# The entry point
# --------------------------------------------------------------------------------------------


def compile_model(
    model: object,
    feature_names: Sequence[str],
    *,
    background: pd.DataFrame | ReferenceProfile | None = None,
    explainer: str = "auto",
    n_permutations: int = REQUEST_PERMUTATIONS,
    background_size: int = REQUEST_BACKGROUND_SIZE,
    seed: int = 0,
) -> CompiledScorer:
    """Compile a fitted binary classifier into its fastest exact scorer.

    ``feature_names`` are the version's features; every column the model reads must be among
    them. ``background`` (a sample of the training data, or the version's
    :class:`~charter.stats.sketches.ReferenceProfile`) sets the baseline of contributions (see
    the module docstring). Models without a compiled form fall back to :class:`GenericScorer`;
    a model that cannot be scored at all, or whose classes are not ``[0, 1]``, raises
    :class:`~charter.errors.InvalidArgument`.

    ``explainer`` chooses how a *generic* model is explained (linear and native scorers always
    use their exact contributions): ``"auto"`` (the default) uses shap's exact interventional
    TreeSHAP for a scikit-learn tree model on numeric inputs when shap is installed, the
    permutation-sampling fallback for any other model, and nothing without a background;
    ``"tree_shap"`` insists on TreeSHAP (:class:`~charter.errors.OptionalDependencyMissing`
    without shap, :class:`~charter.errors.InvalidArgument` for another model); ``"sampling"``
    forces the fallback; ``"none"`` switches explanations off. ``background_size`` rows of the
    background are used (a seeded sample of a DataFrame, or drawn from a profile with
    :func:`charter.explain.shapley.background_from_profile`), and ``n_permutations`` orderings
    (with ``seed``) by the fallback. The fallback costs one batched model call per explanation;
    with the defaults (8 orderings, 16 background rows) it added about 45 ms per decision to the
    demo's categorical HistGradientBoosting challenger, whose own score takes about 13 ms, and
    interventional TreeSHAP about 1.7 ms to a 100-tree random forest
    (``benchmarks/explain_bench.py``). Pass ``explainer="none"`` to keep a slow model's request
    path free of it.
    """
    names = _check_feature_names(feature_names)
    _check_explainer(explainer)
    if background is not None and not isinstance(background, pd.DataFrame | ReferenceProfile):
        raise InvalidArgument(
            "background must be a pandas DataFrame or a ReferenceProfile, "
            f"got {type(background).__name__}",
            field="background",
            remedy="pass a sample of the training data, or the version's reference profile",
        )
    library = type(model).__module__.split(".", 1)[0]
    try:
        if library == "xgboost":
            return _compile_xgboost(model, names)
        if library == "lightgbm":
            return _compile_lightgbm(model, names)
        if library == "sklearn":
            intercept, numeric, categorical = _compile_sklearn_linear(model, names)
            return LinearScorer(names, intercept, numeric, categorical, background=background)
        raise _Unsupported(f"{type(model).__name__} has no compiled form")
    except _Unsupported as exc:
        reason = str(exc)
    return GenericScorer(
        model,
        names,
        fallback_reason=reason,
        background=background,
        explainer=explainer,
        n_permutations=n_permutations,
        background_size=background_size,
        seed=seed,
    )
