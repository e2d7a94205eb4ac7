"""Validation policy as code: a TOML file that says which gates apply to a model and where their
thresholds lie, per risk tier.

The file lives in the model's repository beside its code; Charter stores its text and sha256 with
every gate run, so a validation record proves which rules it was judged by. Layout::

    name = "retail-credit"            # required
    version = "2026.1"                # optional, free text

    [data]
    label = "default"                 # the outcome column of every data set
    positive = "bad"                  # optional: the label value that is the event (else 0/1)

    [gates.performance]               # a table per gate; a gate without a table does not run
    min_auc = 0.70
    [gates.fairness.attributes.sex]   # protected attributes, derived from data columns
    column = "personal_status_and_sex"
    split = ":"                       # the text before ':' ("male : single" -> "male")

    [tiers.high.gates.performance]    # per-tier overrides, merged key by key over [gates]
    min_auc = 0.75
    [tiers.low]
    skip = ["benchmark"]              # gates a tier does not run

Every key is checked: an unknown gate or setting is refused with the list of the known ones, so
a misspelt threshold never silently falls back to its default. The defaults of each gate are in
``GATE_DEFAULTS`` and in docs/validation.md.
"""

from __future__ import annotations

import copy
import hashlib
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from charter.entities import RiskTier
from charter.errors import InvalidArgument

# The gates in the order they run and print, with every setting and its default.
GATE_DEFAULTS: dict[str, dict[str, Any]] = {
    "data_quality": {
        "max_missing_rate": 0.05,  # share of missing values in any feature the model uses
        "max_out_of_range_rate": 0.01,  # share of values outside the training range
        "max_unseen_category_rate": 0.01,  # share of category values not seen in training
    },
    "performance": {
        "datasets": ["holdout", "out_of_time"],  # judged on each present data set
        "min_auc": 0.65,
        "min_ks": 0.20,
        "min_precision": 0.0,  # at the version's operating threshold
        "min_recall": 0.0,
        "compare_champion": True,  # against the current champion on the same rows (DeLong)
        "max_auc_drop_vs_champion": 0.02,  # the candidate may trail it by at most this
        "require_significant_improvement": False,  # fail unless better at alpha (DeLong)
        "alpha": 0.05,
    },
    "stability": {
        "max_feature_psi": 0.25,  # training reference against out-of-time data
        "warn_feature_psi": 0.10,
        "max_score_psi": 0.25,
        "warn_score_psi": 0.10,
        "bins": 10,
    },
    "fairness": {
        "dataset": "holdout",
        "max_demographic_parity_difference": 0.10,  # of approval rates
        "max_equalized_odds_difference": 0.20,
        "min_disparate_impact_ratio": 0.80,  # the four-fifths rule
        "min_group_size": 20,  # smaller groups are reported, not judged
        # equalized odds compares error rates, so a group needs outcomes of both kinds: with
        # fewer than this many bads or goods it is reported, not judged (0: no such rule)
        "min_group_outcomes": 0,
        "attributes": {},
    },
    "calibration": {
        "dataset": "holdout",
        "bins": 10,
        "max_ece": 0.10,
        "min_hosmer_lemeshow_p": 0.01,
    },
    "sensitivity": {
        "dataset": "holdout",
        "shifts": [0.05, 0.10],  # each numeric input moved by +/- these fractions
        "max_mean_abs_change": 0.05,  # mean |score change| for one input at the largest shift
        "max_decision_flip_rate": 0.10,  # share of decisions that flip at the largest shift
        "missing": "nullable_must_score",  # or "must_score", or "report"
    },
    "benchmark": {
        "model": "auto",  # logistic_regression | gradient_boosting | auto (the other family)
        "dataset": "holdout",
        "max_auc_shortfall": 0.02,  # the candidate may trail the benchmark by at most this
        "seed": 0,
    },
}
GATES = tuple(GATE_DEFAULTS)
MISSING_MODES = ("nullable_must_score", "must_score", "report")
BENCHMARK_MODELS = ("auto", "logistic_regression", "gradient_boosting")
DATASETS = ("train", "holdout", "out_of_time")
ATTRIBUTE_KEYS = ("column", "split", "map", "bins")


@dataclass(frozen=True)
class ProtectedAttribute:
    """How to derive one protected attribute from a data column.

    ``split``: keep the text before this separator, trimmed and lower-cased. ``map``: value ->
    group. ``bins``: numeric band edges, e.g. [25, 40, 60] gives bands <25, 25-39, 40-59, 60+.
    Without any of them the column's values are the groups.
    """

    name: str
    column: str
    split: str | None = None
    mapping: Mapping[str, str] | None = None
    bins: tuple[float, ...] = ()


@dataclass(frozen=True)
class ValidationPolicy:
    name: str
    sha256: str
    text: str
    label: str
    positive: str | int | None
    gates: Mapping[str, Mapping[str, Any]]  # every gate that runs, defaults filled in
    tier: str | None = None
    version: str = ""
    attributes: tuple[ProtectedAttribute, ...] = field(default_factory=tuple)

    def settings(self, gate: str) -> Mapping[str, Any]:
        return self.gates[gate]

    def runs(self, gate: str) -> bool:
        return gate in self.gates

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "sha256": self.sha256,
            "tier": self.tier,
            "label": self.label,
            "gates": {g: dict(s) for g, s in self.gates.items()},
        }


def _bad(message: str, key: str, remedy: str) -> InvalidArgument:
    return InvalidArgument(message, field=f"policy.{key}", remedy=remedy)


def _check_keys(table: Mapping[str, Any], allowed: tuple[str, ...] | list[str], where: str) -> None:
    for key in table:
        if key not in allowed:
            raise _bad(
                f"unknown setting {key!r} in [{where}]",
                f"{where}.{key}",
                f"use only: {', '.join(allowed)}",
            )


def _number(value: Any, key: str, lo: float | None = None, hi: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _bad(f"{key} must be a number, not {value!r}", key, "write a number, e.g. 0.1")
    x = float(value)
    if (lo is not None and x < lo) or (hi is not None and x > hi):
        raise _bad(
            f"{key} = {value!r} lies outside [{lo}, {hi}]", key, f"use a value in [{lo}, {hi}]"
        )
    return x


def _check_setting(gate: str, key: str, value: Any) -> Any:
    """Type-check one gate setting against its default's type and range."""
    where = f"gates.{gate}.{key}"
    default = GATE_DEFAULTS[gate][key]
    if key == "attributes":
        return value
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise _bad(f"{where} must be true or false", where, "write true or false")
        return value
    if isinstance(default, int) and key in ("bins", "min_group_size", "min_group_outcomes", "seed"):
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or value < (2 if key == "bins" else 0)
        ):
            raise _bad(f"{where} must be a whole number, not {value!r}", where, "e.g. 10")
        return value
    if isinstance(default, float):
        return _number(value, where, 0.0, 1.0)
    if key == "datasets":
        if not isinstance(value, list) or not value or any(v not in DATASETS for v in value):
            raise _bad(
                f"{where} must be a list of data set names",
                where,
                'use names from: "holdout", "out_of_time", "train"',
            )
        return list(value)
    if key == "dataset":
        if value not in DATASETS:
            raise _bad(f"{where} = {value!r} is not a data set", where, "holdout or out_of_time")
        return value
    if key == "shifts":
        if not isinstance(value, list) or not value:
            raise _bad(f"{where} must be a list of fractions", where, "e.g. [0.05, 0.10]")
        return sorted(_number(v, where, 0.0, 1.0) for v in value)
    if key == "missing":
        if value not in MISSING_MODES:
            raise _bad(f"{where} = {value!r} is unknown", where, f"use {', '.join(MISSING_MODES)}")
        return value
    if key == "model":
        if value not in BENCHMARK_MODELS:
            raise _bad(
                f"{where} = {value!r} is unknown", where, f"use {', '.join(BENCHMARK_MODELS)}"
            )
        return value
    raise _bad(f"{where} has an unexpected value {value!r}", where, "see docs/validation.md")


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def parse_attributes(
    raw: Any, *, where: str = "gates.fairness.attributes", prefix: str = "policy."
) -> tuple[ProtectedAttribute, ...]:
    """``{name: {column, split | map | bins}}`` to ``ProtectedAttribute``s, every key checked;
    errors name the field ``prefix + where + ...`` (a policy's, or an experiment plan's)."""

    def bad(message: str, key: str, remedy: str) -> InvalidArgument:
        return InvalidArgument(message, field=f"{prefix}{key}", remedy=remedy)

    if not isinstance(raw, Mapping):
        raise bad(f"[{where}] must be a table of attributes", where, f"[{where}.sex] ...")
    out = []
    for name, spec in raw.items():
        key = f"{where}.{name}"
        if not isinstance(spec, Mapping):
            raise bad(f"[{key}] must be a table", key, 'e.g. column = "foreign_worker"')
        unknown = [str(k) for k in spec if k not in ATTRIBUTE_KEYS]
        if unknown:
            raise bad(
                f"unknown setting {unknown[0]!r} in [{key}]",
                f"{key}.{unknown[0]}",
                f"use only: {', '.join(ATTRIBUTE_KEYS)}",
            )
        column = spec.get("column")
        if not isinstance(column, str) or not column:
            raise bad(f"[{key}] needs a column", f"{key}.column", 'add column = "<data column>"')
        split = spec.get("split")
        if split is not None and (not isinstance(split, str) or not split):
            raise bad(f"{key}.split must be a separator", f"{key}.split", 'e.g. split = ":"')
        mapping = spec.get("map")
        if mapping is not None and (
            not isinstance(mapping, Mapping)
            or not all(isinstance(v, str) for v in mapping.values())
        ):
            raise bad(f"{key}.map must map values to groups", f"{key}.map", '{ A91 = "male" }')
        bins = spec.get("bins") or []
        if (
            not isinstance(bins, (list, tuple))
            or not all(isinstance(b, (int, float)) and not isinstance(b, bool) for b in bins)
            or sorted(bins) != list(bins)
        ):
            raise bad(f"{key}.bins must be increasing edges", f"{key}.bins", "e.g. [25, 40, 60]")
        edges = tuple(float(b) for b in bins)
        if sum(x is not None and x != () for x in (split, mapping, edges)) > 1:
            raise bad(f"[{key}] takes one of split, map or bins", key, "keep only one of them")
        out.append(
            ProtectedAttribute(
                name=str(name),
                column=column,
                split=split,
                mapping=None if mapping is None else {str(k): v for k, v in mapping.items()},
                bins=edges,
            )
        )
    return tuple(out)


def parse_policy(text: str, *, tier: str | RiskTier | None = None) -> ValidationPolicy:
    """Parse a policy's TOML text and resolve it for a risk tier (high, medium or low)."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise InvalidArgument(
            f"the policy is not valid TOML: {e}", field="policy", remedy="fix the TOML syntax"
        ) from None
    # [monitoring], [alerts] and [retraining] belong to the same model policy; they are read and
    # checked by charter.monitoring.policy.
    _check_keys(
        raw,
        ("name", "version", "data", "gates", "tiers", "monitoring", "alerts", "retraining"),
        "policy",
    )
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise _bad("the policy has no name", "name", 'add name = "retail-credit" at the top')
    data = raw.get("data", {})
    if not isinstance(data, Mapping):
        raise _bad("[data] must be a table", "data", 'label = "default"')
    _check_keys(data, ("label", "positive"), "data")
    label = data.get("label", "label")
    if not isinstance(label, str) or not label:
        raise _bad("data.label must be a column name", "data.label", 'label = "default"')
    positive = data.get("positive")
    if positive is not None and (
        isinstance(positive, bool) or not isinstance(positive, (str, int))
    ):
        raise _bad("data.positive must be text or a whole number", "data.positive", '"bad" or 1')
    gates_raw = raw.get("gates", {})
    tiers_raw = raw.get("tiers", {})
    for table, where in ((gates_raw, "gates"), (tiers_raw, "tiers")):
        if not isinstance(table, Mapping):
            raise _bad(f"[{where}] must be a table", where, "see docs/validation.md")
    _check_keys(gates_raw, GATES, "gates")
    _check_keys(tiers_raw, [t.value for t in RiskTier], "tiers")
    tier_value = RiskTier(tier).value if tier is not None else None
    merged: dict[str, Any] = {g: dict(v) for g, v in gates_raw.items()}
    skip: list[str] = []
    for t_name, t_table in tiers_raw.items():
        if not isinstance(t_table, Mapping):
            raise _bad(f"[tiers.{t_name}] must be a table", f"tiers.{t_name}", "see the docs")
        _check_keys(t_table, ("gates", "skip"), f"tiers.{t_name}")
        t_gates = t_table.get("gates", {})
        _check_keys(t_gates, GATES, f"tiers.{t_name}.gates")
        t_skip = t_table.get("skip", [])
        if not isinstance(t_skip, list) or any(s not in GATES for s in t_skip):
            raise _bad(
                f"tiers.{t_name}.skip must list gate names",
                f"tiers.{t_name}.skip",
                f"use names from: {', '.join(GATES)}",
            )
        if t_name == tier_value:
            merged = _merge(merged, t_gates)
            skip = list(t_skip)
    gates: dict[str, dict[str, Any]] = {}
    attributes: tuple[ProtectedAttribute, ...] = ()
    for gate in GATES:
        if gate not in merged or gate in skip:
            continue
        table = merged[gate]
        if not isinstance(table, Mapping):
            raise _bad(f"[gates.{gate}] must be a table", f"gates.{gate}", "see the docs")
        _check_keys(table, tuple(GATE_DEFAULTS[gate]), f"gates.{gate}")
        settings = copy.deepcopy(GATE_DEFAULTS[gate])
        for key, value in table.items():
            settings[key] = _check_setting(gate, key, value)
        if gate == "fairness":
            attributes = parse_attributes(settings["attributes"])
            if not attributes:
                raise _bad(
                    "the fairness gate has no protected attributes",
                    "gates.fairness.attributes",
                    'add [gates.fairness.attributes.<name>] with column = "..."',
                )
        gates[gate] = settings
    if not gates:
        raise _bad(
            "the policy runs no gate" + (f" for tier {tier_value}" if tier_value else ""),
            "gates",
            f"add at least one of [gates.{'], [gates.'.join(GATES)}]",
        )
    version = raw.get("version", "")
    return ValidationPolicy(
        name=name.strip(),
        sha256=hashlib.sha256(text.encode()).hexdigest(),
        text=text,
        label=label,
        positive=positive,
        gates=gates,
        tier=tier_value,
        version=str(version),
        attributes=attributes,
    )


def load_policy(path: str | Path, *, tier: str | RiskTier | None = None) -> ValidationPolicy:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise InvalidArgument(
            f"cannot read the policy file {str(p)!r}: {e}",
            field="policy",
            remedy="pass the path of a TOML validation policy",
        ) from None
    return parse_policy(text, tier=tier)
