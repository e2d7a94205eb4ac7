"""Counterfactuals: the smallest feasible change that turns a decline into an approval.

A row is declined when ``score >= threshold`` and approved when ``score < threshold``.
:func:`counterfactual` looks for new values of *actionable* features that bring the score below
the threshold at the least cost, and returns None for a row that is already approved or when no
change within the constraints flips it.

Constraints (every returned counterfactual satisfies all of them; the tests check it)
    * ``immutable`` features are never changed (who the applicant is: age, sex, nationality).
    * Only ``actionable`` features change (default: every schema feature not immutable).
    * ``monotone[f] = +1`` lets ``f`` only increase, ``-1`` only decrease (e.g. the requested
      ``credit_amount`` and ``duration_in_month`` may only go down). Numeric features only.
    * Numeric and integer features stay in the schema's ``[minimum, maximum]`` (integers take
      integer values); a numeric feature without both bounds, or whose current value is missing
      or outside them, is not changed (its cost scale would be undefined). Categorical features
      take one of the schema's ``categories`` (a categorical feature without a category list is
      not changed); booleans flip.
    * At most ``max_changes`` features change.

Cost (what "smallest" means)
    The sum over changed features of ``|new - old| / (maximum - minimum)`` for numeric and
    integer features (the schema range as the scale, so moving across the whole range costs 1)
    plus ``1`` per changed categorical or boolean feature.

Algorithms (``Counterfactual.algorithm`` says which one ran, ``optimal`` whether the result is
proven optimal)
    * ``"linear_exact"``: when ``score_fn`` is an additive scorer (a
      :class:`~charter.serving.compiled.LinearScorer`, or anything with ``feature_term``,
      ``logit``, ``score_one`` and ``used_features``), the logit is ``const + sum_j t_j(x_j)``
      with ``t_j`` linear in a numeric ``x_j``, and the problem is a small knapsack solved
      exactly: every set of at most ``max_changes`` helpful features is tried; a categorical
      feature takes its best level; an integer feature with at most 256 values to go has each of
      its values enumerated; the remaining numeric features solve the set's linear programme (a
      fractional knapsack: cheapest log-odds per unit of cost first). The cheapest set wins.
      ``optimal`` is True; ``lower_bound`` is the cheapest cost before rounding the integer
      features that have more than 256 values to go (rounded up, which keeps the flip), so the
      cost is optimal to within ``cost - lower_bound`` (at most ``1 / (maximum - minimum)``
      per such feature; 0 when there is none). The result is checked by scoring it; if
      rounding error defeats it the heuristic below runs instead.
    * ``"beam_search"`` (any model): a beam search over single-feature moves. Each numeric
      feature has ``grid`` candidate values per allowed direction, evenly spaced from its value
      to the bound (rounded for integers); each categorical feature its other levels. Level 1
      scores every single move; each level extends the ``beam_width`` states with the lowest
      score and the ``beam_width`` with the largest score drop per unit cost by one more move
      on a feature not yet changed, up to ``max_changes``; states that cannot beat the cheapest
      flip found so far are pruned. The few cheapest flips of each level are refined: every
      change is tried without (dropped when the flip survives), and each numeric change is
      pulled back toward its old value by a line search (nested grids of 32 points, each scored
      as one batch, down to 1e-4 of the range or one unit for integers). ``optimal`` is False:
      the search is a heuristic.
    Both are deterministic; ``seed`` orders ties between otherwise equal candidates and is
    recorded, so a result can be reproduced exactly.

The score function is called on full rows (the input row with some values replaced). Passing a
compiled scorer itself (anything with ``score_one``; ``score_many`` is then used for batches)
is faster than a plain function and enables the exact linear algorithm.
"""

from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from charter.entities import FeatureSpec, FeatureType
from charter.errors import InvalidArgument

__all__ = [
    "AdditiveScorer",
    "Change",
    "Counterfactual",
    "counterfactual",
    "counterfactual_cost",
]

ScoreFn = Callable[[Mapping[str, Any]], float]
BatchScoreFn = Callable[[Sequence[Mapping[str, Any]]], Any]

_NUMERIC = (FeatureType.NUMERIC, FeatureType.INTEGER)
_LINE_GRID = 32
_BISECTIONS = 4  # nested line-search grids at most
_RESOLUTION = 1e-4  # line searches stop when the step is this share of the range
_REFINE_PER_LEVEL = 4
_DISCRETE_LIMIT = 256  # integer features with at most this many values to go are enumerated


@runtime_checkable
class AdditiveScorer(Protocol):
    """A scorer whose logit is a constant plus one term per feature (linear in numeric ones)."""

    used_features: tuple[str, ...]

    def feature_term(self, feature: str, value: Any) -> float: ...

    def logit(self, row: Mapping[str, Any]) -> float: ...

    def score_one(self, row: Mapping[str, Any]) -> float: ...


@dataclass(frozen=True)
class Change:
    """One changed feature: ``before`` -> ``after`` at ``cost`` (see the module docstring)."""

    feature: str
    before: Any
    after: Any
    cost: float

    def to_dict(self) -> dict[str, Any]:
        return {"feature": self.feature, "from": self.before, "to": self.after, "cost": self.cost}


@dataclass(frozen=True)
class Counterfactual:
    """A feasible change that flips a decline: ``score < threshold <= original_score``.

    ``row`` is the changed row (every other value as given). ``optimal`` is True only when the
    algorithm proves no cheaper feasible change exists; ``lower_bound`` is a proven lower bound
    of the optimal cost when the algorithm has one (``linear_exact``), else None.
    """

    changes: tuple[Change, ...]
    row: Mapping[str, Any]
    original_score: float
    score: float
    threshold: float
    cost: float
    optimal: bool
    algorithm: str
    lower_bound: float | None
    n_evaluations: int
    seed: int = 0
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return {
            "changes": [c.to_dict() for c in self.changes],
            "original_score": self.original_score,
            "score": self.score,
            "threshold": self.threshold,
            "cost": self.cost,
            "optimal": self.optimal,
            "algorithm": self.algorithm,
            "lower_bound": self.lower_bound,
            "n_evaluations": self.n_evaluations,
            "seed": self.seed,
            "notes": list(self.notes),
        }


# --------------------------------------------------------------------------------------------
# Features and their moves
# --------------------------------------------------------------------------------------------


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float | np.floating):
        return bool(value != value)
    return type(value).__name__ == "NAType"


@dataclass(frozen=True)
class _Feature:
    name: str
    kind: str  # "numeric" | "integer" | "categorical" | "boolean"
    value: Any
    lo: float = 0.0
    hi: float = 0.0
    direction: int = 0  # +1 up only, -1 down only, 0 both
    levels: tuple[Any, ...] = ()

    @property
    def span(self) -> float:
        return self.hi - self.lo

    def cost(self, new: Any) -> float:
        if self.kind in ("numeric", "integer"):
            return abs(float(new) - float(self.value)) / self.span
        return 1.0

    def coerce(self, x: float) -> Any:
        return round(x) if self.kind == "integer" else float(x)

    def moves(self, grid: int) -> list[Any]:
        if self.kind in ("categorical", "boolean"):
            return [v for v in self.levels if not _same(v, self.value)]
        x = float(self.value)
        out: list[Any] = []
        ends = []
        if self.direction <= 0:
            ends.append(self.lo)
        if self.direction >= 0:
            ends.append(self.hi)
        for end in ends:
            for k in range(1, grid + 1):
                v = self.coerce(x + (end - x) * k / grid)
                if v != self.value and self.lo <= v <= self.hi and v not in out:
                    out.append(v)
        return out


def _same(a: Any, b: Any) -> bool:
    if _is_missing(a) or _is_missing(b):
        return _is_missing(a) and _is_missing(b)
    if isinstance(a, bool | np.bool_) != isinstance(b, bool | np.bool_):
        return False
    try:
        if bool(a == b):
            return True
    except (TypeError, ValueError):
        pass
    return (isinstance(a, str) or isinstance(b, str)) and str(a) == str(b)


def _schema(schema: object) -> dict[str, FeatureSpec]:
    if isinstance(schema, Mapping):
        items: Iterable[Any] = schema.values()
    elif isinstance(schema, Sequence) and not isinstance(schema, str):
        items = schema
    else:
        raise InvalidArgument(
            f"schema must be a sequence of FeatureSpec, got {type(schema).__name__}",
            field="schema",
            remedy="pass the version's feature_schema",
        )
    out: dict[str, FeatureSpec] = {}
    for spec in items:
        if not isinstance(spec, FeatureSpec):
            raise InvalidArgument(
                f"schema entries must be FeatureSpec, got {type(spec).__name__}",
                field="schema",
                remedy="pass the version's feature_schema",
            )
        out[spec.name] = spec
    if not out:
        raise InvalidArgument(
            "schema is empty", field="schema", remedy="pass the version's feature_schema"
        )
    return out


def _names(value: object, name: str, specs: Mapping[str, FeatureSpec]) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise InvalidArgument(
            f"{name} must be a collection of feature names, got {type(value).__name__}",
            field=name,
            remedy=f"pass {name} as a tuple of names",
        )
    names = tuple(value)
    for n in names:
        if n not in specs:
            raise InvalidArgument(
                f"{name} names {n!r}, which is not in the schema",
                field=str(n),
                remedy="name features of the version's schema",
            )
    return names


def _features(
    row: Mapping[str, Any],
    specs: Mapping[str, FeatureSpec],
    allowed: tuple[str, ...],
    monotone: Mapping[str, int],
) -> tuple[list[_Feature], list[str]]:
    features: list[_Feature] = []
    notes: list[str] = []
    for name in allowed:
        spec = specs[name]
        if name not in row:
            notes.append(f"{name}: not in the row, not changed")
            continue
        value = row[name]
        direction = monotone.get(name, 0)
        if spec.type in _NUMERIC:
            lo, hi = spec.minimum, spec.maximum
            if lo is None or hi is None or not (math.isfinite(lo) and math.isfinite(hi)):
                notes.append(f"{name}: the schema gives no range, not changed")
                continue
            if spec.type is FeatureType.INTEGER:
                lo, hi = float(math.ceil(lo)), float(math.floor(hi))
            real = isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)
            if hi <= lo or not real or _is_missing(value) or not lo <= float(value) <= hi:
                notes.append(f"{name}: missing, outside its range or no range, not changed")
                continue
            kind = "integer" if spec.type is FeatureType.INTEGER else "numeric"
            features.append(_Feature(name, kind, value, float(lo), float(hi), direction))
        elif spec.type is FeatureType.CATEGORICAL:
            if not spec.categories or len(spec.categories) < 2:
                notes.append(f"{name}: the schema lists no categories, not changed")
                continue
            features.append(_Feature(name, "categorical", value, levels=tuple(spec.categories)))
        elif spec.type is FeatureType.BOOLEAN:
            if not isinstance(value, bool | np.bool_):
                notes.append(f"{name}: not a boolean value, not changed")
                continue
            features.append(_Feature(name, "boolean", value, levels=(False, True)))
        else:
            notes.append(f"{name}: {spec.type.value} features are not changed")
    return features, notes


def _monotone(value: object, specs: Mapping[str, FeatureSpec]) -> dict[str, int]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidArgument(
            "monotone must be a mapping feature -> +1 or -1",
            field="monotone",
            remedy="e.g. {'credit_amount': -1} lets credit_amount only decrease",
        )
    out: dict[str, int] = {}
    for name, direction in value.items():
        if name not in specs:
            raise InvalidArgument(
                f"monotone names {name!r}, which is not in the schema",
                field=str(name),
                remedy="name features of the version's schema",
            )
        if specs[name].type not in _NUMERIC:
            raise InvalidArgument(
                f"monotone applies to numeric features; {name!r} is {specs[name].type.value}",
                field=str(name),
                remedy="leave categorical features out of monotone (list them as immutable "
                "to keep them fixed)",
            )
        if isinstance(direction, bool) or direction not in (1, -1):
            raise InvalidArgument(
                f"monotone[{name!r}] must be +1 (only increase) or -1 (only decrease), "
                f"got {direction!r}",
                field=str(name),
                remedy="use +1 or -1",
            )
        out[str(name)] = int(direction)
    return out


# --------------------------------------------------------------------------------------------
# Scoring with a budget counter
# --------------------------------------------------------------------------------------------


class _Scorer:
    def __init__(self, score_fn: object, score_batch: BatchScoreFn | None) -> None:
        self.calls = 0
        one = getattr(score_fn, "score_one", None)
        if callable(one):
            self._one: ScoreFn = one
            many = getattr(score_fn, "score_many", None)
            self._many: BatchScoreFn | None = score_batch or (many if callable(many) else None)
        elif callable(score_fn):
            self._one = score_fn
            self._many = score_batch
        else:
            raise InvalidArgument(
                f"score_fn must be callable, got {type(score_fn).__name__}",
                field="score_fn",
                remedy="pass a function row -> score, or the compiled scorer",
            )

    def one(self, row: Mapping[str, Any]) -> float:
        self.calls += 1
        return _checked(self._one(row))

    def many(self, rows: Sequence[Mapping[str, Any]]) -> list[float]:
        if not rows:
            return []
        self.calls += len(rows)
        if self._many is None:
            return [_checked(self._one(r)) for r in rows]
        out = np.asarray(self._many(list(rows)), dtype=np.float64).reshape(-1)
        if out.size != len(rows):
            raise InvalidArgument(
                f"the batch score function returned {out.size} scores for {len(rows)} rows",
                field="score_batch",
                remedy="return one score per row",
            )
        return [_checked(v) for v in out.tolist()]


def _checked(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidArgument(
            f"the score function returned {type(value).__name__}, not a number",
            field="score_fn",
            remedy="return P(y = 1) as a float",
        )
    out = float(value)
    if not math.isfinite(out):
        raise InvalidArgument(
            "the score function returned a value that is not finite",
            field="score_fn",
            remedy="return P(y = 1) as a float",
        )
    return out


# --------------------------------------------------------------------------------------------
# The entry point
# --------------------------------------------------------------------------------------------


def counterfactual_cost(
    changes: Mapping[str, Any], row: Mapping[str, Any], schema: Sequence[FeatureSpec]
) -> float:
    """The cost of changing ``row`` to the values in ``changes`` (see the module docstring)."""
    specs = _schema(schema)
    total = 0.0
    for name, new in changes.items():
        if name not in specs:
            raise InvalidArgument(
                f"{name!r} is not in the schema", field=str(name), remedy="name schema features"
            )
        spec = specs[name]
        if spec.type in _NUMERIC:
            if spec.minimum is None or spec.maximum is None or spec.maximum <= spec.minimum:
                raise InvalidArgument(
                    f"{name!r} has no range in the schema",
                    field=str(name),
                    remedy="give the feature a minimum and a maximum",
                )
            lo, hi = float(spec.minimum), float(spec.maximum)
            if spec.type is FeatureType.INTEGER:
                lo, hi = float(math.ceil(lo)), float(math.floor(hi))
            total += abs(float(new) - float(row[name])) / (hi - lo)
        elif not _same(new, row.get(name)):
            total += 1.0
    return total


def counterfactual(
    score_fn: ScoreFn | Any,
    row: Mapping[str, Any],
    schema: Sequence[FeatureSpec],
    threshold: float,
    *,
    immutable: Iterable[str] = (),
    monotone: Mapping[str, int] | None = None,
    actionable: Iterable[str] | None = None,
    max_changes: int = 3,
    seed: int = 0,
    score_batch: BatchScoreFn | None = None,
    grid: int = 10,
    beam_width: int = 5,
) -> Counterfactual | None:
    """The cheapest feasible change found that flips a declined ``row`` (see the module
    docstring for the constraints, the cost and the algorithms); None when the row is approved
    (``score < threshold``) or no change within the constraints flips it.

    ``score_fn`` maps a row to P(y = 1) (or is a compiled scorer); ``score_batch`` optionally
    scores a list of rows at once and must agree with it.
    """
    if not isinstance(row, Mapping):
        raise InvalidArgument(
            f"row must be a mapping feature -> value, got {type(row).__name__}",
            field="row",
            remedy="pass the applicant's features as a dict",
        )
    if (
        isinstance(threshold, bool)
        or not isinstance(threshold, numbers.Real)
        or not 0.0 < float(threshold) < 1.0
    ):
        raise InvalidArgument(
            f"threshold must be a probability strictly between 0 and 1, got {threshold!r}",
            field="threshold",
            remedy="pass the version's decision threshold",
        )
    threshold = float(threshold)
    for value, name in ((max_changes, "max_changes"), (grid, "grid"), (beam_width, "beam_width")):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) < 1:
            raise InvalidArgument(
                f"{name} must be a positive integer, got {value!r}",
                field=name,
                remedy="use the default",
            )
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or int(seed) < 0:
        raise InvalidArgument(
            f"seed must be a non-negative integer, got {seed!r}",
            field="seed",
            remedy="pass seed=0",
        )
    specs = _schema(schema)
    fixed = set(_names(immutable, "immutable", specs))
    wanted = (
        tuple(n for n in specs if n not in fixed)
        if actionable is None
        else _names(actionable, "actionable", specs)
    )
    clash = sorted(fixed & set(wanted))
    if clash:
        raise InvalidArgument(
            f"{clash[0]!r} is both immutable and actionable",
            field=clash[0],
            remedy="list each feature in at most one of immutable and actionable",
        )
    directions = _monotone(monotone, specs)
    scorer = _Scorer(score_fn, score_batch)
    row = dict(row)
    original = scorer.one(row)
    if original < threshold:
        return None
    features, notes = _features(row, specs, wanted, directions)
    if not features:
        return None
    context = _Context(scorer, row, threshold, original, int(seed), tuple(notes))
    if isinstance(score_fn, AdditiveScorer):
        exact = _linear_exact(score_fn, context, features, int(max_changes))
        if exact is not None:
            return exact
        context.notes = (*context.notes, "the exact linear solution did not verify; searched")
    return _beam_search(context, features, int(max_changes), int(grid), int(beam_width))


@dataclass
class _Context:
    scorer: _Scorer
    row: dict[str, Any]
    threshold: float
    original: float
    seed: int
    notes: tuple[str, ...]

    def result(
        self,
        by_name: Mapping[str, _Feature],
        changes: Mapping[str, Any],
        score: float,
        *,
        algorithm: str,
        optimal: bool,
        lower_bound: float | None,
    ) -> Counterfactual:
        ordered = sorted(changes)
        items = tuple(
            Change(n, self.row[n], changes[n], by_name[n].cost(changes[n])) for n in ordered
        )
        return Counterfactual(
            changes=items,
            row={**self.row, **changes},
            original_score=self.original,
            score=score,
            threshold=self.threshold,
            cost=math.fsum(c.cost for c in items),
            optimal=optimal,
            algorithm=algorithm,
            lower_bound=lower_bound,
            n_evaluations=self.scorer.calls,
            seed=self.seed,
            notes=self.notes,
        )


# --------------------------------------------------------------------------------------------
# Exact solution for additive (linear) scorers
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Lever:
    """How one feature can lower the logit.

    ``fixed``: one move (a categorical level) removing ``gain`` at cost 1. ``discrete``: an
    integer feature with at most :data:`_DISCRETE_LIMIT` values to go, ``steps`` unit steps in
    direction ``sign``, each removing ``gain``. ``continuous``: a move toward ``target`` removing
    up to ``gain`` in proportion to the distance (rounded up to an integer for integer features).
    """

    feature: _Feature
    kind: str
    gain: float
    target: Any
    sign: int = 0
    steps: int = 0

    @property
    def name(self) -> str:
        return self.feature.name


def _logit(p: float) -> float:
    return math.log(p) - math.log1p(-p)


def _levers(model: AdditiveScorer, features: list[_Feature]) -> list[_Lever]:
    used = set(model.used_features)
    out: list[_Lever] = []
    for f in features:
        if f.name not in used:
            continue
        now = model.feature_term(f.name, f.value)
        if f.kind in ("categorical", "boolean"):
            options = [
                (now - model.feature_term(f.name, v), i, v) for i, v in enumerate(f.moves(1))
            ]
            options = [o for o in options if o[0] > 0.0]
            if options:
                gain, _, value = max(options, key=lambda o: (o[0], -o[1]))
                out.append(_Lever(f, "fixed", gain, value))
            continue
        best: _Lever | None = None
        for end, sign in ((f.lo, -1), (f.hi, +1)):
            if f.direction and f.direction != sign:
                continue
            target = f.coerce(end)
            gain = now - model.feature_term(f.name, target)
            distance = abs(float(target) - float(f.value))
            if gain <= 0.0 or distance <= 0.0:
                continue
            if f.kind == "integer" and distance <= _DISCRETE_LIMIT:
                steps = round(distance)
                lever = _Lever(f, "discrete", gain / steps, target, sign, steps)
            else:
                lever = _Lever(f, "continuous", gain, target, sign)
            if best is None or gain > (best.gain * (best.steps or 1)):
                best = lever
        if best is not None:
            out.append(best)
    return out


def _continuous(
    levers: Sequence[_Lever], need: float
) -> tuple[dict[str, Any], float, float] | None:
    """The cheapest way for ``levers`` (every one of them used) to remove ``need`` log-odds:
    (changes, cost with integer rounding, cost without)."""
    changes: dict[str, Any] = {}
    cost = exact = 0.0
    left = need

    def unit(lv: _Lever) -> float:
        f = lv.feature
        return abs(float(lv.target) - float(f.value)) / f.span / lv.gain

    for lever in sorted(levers, key=lambda lv: (unit(lv), lv.name)):
        if left <= 0.0:
            return None  # not every lever is needed: a smaller set does as well
        f = lever.feature
        x = float(f.value)
        full = float(lever.target) - x
        share = min(1.0, left / lever.gain)
        exact += share * abs(full) / f.span
        distance = share * abs(full)
        if f.kind == "integer":
            distance = float(math.ceil(distance - 1e-9))
        distance = min(distance, abs(full))
        value = f.coerce(x + math.copysign(distance, full))
        changes[f.name] = value
        cost += distance / f.span
        left -= lever.gain * distance / abs(full)
    if left > 0.0:
        return None
    return changes, cost, exact


def _solve_subset(
    subset: Sequence[_Lever], need: float
) -> tuple[dict[str, Any], float, float] | None:
    """The subset's cheapest solution that changes every feature in it: (changes, cost, a lower
    bound of the cost over integer solutions on this subset)."""
    fixed = [lv for lv in subset if lv.kind == "fixed"]
    discrete = [lv for lv in subset if lv.kind == "discrete"]
    continuous = [lv for lv in subset if lv.kind == "continuous"]
    base: dict[str, Any] = {lv.name: lv.target for lv in fixed}
    need -= math.fsum(lv.gain for lv in fixed)
    base_cost = float(len(fixed))
    if not discrete and not continuous:
        return (base, base_cost, base_cost) if need <= 0.0 else None
    # enumerate the discrete levers' steps; the last one is solved for when nothing continuous
    free = discrete if continuous else discrete[:-1]
    last = None if continuous else discrete[-1]
    best: tuple[dict[str, Any], float, float] | None = None
    low = math.inf
    for steps in itertools.product(*(range(1, lv.steps + 1) for lv in free)):
        left = need - math.fsum(lv.gain * k for lv, k in zip(free, steps, strict=True))
        changes = dict(base)
        cost = base_cost
        for lv, k in zip(free, steps, strict=True):
            changes[lv.name] = round(float(lv.feature.value)) + lv.sign * k
            cost += k / lv.feature.span
        bound = cost
        if last is not None:
            if left <= 0.0:
                continue  # ``last`` is not needed: a smaller set does as well
            k = math.ceil(left / last.gain - 1e-12)
            if k > last.steps:
                continue
            if k >= 1 and left - last.gain * k > 0.0:
                k += 1  # rounding in the division
            if k > last.steps:
                continue
            changes[last.name] = round(float(last.feature.value)) + last.sign * k
            cost += k / last.feature.span
            bound = cost
        else:
            solved = _continuous(continuous, left)
            if solved is None:
                continue
            moves, extra, extra_exact = solved
            changes.update(moves)
            cost += extra
            bound += extra_exact
        low = min(low, bound)
        if best is None or cost < best[1]:
            best = (changes, cost, low)
    return None if best is None else (best[0], best[1], low)


def _linear_exact(
    model: AdditiveScorer, ctx: _Context, features: list[_Feature], max_changes: int
) -> Counterfactual | None:
    by_name = {f.name: f for f in features}
    levers = sorted(_levers(model, features), key=lambda lv: lv.name)
    boundary = _logit(ctx.threshold)
    z = model.logit(ctx.row)
    for margin in (1e-9, 1e-7, 1e-5):
        need = z - boundary + margin * max(1.0, abs(boundary))
        best: tuple[float, int, tuple[str, ...], dict[str, Any]] | None = None
        bound = math.inf
        for size in range(1, min(max_changes, len(levers)) + 1):
            for subset in itertools.combinations(levers, size):
                solved = _solve_subset(subset, need)
                if solved is None:
                    continue
                changes, cost, low = solved
                bound = min(bound, low)
                key = (cost, len(changes), tuple(sorted(changes)), changes)
                if best is None or key[:3] < best[:3]:
                    best = key
        if best is None:
            return None
        cost, _, _, changes = best
        score = ctx.scorer.one({**ctx.row, **changes})
        if score < ctx.threshold:
            return ctx.result(
                by_name,
                changes,
                score,
                algorithm="linear_exact",
                optimal=True,
                lower_bound=min(bound, cost),
            )
    return None


# --------------------------------------------------------------------------------------------
# Beam search for any model
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _State:
    changes: tuple[tuple[str, Any], ...]  # sorted by feature name
    cost: float
    score: float
    tie: int

    def as_dict(self) -> dict[str, Any]:
        return dict(self.changes)


def _beam_search(
    ctx: _Context, features: list[_Feature], max_changes: int, grid: int, beam_width: int
) -> Counterfactual | None:
    by_name = {f.name: f for f in features}
    moves = {f.name: f.moves(grid) for f in features}
    rng = np.random.default_rng(ctx.seed)
    frontier = [_State((), 0.0, ctx.original, 0)]
    best: _State | None = None
    seen: set[tuple[tuple[str, Any], ...]] = set()
    for _depth in range(max_changes):
        candidates: list[tuple[tuple[tuple[str, Any], ...], float]] = []
        for state in frontier:
            changed = {n for n, _ in state.changes}
            for f in features:
                if f.name in changed:
                    continue
                for v in moves[f.name]:
                    cost = state.cost + f.cost(v)
                    if best is not None and cost >= best.cost:
                        continue
                    key = tuple(sorted((*state.changes, (f.name, v)), key=lambda c: c[0]))
                    if key in seen:
                        continue
                    seen.add(key)
                    candidates.append((key, cost))
        if not candidates:
            break
        ties = rng.permutation(len(candidates)).tolist()
        scores = ctx.scorer.many([{**ctx.row, **dict(k)} for k, _ in candidates])
        states = [_State(k, c, s, t) for (k, c), s, t in zip(candidates, scores, ties, strict=True)]
        flips = sorted((s for s in states if s.score < ctx.threshold), key=_by_cost)
        for state in flips[:_REFINE_PER_LEVEL]:
            refined = _refine(ctx, by_name, state)
            if best is None or _by_cost(refined) < _by_cost(best):
                best = refined
        rest = [
            s for s in states if s.score >= ctx.threshold and (best is None or s.cost < best.cost)
        ]
        lowest = sorted(rest, key=lambda s: (s.score, s.cost, s.tie))[:beam_width]
        efficient = sorted(
            rest, key=lambda s: (-(ctx.original - s.score) / max(s.cost, 1e-12), s.tie)
        )[:beam_width]
        frontier = list({s.changes: s for s in (*lowest, *efficient)}.values())
        if not frontier:
            break
    if best is None:
        return None
    return ctx.result(
        by_name,
        best.as_dict(),
        best.score,
        algorithm="beam_search",
        optimal=False,
        lower_bound=None,
    )


def _by_cost(state: _State) -> tuple[float, int, int]:
    return (state.cost, len(state.changes), state.tie)


def _refine(ctx: _Context, by_name: Mapping[str, _Feature], state: _State) -> _State:
    """Drop unneeded changes, then pull numeric changes back toward the old values."""
    changes = state.as_dict()
    score = state.score
    while len(changes) > 1:  # drop the most expensive change the flip survives without
        names = sorted(changes, key=lambda n: (-by_name[n].cost(changes[n]), n))
        trials = [{k: v for k, v in changes.items() if k != n} for n in names]
        scores = ctx.scorer.many([{**ctx.row, **t} for t in trials])
        kept = [(t, s) for t, s in zip(trials, scores, strict=True) if s < ctx.threshold]
        if not kept:
            break
        changes, score = kept[0]
    for name in sorted(changes, key=lambda n: (-by_name[n].cost(changes[n]), n)):
        f = by_name[name]
        if f.kind in ("numeric", "integer"):
            changes[name], score = _line_search(ctx, f, changes, score)
    cost = math.fsum(by_name[n].cost(v) for n, v in changes.items())
    return _State(tuple(sorted(changes.items(), key=lambda c: c[0])), cost, score, state.tie)


def _line_search(
    ctx: _Context, f: _Feature, changes: Mapping[str, Any], score: float
) -> tuple[Any, float]:
    """The value closest to the old one, between it and the current new value, that still
    flips the row (the others held at their new values): nested grids of
    :data:`_LINE_GRID` points, each scored as one batch, until the step is below
    :data:`_RESOLUTION` of the range (or one unit for integers)."""
    best_v, best_s = changes[f.name], score
    a, b = float(f.value), float(best_v)  # a does not flip (or is the old value), b flips
    for _ in range(_BISECTIONS):
        if abs(b - a) <= _RESOLUTION * f.span:
            break
        values: list[Any] = []
        for k in range(1, _LINE_GRID):
            v = f.coerce(a + (b - a) * k / _LINE_GRID)
            if v not in values and float(v) != a and float(v) != b:
                values.append(v)
        if not values:
            break
        scores = ctx.scorer.many([{**ctx.row, **changes, f.name: v} for v in values])
        new_a = a
        for v, s in zip(values, scores, strict=True):
            if s < ctx.threshold:
                b, best_v, best_s = float(v), v, s
                break
            new_a = float(v)
        a = new_a
    return best_v, best_s
