"""Run a policy's gates on a registered version and keep the result as evidence.

``run_gates`` is pure with respect to the store (it reads the version, its artifact, its stored
reference profile and the current champion, and writes nothing); ``validate`` runs the gates and
records the run through ``Registry.record_gate_run``, bound to the version's artifact hash, its
training-data hash, the policy's hash and the hashes of the data sets it was judged on. The same
version, policy and data give the same report, byte for byte (the benchmark model is seeded).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from charter.entities import Actor, FeatureSpec, ModelVersion
from charter.errors import InvalidArgument, NotFound
from charter.registry.lineage import frame_hash
from charter.registry.service import Registry
from charter.storage import jsonutil
from charter.validation import gates as g
from charter.validation.policy import DATASETS, ValidationPolicy, parse_policy

DEFAULT_THRESHOLD = 0.5  # as charter.serving.runtime: a version without an operating point


@dataclass(frozen=True)
class ValidationRun:
    model: str
    version: int
    tier: str
    artifact_sha256: str
    training_data_hash: str | None
    policy: Mapping[str, Any]
    datasets: Mapping[str, Mapping[str, Any]]
    threshold: float
    threshold_source: str
    champion_version: int | None
    gates: tuple[g.GateResult, ...]
    explanations: Mapping[str, Any] | None = None  # global explanations on the holdout (no gate)

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.gates)

    @property
    def failed_gates(self) -> tuple[str, ...]:
        return tuple(r.gate for r in self.gates if not r.passed)

    def gate(self, name: str) -> g.GateResult:
        for r in self.gates:
            if r.gate == name:
                return r
        raise InvalidArgument(
            f"the run has no {name} gate",
            field="gate",
            remedy=f"use one of: {', '.join(r.gate for r in self.gates)}",
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version,
            "tier": self.tier,
            "artifact_sha256": self.artifact_sha256,
            "training_data_hash": self.training_data_hash,
            "policy": dict(self.policy),
            "datasets": {k: dict(v) for k, v in self.datasets.items()},
            "threshold": self.threshold,
            "threshold_source": self.threshold_source,
            "champion_version": self.champion_version,
            "passed": self.passed,
            "failed_gates": list(self.failed_gates),
            "gates": [r.to_dict() for r in self.gates],
            "explanations": None if self.explanations is None else dict(self.explanations),
        }

    def report_sha256(self) -> str:
        return hashlib.sha256(jsonutil.dumps(self.to_dict()).encode()).hexdigest()


def _labels(frame: pd.DataFrame, policy: ValidationPolicy, dataset: str) -> np.ndarray:
    if policy.label not in frame.columns:
        raise InvalidArgument(
            f"the {dataset} data has no label column {policy.label!r}",
            field=dataset,
            remedy=f"add the column, or set [data] label in the policy "
            f"(columns: {', '.join(map(str, frame.columns[:12]))})",
        )
    col = frame[policy.label]
    if col.isna().any():
        raise InvalidArgument(
            f"{int(col.isna().sum())} rows of the {dataset} data have no label",
            field=dataset,
            remedy="drop the rows whose outcome is not known yet",
        )
    if policy.positive is not None:
        return (col.astype(str) == str(policy.positive)).to_numpy(dtype=np.int64)
    values = set(pd.unique(col).tolist())
    if not values <= {0, 1}:  # True == 1 and False == 0 in a set
        shown = sorted(map(str, values))[:5]
        raise InvalidArgument(
            f"the label {policy.label!r} of the {dataset} data has values {shown}, not 0/1",
            field=dataset,
            remedy='set [data] positive = "<the event value>" in the policy, e.g. "bad"',
        )
    return col.astype(np.int64).to_numpy()


def _family(model: Any) -> str:
    final = model
    steps = getattr(model, "steps", None)
    if steps:
        final = steps[-1][1]
    module = type(final).__module__
    if module.startswith("sklearn.linear_model"):
        return "linear"
    if module.startswith(("sklearn.ensemble", "sklearn.tree", "xgboost", "lightgbm")):
        return "tree"
    return "other"


def _scorer(model: Any, features: tuple[FeatureSpec, ...]) -> g.Scorer:
    if not callable(getattr(model, "predict_proba", None)):
        raise InvalidArgument(
            f"cannot validate a {type(model).__name__}: it has no predict_proba",
            field="version",
            remedy="register a binary classifier with predict_proba",
        )
    names = [f.name for f in features]
    as_frame = getattr(model, "feature_names_in_", None) is not None

    def score(frame: pd.DataFrame) -> np.ndarray:
        x = frame[names]
        out = model.predict_proba(x if as_frame else x.to_numpy())
        return np.asarray(out, dtype=np.float64)[:, 1]

    return score


def _check_columns(frame: pd.DataFrame, features: tuple[FeatureSpec, ...], dataset: str) -> None:
    missing = [f.name for f in features if f.name not in frame.columns]
    if missing:
        raise InvalidArgument(
            f"the {dataset} data lacks {len(missing)} feature(s) the version uses: "
            f"{', '.join(missing[:8])}",
            field=dataset,
            remedy="give data with every feature of the version's schema",
        )


def _needed(policy: ValidationPolicy) -> set[str]:
    need = {"holdout"}
    for gate, s in policy.gates.items():
        if gate == "performance":
            need |= set(s["datasets"])
        elif gate == "stability":
            need.add("out_of_time")
        elif gate == "benchmark":
            need |= {"train", s["dataset"]}
        elif "dataset" in s:
            need.add(s["dataset"])
    return need


def run_gates(
    registry: Registry,
    name: str,
    version: int,
    policy: ValidationPolicy | str,
    data: Mapping[str, pd.DataFrame],
) -> ValidationRun:
    """Run every gate of ``policy`` (a parsed policy, or its TOML text resolved for the model's
    tier) on ``version``. ``data`` maps ``holdout`` (required), ``out_of_time`` and ``train`` to
    labelled frames. Models run on one thread (OpenMP and BLAS): validation data is small, and
    a thread team on a busy machine costs far more than it gains."""
    with threadpool_limits(limits=1):
        return _run_gates(registry, name, version, policy, data)


def _run_gates(
    registry: Registry,
    name: str,
    version: int,
    policy: ValidationPolicy | str,
    data: Mapping[str, pd.DataFrame],
) -> ValidationRun:
    model_entry = registry.get_model(name)
    if isinstance(policy, str):
        policy = parse_policy(policy, tier=model_entry.risk_tier)
    v: ModelVersion = registry.get_version(name, version)
    for key in data:
        if key not in DATASETS:
            raise InvalidArgument(
                f"unknown data set {key!r}", field="data", remedy=f"use {', '.join(DATASETS)}"
            )
    for key in sorted(_needed(policy) - set(data)):
        raise InvalidArgument(
            f"the policy {policy.name!r} needs the {key} data set",
            field=key,
            remedy=f"pass --{key.replace('_', '-')} FILE",
        )
    features = tuple(v.feature_schema)
    model = registry.load_model(name, version)
    score = _scorer(model, features)
    datasets: dict[str, g.Dataset] = {}
    for key in DATASETS:
        if key not in data:
            continue
        frame = data[key]
        if not isinstance(frame, pd.DataFrame) or frame.empty:
            raise InvalidArgument(
                f"the {key} data is empty", field=key, remedy="give a file with rows"
            )
        _check_columns(frame, features, key)
        y = _labels(frame, policy, key)
        frame = frame.reset_index(drop=True)
        datasets[key] = g.Dataset(key, frame, y, score(frame), frame_hash(frame))
    threshold, source = (
        (float(v.decision_threshold), "version")
        if v.decision_threshold is not None
        else (DEFAULT_THRESHOLD, "default 0.5 (the version has no operating threshold)")
    )
    profile = None
    if v.reference_profile_sha256 is not None:
        profile = registry.reference_profile(name, version)
    champion = None
    if model_entry.champion_version is not None and model_entry.champion_version != version:
        cv = registry.get_version(name, model_entry.champion_version)
        try:
            champion = (
                cv.version,
                _scorer(registry.load_model(name, cv.version), cv.feature_schema),
            )
        except NotFound:
            champion = None
        for ds in datasets.values():
            _check_columns(ds.frame, tuple(cv.feature_schema), ds.name)
    ctx = g.Context(
        features=features,
        threshold=threshold,
        score=score,
        datasets=datasets,
        reference_profile=profile,
        champion=champion,
        candidate_family=_family(model),
    )
    results: list[g.GateResult] = []
    for gate, s in policy.gates.items():
        if gate == "fairness":
            results.append(g.fairness(ctx, s, policy.attributes))
        else:
            results.append(getattr(g, gate)(ctx, s))
    return ValidationRun(
        model=name,
        version=version,
        tier=model_entry.risk_tier.value,
        artifact_sha256=v.artifact_sha256,
        training_data_hash=v.training_data.content_hash if v.training_data else None,
        policy=policy.summary(),
        datasets={
            k: {"sha256": d.sha256, "rows": d.rows, "bad_rate": float(d.y.mean())}
            for k, d in datasets.items()
        },
        threshold=threshold,
        threshold_source=source,
        champion_version=None if champion is None else champion[0],
        gates=tuple(results),
        explanations=global_explanations(model, features, profile, datasets["holdout"]),
    )


EXPLAINED_ROWS = 300  # holdout rows explained for the global view (exact and tree methods)
SAMPLED_ROWS = 40  # ... when the model is explained by permutation sampling, which is slower


def global_explanations(
    model: Any, features: tuple[FeatureSpec, ...], profile: Any, holdout: g.Dataset
) -> dict[str, Any]:
    """Global importance and the stability of the top reasons on the holdout, computed with the
    same explainer as the service's reason codes; what was not possible is said, not hidden."""
    from charter.errors import CharterError
    from charter.explain.global_importance import importance, reason_stability_from
    from charter.serving.compiled import compile_model

    names = [f.name for f in features]
    try:
        scorer = compile_model(model, names, background=profile)
        explained = scorer.explain(holdout.frame.iloc[0][names].to_dict())
    except (CharterError, ValueError, TypeError) as e:
        return {"available": False, "reason": f"the model cannot be explained: {e}"}
    if explained is None:
        return {
            "available": False,
            "reason": f"the {scorer.kind} scorer gives no contributions for this model "
            "(no stored reference profile to draw a background from)",
        }
    limit = SAMPLED_ROWS if explained.method == "permutation_sampling" else EXPLAINED_ROWS
    frame = holdout.frame[names].iloc[:limit]
    rows = frame.to_dict("records")
    contributions = [scorer.contributions(r) for r in rows]
    ranked = importance(contributions, names)
    stability = reason_stability_from(contributions, names, n_boot=50, top=4, seed=0)
    return {
        "available": True,
        "method": explained.method,
        "dataset": holdout.name,
        "rows": len(rows),
        "importance": [f.to_dict() for f in ranked],
        "reason_stability": stability.to_dict(),
    }


def validate(
    registry: Registry,
    actor: Actor,
    name: str,
    version: int,
    policy_text: str,
    data: Mapping[str, pd.DataFrame],
) -> tuple[ValidationRun, Any]:
    """Run the gates and record the run (one transaction with its audit event)."""
    tier = registry.get_model(name).risk_tier
    policy = parse_policy(policy_text, tier=tier)
    run = run_gates(registry, name, version, policy, data)
    record = registry.record_gate_run(
        actor,
        name,
        version,
        policy_name=policy.name,
        policy_sha256=policy.sha256,
        policy_text=policy.text,
        datasets={k: {"sha256": d["sha256"], "rows": d["rows"]} for k, d in run.datasets.items()},
        passed=run.passed,
        failed_gates=list(run.failed_gates),
        report=run.to_dict(),
    )
    return run, record
