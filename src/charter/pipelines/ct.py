"""The continuous-training pipeline: from fresh data to a promoted (or refused) candidate.

A run goes through these steps, in order (:data:`STEPS`)::

    snapshot -> validate_data -> train -> register -> gates -> shadow -> compare -> approval
             -> canary -> promote

* ``snapshot``: load the training data (a CSV/Parquet file or a function returning a DataFrame),
  store it as Parquet in the content-addressed artifact store and record its content hash (the
  registry's :func:`~charter.registry.lineage.frame_hash`). Every later step reads this snapshot,
  never the source again, so a resumed run trains on the same rows.
* ``validate_data``: the snapshot against the champion's feature schema (columns, types, whole
  numbers, missing values, ranges, categories) and the label (present, binary, both classes).
  A failure ends the run ``failed`` with the reasons.
* ``train``: fit the candidate (:mod:`charter.pipelines.training`) on the training split, store
  the fitted model in the artifact store.
* ``register``: register it (``Registry.log_model``) with its lineage. Exactly once: see below.
* ``gates``: run the policy's validation gates on the holdout (and out-of-time) split and record
  the gate run (``validate``), as the automation identity. Failed gates stop the run
  (``stopped``). The gates run on a registered version (the runner reads it from the registry),
  which is why ``register`` comes first.
* ``shadow``: submit the candidate for validation and make it the shadow, then wait (``waiting``)
  until it has scored ``shadow_decisions`` applicants beside the champion.
* ``compare``: the candidate against the champion on those decisions: agreement of decisions,
  and DeLong's test of the AUCs on the decisions whose outcomes have matured. A worse candidate
  loses its shadow and the run is ``stopped``.
* ``approval``: where the model's risk tier requires it (high and medium by default), wait
  (``awaiting_approval``) until an independent validator has recommended the candidate and an
  approver (another person) has approved it, through the registry's workflow. The automation
  never approves.
* ``canary``: start the spec's canary plan as the automation identity.
* ``promote``: wait until the canary is promoted (the run ``succeeded``: the candidate is the
  champion) or rolled back (``rolled_back``). By default each call steps the canary once, as the
  service's timer does.

**Idempotent and resumable.** The run is a ``pipeline_runs`` row found by its idempotency key
(default ``"<model>:<trigger>"``, so one trigger never starts two runs; the key is unique in the
database). Each step writes one ``pipeline_steps`` row (``done``, ``waiting`` or ``failed`` with a
JSON result) in the same transaction as its audit event ``pipeline.<step>`` by
``charter-automation``. A ``done`` step is never run again; calling :func:`run_pipeline` with the
same key (or :func:`resume_pipeline` with the run id) continues where the run stopped, whether it
was waiting or its process died. Steps whose effect is a registry change of its own (register,
gates, shadow, canary) first look for that effect, so a crash between the registry's commit and
the step's commit does not repeat it. One process at a time executes a run: a PostgreSQL advisory
lock (or, on SQLite, a file lock beside the database) held for the call; a second caller gets
``Conflict``.

**Exactly one candidate.** The version's description carries ``pipeline run <run id>``; before
registering, ``register`` looks for a version of the model with that mark (and the spec's
developer as its author) and adopts it instead of registering again.

**Who acts.** Every pipeline event is by ``charter-automation``. The registry makes the author of
a version its developer for segregation of duties: the developer may not validate, approve or
deploy it, and only the developer submits it for validation. So the candidate is registered and
submitted in the name of the spec's ``developer`` (a person with the developer role, accountable
for the pipeline), which lets the automation (not its author) shadow it, start its canary and,
through the canary, promote it; validation and approval stay with people. The ``pipeline.register``
event records ``registered_as``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import math
import tomllib
import uuid
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Row, and_, exc, select
from sqlalchemy.engine import make_url

from charter import audit
from charter.checks import check_int, check_number
from charter.clock import Clock, iso, parse_iso
from charter.entities import (
    Actor,
    AliasName,
    FeatureSpec,
    FeatureType,
    FindingStatus,
    Role,
    Severity,
    Stage,
)
from charter.errors import (
    AuthenticationFailed,
    CharterError,
    Conflict,
    InvalidArgument,
    NotFound,
    StoreUnavailable,
    TransitionNotAllowed,
)
from charter.identity import AUTOMATION_USER
from charter.pipelines import openlineage as ol
from charter.pipelines.training import TrainingSpec, callable_name, load_callable, train_model
from charter.registry import formats
from charter.registry.lineage import frame_hash
from charter.registry.service import Registry, validate_model_name
from charter.serving.routing import CanaryPlan
from charter.storage import jsonutil
from charter.storage.db import Database
from charter.storage.schema import (
    decisions,
    outcomes,
    pipeline_runs,
    pipeline_steps,
    shadow_scores,
)
from charter.validation.policy import parse_policy

STEPS = (
    "snapshot",
    "validate_data",
    "train",
    "register",
    "gates",
    "shadow",
    "compare",
    "approval",
    "canary",
    "promote",
)
STEP_STATUSES = ("done", "waiting", "failed")
RUN_STATUSES = (
    "running",  # created or between steps (also a run whose process died mid-step)
    "waiting",  # for shadow decisions, or for the canary
    "awaiting_approval",  # for a validator's recommendation and an approver's decision
    "succeeded",  # the candidate was promoted to champion
    "failed",  # the pipeline could not do its job (bad data, a training error ...)
    "stopped",  # the candidate was refused (gates, comparison, rejection)
    "rolled_back",  # its canary rolled back
)
TERMINAL = frozenset({"succeeded", "failed", "stopped", "rolled_back"})
LINEAGE_END = {
    "succeeded": "COMPLETE",
    "failed": "FAIL",
    "stopped": "ABORT",
    "rolled_back": "ABORT",
}
SPLIT_METHODS = ("fraction", "date")
DEFAULT_APPROVAL_TIERS = ("high", "medium")
_LOCK_CLASS = 0x4354  # "CT": the advisory-lock class of pipeline runs (two-key form)

SPEC_KEYS = (
    "model", "developer", "label", "positive", "features", "seed", "threshold",
    "shadow_decisions", "data", "training", "validation", "compare", "canary", "approval",
)  # fmt: skip
DATA_KEYS = (
    "path", "function", "id", "max_missing_rate", "max_out_of_range_rate",
    "max_unseen_category_rate", "min_rows",
)  # fmt: skip
VALIDATION_KEYS = ("policy", "policy_text", "split", "holdout", "out_of_time", "date_column")
COMPARE_KEYS = ("min_labels", "max_auc_drop", "alpha", "min_agreement", "require_labels")
APPROVAL_KEYS = ("required_tiers",)


# ------------------------------------------------------------------------------------ the spec
def _keys(data: Any, allowed: Sequence[str], where: str) -> Mapping[str, Any]:
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise InvalidArgument(
            f"{where} must be a table", field=where, remedy=f"write [{where}] with its keys"
        )
    unknown = sorted(str(k) for k in data if k not in allowed)
    if unknown:
        raise InvalidArgument(
            f"unknown key(s) in {where}: {', '.join(unknown)}",
            field=f"{where}.{unknown[0]}",
            remedy=f"use only: {', '.join(allowed)}",
        )
    return data


def _fraction(value: Any, fld: str, *, open_low: bool = False) -> float:
    out = check_number(value, fld, minimum=0.0, maximum=1.0)
    if open_low and out <= 0.0:
        raise InvalidArgument(f"{fld} must be above 0", field=fld, remedy="pass e.g. 0.15")
    return out


@dataclass(frozen=True)
class DataSource:
    """Where the training data comes from: a CSV or Parquet ``path``, a ``function``
    (``module:function``) or a Python ``loader``, each returning every column the pipeline needs
    (features, label, and the date column of a date split)."""

    path: Path | None = None
    function: str | None = None
    loader: Callable[[], pd.DataFrame] | None = None
    dataset_id: str | None = None

    def __post_init__(self) -> None:
        given = [x for x in (self.path, self.function, self.loader) if x is not None]
        if len(given) != 1:
            raise InvalidArgument(
                "the training data needs exactly one of path or function",
                field="data",
                remedy='write [data] path = "applications.parquet", or function = '
                '"my_package.data:load"',
            )
        if self.path is not None:
            p = Path(self.path)
            if p.suffix.lower() not in (".csv", ".parquet", ".pq"):
                raise InvalidArgument(
                    f"data.path {str(p)!r} is neither CSV nor Parquet",
                    field="data.path",
                    remedy="give a .csv or .parquet file, or a function returning a DataFrame",
                )
            object.__setattr__(self, "path", p.expanduser().resolve())
        if self.function is not None:
            load_callable(self.function, "data.function")
        if self.loader is not None and not callable(self.loader):
            raise InvalidArgument("data.loader must be callable", field="data")
        if self.dataset_id is not None and (
            not isinstance(self.dataset_id, str) or not self.dataset_id.strip()
        ):
            raise InvalidArgument("data.id must be text", field="data.id", remedy='"apps@2026-11"')

    @property
    def source(self) -> str:
        """The path, or ``callable:<module>:<function>``."""
        if self.path is not None:
            return str(self.path)
        if self.loader is not None:
            return f"callable:{callable_name(self.loader)}"
        return f"callable:{self.function}"

    @property
    def identifier(self) -> str:
        if self.dataset_id:
            return self.dataset_id
        return self.path.name if self.path is not None else self.source

    def load(self) -> pd.DataFrame:
        try:
            if self.path is not None:
                if not self.path.is_file():
                    raise InvalidArgument(
                        f"no training data at {str(self.path)!r}",
                        field="data.path",
                        remedy="check the path (relative paths are read from the spec's folder)",
                    )
                if self.path.suffix.lower() == ".csv":
                    frame = pd.read_csv(self.path)
                else:
                    frame = pd.read_parquet(self.path)
            else:
                fn = self.loader or load_callable(str(self.function), "data.function")
                frame = fn()
        except CharterError:
            raise
        except Exception as e:
            raise InvalidArgument(
                f"the training data could not be loaded from {self.source}: "
                f"{type(e).__name__}: {e}",
                field="data",
                remedy="check the file or the function that returns the data",
            ) from e
        if not isinstance(frame, pd.DataFrame):
            raise InvalidArgument(
                f"the training data from {self.source} is a {type(frame).__name__}, not a "
                "DataFrame",
                field="data.function",
                remedy="return a pandas DataFrame",
            )
        if frame.empty:
            raise InvalidArgument(f"the training data from {self.source} has no rows", field="data")
        return frame

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.path is not None:
            out["path"] = str(self.path)
        else:
            out["function"] = self.source.removeprefix("callable:")
        if self.dataset_id:
            out["id"] = self.dataset_id
        return out


@dataclass(frozen=True)
class DataChecks:
    """Limits of ``validate_data`` (missing values where the champion had none, values outside
    the champion's training range, categories it never saw) and the fewest rows to train on."""

    max_missing_rate: float = 0.0
    max_out_of_range_rate: float = 0.05
    max_unseen_category_rate: float = 0.01
    min_rows: int = 100

    def __post_init__(self) -> None:
        _fraction(self.max_missing_rate, "data.max_missing_rate")
        _fraction(self.max_out_of_range_rate, "data.max_out_of_range_rate")
        _fraction(self.max_unseen_category_rate, "data.max_unseen_category_rate")
        check_int(self.min_rows, "data.min_rows", minimum=10)

    def to_dict(self) -> dict[str, Any]:
        return {
            "max_missing_rate": float(self.max_missing_rate),
            "max_out_of_range_rate": float(self.max_out_of_range_rate),
            "max_unseen_category_rate": float(self.max_unseen_category_rate),
            "min_rows": int(self.min_rows),
        }


@dataclass(frozen=True)
class SplitRule:
    """How the snapshot is split for the gates. ``fraction``: seeded, stratified by the label;
    ``out_of_time`` is a second random draw (as the demo does when data carry no dates).
    ``date``: the latest ``out_of_time`` share of rows by ``date_column`` is the out-of-time set,
    a seeded ``holdout`` share of the earlier rows the holdout, the rest trains."""

    method: str = "fraction"
    holdout: float = 0.15
    out_of_time: float = 0.15
    date_column: str | None = None

    def __post_init__(self) -> None:
        if self.method not in SPLIT_METHODS:
            raise InvalidArgument(
                f"validation.split {self.method!r} is not one of {', '.join(SPLIT_METHODS)}",
                field="validation.split",
                remedy='use "fraction" (seeded) or "date" (by validation.date_column)',
            )
        h = _fraction(self.holdout, "validation.holdout", open_low=True)
        o = _fraction(self.out_of_time, "validation.out_of_time")
        if h + o >= 0.9:
            raise InvalidArgument(
                f"holdout + out_of_time = {h + o:g} leaves too little to train on",
                field="validation.holdout",
                remedy="keep the two below 0.9 together, e.g. 0.15 and 0.15",
            )
        if self.method == "date" and not self.date_column:
            raise InvalidArgument(
                "a date split needs validation.date_column",
                field="validation.date_column",
                remedy='name the column, e.g. date_column = "application_date"',
            )
        if self.method == "date" and o <= 0.0:
            raise InvalidArgument(
                "a date split needs an out_of_time share above 0",
                field="validation.out_of_time",
                remedy="pass e.g. 0.2",
            )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "split": self.method,
            "holdout": float(self.holdout),
            "out_of_time": float(self.out_of_time),
        }
        if self.date_column:
            out["date_column"] = self.date_column
        return out


@dataclass(frozen=True)
class CompareRule:
    """When a shadowed candidate counts as worse than the champion. With at least
    ``min_labels`` matured outcomes (both classes present) its AUC is compared with the
    champion's on the same applicants (DeLong's paired test, reported with its two-sided
    ``1 - alpha`` interval and one-sided p-value): worse if it trails by more than
    ``max_auc_drop``. Significance alone does not stop a candidate: on paired, highly correlated
    scores DeLong's test finds differences of a thousandth significant, which are no reason to
    keep an older model. Worse also if the share of equal decisions is below ``min_agreement``.
    Without enough outcomes the comparison rests on agreement alone, unless ``require_labels``
    makes it wait for them."""

    min_labels: int = 100
    max_auc_drop: float = 0.02
    alpha: float = 0.05
    min_agreement: float = 0.0
    require_labels: bool = False

    def __post_init__(self) -> None:
        check_int(self.min_labels, "compare.min_labels", minimum=10)
        _fraction(self.max_auc_drop, "compare.max_auc_drop")
        a = _fraction(self.alpha, "compare.alpha", open_low=True)
        if a >= 0.5:
            raise InvalidArgument(
                "compare.alpha must be below 0.5", field="compare.alpha", remedy="e.g. 0.05"
            )
        _fraction(self.min_agreement, "compare.min_agreement")
        if not isinstance(self.require_labels, bool):
            raise InvalidArgument(
                "compare.require_labels must be true or false", field="compare.require_labels"
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            "min_labels": int(self.min_labels),
            "max_auc_drop": float(self.max_auc_drop),
            "alpha": float(self.alpha),
            "min_agreement": float(self.min_agreement),
            "require_labels": bool(self.require_labels),
        }


@dataclass(frozen=True)
class ApprovalRule:
    """The risk tiers whose candidates need a person's approval before their canary."""

    required_tiers: tuple[str, ...] = DEFAULT_APPROVAL_TIERS

    def __post_init__(self) -> None:
        tiers = self.required_tiers
        if isinstance(tiers, str) or not isinstance(tiers, Sequence):
            raise InvalidArgument(
                "approval.required_tiers must be a list of tiers",
                field="approval.required_tiers",
                remedy='write required_tiers = ["high", "medium"]',
            )
        for t in tiers:
            if t not in ("high", "medium", "low"):
                raise InvalidArgument(
                    f"unknown risk tier {t!r} in approval.required_tiers",
                    field="approval.required_tiers",
                    remedy="use high, medium and/or low",
                )
        if "high" not in tiers:
            raise InvalidArgument(
                "a high-risk model's candidate always needs a person's approval",
                field="approval.required_tiers",
                remedy='keep "high" in the list',
            )
        object.__setattr__(self, "required_tiers", tuple(sorted(set(tiers))))

    def to_dict(self) -> dict[str, Any]:
        return {"required_tiers": list(self.required_tiers)}


@dataclass(frozen=True)
class PipelineSpec:
    """What a continuous-training run does, from :meth:`from_toml` / :meth:`from_dict` (strict
    keys; errors name the field) or built in Python.

    ``label`` and ``positive`` default to the validation policy's ``[data]``; ``features`` to the
    champion's feature schema; ``threshold`` to the champion's operating threshold. ``canary`` is
    a :class:`~charter.serving.routing.CanaryPlan` (or its dict)."""

    model: str
    developer: str
    data: DataSource
    training: TrainingSpec
    policy_text: str
    canary: CanaryPlan
    label: str = ""
    positive: str | int | None = None
    features: tuple[str, ...] | None = None
    split: SplitRule = field(default_factory=SplitRule)
    checks: DataChecks = field(default_factory=DataChecks)
    shadow_decisions: int = 200
    compare: CompareRule = field(default_factory=CompareRule)
    approval: ApprovalRule = field(default_factory=ApprovalRule)
    seed: int = 0
    threshold: float | None = None

    def __post_init__(self) -> None:
        validate_model_name(self.model, "model")
        if not isinstance(self.developer, str) or not self.developer.strip():
            raise InvalidArgument(
                "the spec needs the developer accountable for its candidates",
                field="developer",
                remedy='write developer = "dana" (a person with the developer role)',
            )
        if self.developer == AUTOMATION_USER:
            raise InvalidArgument(
                "the developer must be a person, not the automation identity",
                field="developer",
                remedy="name the person accountable for this pipeline's candidates",
            )
        if not isinstance(self.data, DataSource):
            raise InvalidArgument("data must be a DataSource", field="data")
        if not isinstance(self.training, TrainingSpec):
            raise InvalidArgument("training must be a TrainingSpec", field="training")
        if isinstance(self.canary, Mapping):
            object.__setattr__(self, "canary", CanaryPlan.from_dict(self.canary))
        if not isinstance(self.canary, CanaryPlan):
            raise InvalidArgument(
                "canary must be a canary plan",
                field="canary",
                remedy="write [canary] steps = [0.2, 0.5, 1.0], min_decisions = 40, ...",
            )
        if not isinstance(self.policy_text, str) or not self.policy_text.strip():
            raise InvalidArgument(
                "the spec needs a validation policy",
                field="validation.policy",
                remedy='write [validation] policy = "policy.toml"',
            )
        policy = parse_policy(self.policy_text)
        label = self.label or policy.label
        positive = self.positive if self.positive is not None else policy.positive
        if label != policy.label:
            raise InvalidArgument(
                f"label {label!r} is not the policy's label {policy.label!r}",
                field="label",
                remedy="use the same outcome column in the spec and in the policy's [data]",
            )
        if positive != policy.positive:
            raise InvalidArgument(
                f"positive {positive!r} is not the policy's positive {policy.positive!r}",
                field="positive",
                remedy="leave positive out (the policy's is used), or make them agree",
            )
        object.__setattr__(self, "label", label)
        object.__setattr__(self, "positive", positive)
        if self.features is not None:
            feats = self.features
            if isinstance(feats, str) or not all(isinstance(f, str) and f for f in feats):
                raise InvalidArgument(
                    "features must be a list of column names",
                    field="features",
                    remedy='write features = ["income", "age"], or leave it out for the '
                    "champion's features",
                )
            if not feats or len(set(feats)) != len(feats):
                raise InvalidArgument("features must name each column once", field="features")
            if label in feats:
                raise InvalidArgument(f"the label {label!r} cannot be a feature", field="features")
            object.__setattr__(self, "features", tuple(feats))
        if not isinstance(self.split, SplitRule):
            raise InvalidArgument("split must be a SplitRule", field="validation.split")
        check_int(self.shadow_decisions, "shadow_decisions", minimum=1)
        check_int(self.seed, "seed", minimum=0)
        if self.threshold is not None:
            t = check_number(self.threshold, "threshold", minimum=0.0, maximum=1.0)
            if not 0.0 < t < 1.0:
                raise InvalidArgument(
                    "threshold must be strictly between 0 and 1",
                    field="threshold",
                    remedy="e.g. 0.5 (scores at or above it are declined)",
                )

    # -- reading -------------------------------------------------------------------------------
    @classmethod
    def from_toml(cls, path: Path | str) -> PipelineSpec:
        """Read a spec file; relative paths in it are read from the file's folder."""
        p = Path(path)
        try:
            raw = tomllib.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InvalidArgument(
                f"no pipeline spec at {str(p)!r}", field="spec", remedy="check the path"
            ) from None
        except tomllib.TOMLDecodeError as e:
            raise InvalidArgument(
                f"the pipeline spec is not valid TOML: {e}", field="spec", remedy="fix the syntax"
            ) from None
        return cls.from_dict(raw, base_dir=p.parent)

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], *, base_dir: Path | str | None = None
    ) -> PipelineSpec:
        """A spec from its TOML layout (see docs); ``base_dir`` resolves relative paths."""
        top = _keys(data, SPEC_KEYS, "spec")
        base = Path(base_dir) if base_dir is not None else Path.cwd()
        for required in ("model", "developer", "data", "training", "validation", "canary"):
            if required not in top:
                raise InvalidArgument(
                    f"the pipeline spec has no {required}",
                    field=required,
                    remedy=f"add {required} (see docs/pipelines.md)",
                )
        d = _keys(top["data"], DATA_KEYS, "data")
        path = d.get("path")
        function = d.get("function")
        source = DataSource(
            path=(base / str(path)) if isinstance(path, str) else path,
            function=function if isinstance(function, str) or function is None else None,
            loader=function if callable(function) else None,
            dataset_id=d.get("id"),
        )
        checks = DataChecks(
            **{k: d[k] for k in ("max_missing_rate", "max_out_of_range_rate",
                                 "max_unseen_category_rate", "min_rows") if k in d}
        )  # fmt: skip
        v = _keys(top["validation"], VALIDATION_KEYS, "validation")
        if ("policy" in v) == ("policy_text" in v):
            raise InvalidArgument(
                "validation needs exactly one of policy (a file) or policy_text",
                field="validation.policy",
                remedy='write policy = "policy.toml"',
            )
        if "policy" in v:
            policy_path = base / str(v["policy"])
            try:
                policy_text = policy_path.read_text(encoding="utf-8")
            except OSError:
                raise InvalidArgument(
                    f"no validation policy at {str(policy_path)!r}",
                    field="validation.policy",
                    remedy="check the path (relative paths are read from the spec's folder)",
                ) from None
        else:
            policy_text = v["policy_text"]
        split = SplitRule(
            method=str(v.get("split", "fraction")),
            holdout=v.get("holdout", 0.15),
            out_of_time=v.get("out_of_time", 0.15),
            date_column=v.get("date_column"),
        )
        compare = CompareRule(**_keys(top.get("compare"), COMPARE_KEYS, "compare"))
        approval_raw = _keys(top.get("approval"), APPROVAL_KEYS, "approval")
        approval = ApprovalRule(
            **({"required_tiers": approval_raw["required_tiers"]}
               if "required_tiers" in approval_raw else {})
        )  # fmt: skip
        canary_raw = top["canary"]
        if not isinstance(canary_raw, Mapping | CanaryPlan):
            raise InvalidArgument("canary must be a table", field="canary")
        try:
            canary = (
                canary_raw
                if isinstance(canary_raw, CanaryPlan)
                else CanaryPlan.from_dict(canary_raw)
            )
        except InvalidArgument as e:
            raise InvalidArgument(
                f"canary: {e.message}", field=f"canary.{e.field or ''}".rstrip("."),
                remedy=e.remedy,
            ) from None  # fmt: skip
        features = top.get("features")
        return cls(
            model=top["model"],
            developer=top["developer"],
            data=source,
            training=TrainingSpec.from_dict(top["training"]),
            policy_text=policy_text,
            canary=canary,
            label=top.get("label", "") or "",
            positive=top.get("positive"),
            features=tuple(features) if isinstance(features, list | tuple) else features,
            split=split,
            checks=checks,
            shadow_decisions=top.get("shadow_decisions", 200),
            compare=compare,
            approval=approval,
            seed=top.get("seed", 0),
            threshold=top.get("threshold"),
        )

    def to_dict(self) -> dict[str, Any]:
        """Canonical form, stored with the run (the policy by its text)."""
        out: dict[str, Any] = {
            "model": self.model,
            "developer": self.developer,
            "label": self.label,
            "seed": int(self.seed),
            "shadow_decisions": int(self.shadow_decisions),
            "data": {**self.data.to_dict(), **self.checks.to_dict()},
            "training": self.training.to_dict(),
            "validation": {**self.split.to_dict(), "policy_text": self.policy_text},
            "compare": self.compare.to_dict(),
            "canary": self.canary.to_dict(),
            "approval": self.approval.to_dict(),
        }
        if self.positive is not None:
            out["positive"] = self.positive
        if self.features is not None:
            out["features"] = list(self.features)
        if self.threshold is not None:
            out["threshold"] = float(self.threshold)
        return out

    def sha256(self) -> str:
        return hashlib.sha256(jsonutil.dumps(self.to_dict()).encode("utf-8")).hexdigest()

    def labels(self, frame: pd.DataFrame) -> np.ndarray:
        """The 0/1 outcome (1 = ``positive``, the adverse outcome) of ``frame``."""
        col = frame[self.label]
        if self.positive is not None:
            return (col.astype(str) == str(self.positive)).to_numpy(dtype=np.int64)
        return col.astype(np.int64).to_numpy()


# ------------------------------------------------------------------------------------ run records
@dataclass(frozen=True)
class StepRecord:
    """One step of a run: ``done``, ``waiting`` or ``failed``, with its result."""

    step: str
    status: str
    result: Mapping[str, Any]
    started_at: datetime
    finished_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "status": self.status,
            "result": dict(self.result),
            "started_at": iso(self.started_at),
            "finished_at": None if self.finished_at is None else iso(self.finished_at),
        }


@dataclass(frozen=True)
class PipelineRun:
    """A continuous-training run and its steps so far."""

    id: str
    model: str
    idempotency_key: str
    status: str
    candidate_version: int | None
    trigger: str | None
    spec_sha256: str
    created_by: str
    created_at: datetime
    updated_at: datetime
    steps: tuple[StepRecord, ...] = ()

    def step(self, name: str) -> StepRecord | None:
        for s in self.steps:
            if s.step == name:
                return s
        return None

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    @property
    def current_step(self) -> str | None:
        """The first step not done (None when every step is done)."""
        done = {s.step for s in self.steps if s.status == "done"}
        return next((s for s in STEPS if s not in done), None)

    @property
    def reason(self) -> str | None:
        """Why the run waits, failed or stopped (from its last step not done)."""
        for s in reversed(self.steps):
            if s.status != "done":
                r = s.result.get("reason")
                return None if r is None else str(r)
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "model": self.model,
            "idempotency_key": self.idempotency_key,
            "status": self.status,
            "candidate_version": self.candidate_version,
            "trigger": self.trigger,
            "spec_sha256": self.spec_sha256,
            "created_by": self.created_by,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
            "current_step": self.current_step,
            "reason": self.reason,
            "steps": [s.to_dict() for s in self.steps],
        }


def _to_run(r: Row[Any], steps: Sequence[Row[Any]]) -> PipelineRun:
    stored = jsonutil.loads(r.spec)
    order = {s: i for i, s in enumerate(STEPS)}
    recs = sorted(
        (
            StepRecord(
                step=s.step,
                status=s.status,
                result=jsonutil.loads(s.result),
                started_at=parse_iso(s.started_at),
                finished_at=parse_iso(s.finished_at) if s.finished_at else None,
            )
            for s in steps
        ),
        key=lambda x: order.get(x.step, len(order)),
    )
    return PipelineRun(
        id=r.id,
        model=r.model_name,
        idempotency_key=r.idempotency_key,
        status=r.status,
        candidate_version=r.candidate_version,
        trigger=stored.get("trigger"),
        spec_sha256=str(stored.get("spec_sha256", "")),
        created_by=r.created_by,
        created_at=parse_iso(r.created_at),
        updated_at=parse_iso(r.updated_at),
        steps=tuple(recs),
    )


def _read_run(
    conn: Connection, *, run_id: str | None = None, key: str | None = None
) -> PipelineRun | None:
    q = select(pipeline_runs)
    q = (
        q.where(pipeline_runs.c.id == run_id)
        if run_id is not None
        else q.where(pipeline_runs.c.idempotency_key == key)
    )
    r = conn.execute(q).first()
    if r is None:
        return None
    steps = conn.execute(select(pipeline_steps).where(pipeline_steps.c.run_id == r.id)).all()
    return _to_run(r, steps)


def get_pipeline_run(registry: Registry, run_id: str) -> PipelineRun:
    """A run by its id (or by its idempotency key)."""
    with registry.db.read() as conn:
        run = _read_run(conn, run_id=str(run_id)) or _read_run(conn, key=str(run_id))
    if run is None:
        raise NotFound(
            f"no pipeline run {run_id!r}",
            field="run_id",
            remedy="list runs with `charter pipeline status MODEL`",
        )
    return run


def list_pipeline_runs(registry: Registry, model: str | None = None) -> list[PipelineRun]:
    """Runs (of one model, or all), newest first."""
    with registry.db.read() as conn:
        q = select(pipeline_runs).order_by(pipeline_runs.c.created_at.desc())
        if model is not None:
            q = q.where(pipeline_runs.c.model_name == model)
        rows = conn.execute(q).all()
        out = []
        for r in rows:
            steps = conn.execute(
                select(pipeline_steps).where(pipeline_steps.c.run_id == r.id)
            ).all()
            out.append(_to_run(r, steps))
    return out


# ------------------------------------------------------------------------------------ execution
@dataclass(frozen=True)
class _Outcome:
    status: str  # done | waiting | failed
    result: dict[str, Any]
    run_status: str  # the run's status after this step
    candidate_version: int | None = None


def _done(result: dict[str, Any], run_status: str = "running", **kw: Any) -> _Outcome:
    return _Outcome("done", result, run_status, **kw)


def _waiting(reason: str, result: dict[str, Any], run_status: str = "waiting") -> _Outcome:
    """A step that cannot finish yet. ``reason`` says what it waits for, in words that do not
    change while the wait lasts (no counters): a call that finds the same wait writes nothing,
    so a run polled every few minutes does not fill the audit trail. Counts go in ``result``,
    as of the moment the wait began or changed."""
    return _Outcome("waiting", {**result, "reason": reason}, run_status)


def _failed(reason: str, result: dict[str, Any], run_status: str = "failed") -> _Outcome:
    return _Outcome("failed", {**result, "reason": reason}, run_status)


@dataclass
class _Context:
    registry: Registry
    spec: PipelineSpec
    run: PipelineRun
    bot: Actor
    clock: Clock
    transport: ol.LineageTransport
    tick_canary: bool
    cache: dict[str, Any] = field(default_factory=dict)

    @property
    def model(self) -> str:
        return self.spec.model

    def result(self, step: str) -> Mapping[str, Any]:
        rec = self.run.step(step)
        if rec is None or rec.status != "done":  # pragma: no cover - steps run in order
            raise RuntimeError(f"step {step} is not done")
        return rec.result

    @property
    def candidate(self) -> int:
        return int(self.result("register")["version"])

    def developer(self) -> Actor:
        return _developer(self.registry, self.spec)

    # -- the snapshot and its splits, read once per call -------------------------------------
    def frame(self) -> pd.DataFrame:
        if "frame" not in self.cache:
            snap = self.result("snapshot")
            data = self.registry.artifacts.get_bytes(str(snap["artifact_sha256"]))
            frame = pd.read_parquet(io.BytesIO(data))
            if frame_hash(frame) != snap["content_hash"]:  # pragma: no cover - defence
                raise InvalidArgument(
                    "the snapshot read back does not hash to its recorded content hash",
                    field="snapshot",
                    remedy="check the pandas/pyarrow versions; start a new run",
                )
            self.cache["frame"] = frame
        frame_: pd.DataFrame = self.cache["frame"]
        return frame_

    def features(self) -> list[str]:
        return [str(f) for f in self.result("validate_data")["features"]]

    def splits(self) -> dict[str, pd.DataFrame]:
        if "splits" not in self.cache:
            self.cache["splits"] = split_frame(self.frame(), self.spec)
        out: dict[str, pd.DataFrame] = self.cache["splits"]
        return out

    def lineage_inputs(self) -> list[ol.DatasetRef]:
        rec = self.run.step("snapshot")
        if rec is None or rec.status != "done":
            return [ol.training_dataset(self.spec.data.source)]
        cols = [(str(k), _dtype(str(v))) for k, v in rec.result["dtypes"].items()]
        return [
            ol.training_dataset(
                self.spec.data.source, columns=cols, content_hash=str(rec.result["content_hash"])
            )
        ]

    def lineage_outputs(self) -> list[ol.DatasetRef]:
        rec = self.run.step("register")
        if rec is None or rec.status != "done":
            return []
        return [
            ol.model_version_dataset(
                self.model, int(rec.result["version"]), str(rec.result["artifact_sha256"])
            )
        ]


def _developer(registry: Registry, spec: PipelineSpec) -> Actor:
    """The spec's developer, who must be a person with the developer role."""
    try:
        actor = registry.identity.actor(spec.developer)
    except (NotFound, AuthenticationFailed):
        raise InvalidArgument(
            f"the spec's developer {spec.developer!r} is not an active user",
            field="developer",
            remedy="name an existing user with the developer role",
        ) from None
    if actor.is_automation or not actor.has(Role.DEVELOPER):
        raise InvalidArgument(
            f"{spec.developer} is not a person with the developer role",
            field="developer",
            remedy="name the developer accountable for this pipeline (role developer)",
        )
    return actor


def _dtype(name: str) -> Any:
    try:
        return pd.api.types.pandas_dtype(name)
    except TypeError:
        return np.dtype("O")


def split_frame(frame: pd.DataFrame, spec: PipelineSpec) -> dict[str, pd.DataFrame]:
    """Split the snapshot into ``train``, ``holdout`` and (if its share is above 0)
    ``out_of_time`` frames by the spec's rule and seed (the same frame gives the same split)."""
    rule = spec.split
    n = len(frame)
    rng = np.random.default_rng(spec.seed)
    y = spec.labels(frame)
    if rule.method == "date":
        col = str(rule.date_column)
        dates = pd.to_datetime(frame[col], errors="coerce", utc=True)
        order = np.argsort(dates.to_numpy(dtype="datetime64[ns]"), kind="stable")
        n_oot = max(1, round(rule.out_of_time * n))
        oot = np.sort(order[n - n_oot :])
        rest = order[: n - n_oot]
        n_hold = max(1, round(rule.holdout * n))
        hold = np.sort(rng.permutation(rest)[:n_hold])
        train = np.setdiff1d(rest, hold)
    else:
        # Seeded and stratified: each class is cut in the same proportions.
        hold_parts, oot_parts, train_parts = [], [], []
        for cls in (0, 1):
            idx = rng.permutation(np.flatnonzero(y == cls))
            k_h = round(rule.holdout * len(idx))
            k_o = round(rule.out_of_time * len(idx))
            hold_parts.append(idx[:k_h])
            oot_parts.append(idx[k_h : k_h + k_o])
            train_parts.append(idx[k_h + k_o :])
        hold = np.sort(np.concatenate(hold_parts))
        oot = np.sort(np.concatenate(oot_parts))
        train = np.sort(np.concatenate(train_parts))
    out = {"train": frame.iloc[train], "holdout": frame.iloc[hold]}
    if len(oot) > 0:
        out["out_of_time"] = frame.iloc[oot]
    return out


# ------------------------------------------------------------------------------------ the steps
def _step_snapshot(ctx: _Context) -> _Outcome:
    frame = ctx.spec.data.load()
    buf = io.BytesIO()
    try:
        frame.to_parquet(buf, index=False)
    except Exception as e:
        raise InvalidArgument(
            f"the training data cannot be stored as Parquet: {type(e).__name__}: {e}",
            field="data",
            remedy="give every column one type (numbers, text, booleans or dates)",
        ) from e
    data = buf.getvalue()
    sha = ctx.registry.artifacts.put_bytes(data)
    snap = pd.read_parquet(io.BytesIO(data))
    content = frame_hash(snap)
    ctx.cache["frame"] = snap
    return _done(
        {
            "artifact_sha256": sha,
            "content_hash": content,
            "rows": len(snap),
            "columns": [str(c) for c in snap.columns],
            "dtypes": {str(c): str(t) for c, t in snap.dtypes.items()},
            "source": ctx.spec.data.source,
            "dataset_id": ctx.spec.data.identifier,
        }
    )


def _check_feature(col: pd.Series, spec: FeatureSpec, limits: DataChecks) -> list[dict[str, Any]]:
    """The checks of one column against the champion's description of it."""
    out: list[dict[str, Any]] = []
    n = len(col)

    def check(name: str, value: float, limit: float, detail: str = "") -> None:
        out.append({
            "feature": spec.name, "check": name, "value": value, "limit": limit,
            "passed": bool(value <= limit), "detail": detail,
        })  # fmt: skip

    missing = col.isna()
    rate = float(missing.mean()) if n else 0.0
    if not spec.nullable:
        check("missing_rate", rate, limits.max_missing_rate,
              "the champion was trained without missing values here")  # fmt: skip
    present = col[~missing]
    if spec.type in (FeatureType.NUMERIC, FeatureType.INTEGER):
        if pd.api.types.is_bool_dtype(col) or not pd.api.types.is_numeric_dtype(col):
            check("type", 1.0, 0.0, f"expected numbers, found {col.dtype}")
            return out
        values = present.to_numpy(dtype=float)
        if spec.type is FeatureType.INTEGER:
            fractional = float(np.mean(values != np.floor(values))) if values.size else 0.0
            check("whole_numbers", fractional, 0.0, "expected whole numbers")
        lo = -math.inf if spec.minimum is None else spec.minimum
        hi = math.inf if spec.maximum is None else spec.maximum
        outside = float(np.mean((values < lo) | (values > hi))) if values.size else 0.0
        check("out_of_range_rate", outside, limits.max_out_of_range_rate,
              f"champion's training range [{spec.minimum}, {spec.maximum}]")  # fmt: skip
    elif spec.type is FeatureType.CATEGORICAL and spec.categories is not None:
        known = set(spec.categories)
        unseen_mask = ~present.astype(str).isin(known)
        unseen = float(unseen_mask.mean()) if len(present) else 0.0
        examples = sorted(set(present[unseen_mask].astype(str).tolist()))[:5]
        check("unseen_category_rate", unseen, limits.max_unseen_category_rate,
              f"not seen by the champion: {examples}" if examples else "")  # fmt: skip
    elif spec.type is FeatureType.BOOLEAN:
        ok = present.isin([True, False, 0, 1]) if len(present) else pd.Series([], dtype=bool)
        check("type", float((~ok).mean()) if len(present) else 0.0, 0.0, "expected booleans")
    elif spec.type is FeatureType.DATETIME:
        parsed = pd.to_datetime(present, errors="coerce")
        check("type", float(parsed.isna().mean()) if len(present) else 0.0, 0.0,
              "expected dates")  # fmt: skip
    return out


def _step_validate_data(ctx: _Context) -> _Outcome:
    spec = ctx.spec
    frame = ctx.frame()
    m = ctx.registry.get_model(spec.model)
    if m.champion_version is None:
        return _failed(
            f"model {spec.model!r} has no champion: continuous training retrains a model in "
            "service (promote a first version by hand)",
            {},
        )
    champion = ctx.registry.get_version(spec.model, m.champion_version)
    schema = {f.name: f for f in champion.feature_schema}
    features = list(spec.features) if spec.features is not None else list(schema)
    problems: list[str] = []
    checks: list[dict[str, Any]] = []
    needed = [*features, spec.label]
    if spec.split.method == "date":
        needed.append(str(spec.split.date_column))
    missing_cols = [c for c in needed if c not in frame.columns]
    if missing_cols:
        problems.append(f"the data lacks column(s) {', '.join(missing_cols)}")
    if len(frame) < spec.checks.min_rows:
        problems.append(f"{len(frame)} rows, fewer than data.min_rows {spec.checks.min_rows}")
    if spec.label in frame.columns:
        col = frame[spec.label]
        if col.isna().any():
            problems.append(f"{int(col.isna().sum())} rows have no label {spec.label!r}")
        else:
            if spec.positive is None and not set(pd.unique(col).tolist()) <= {0, 1}:
                problems.append(
                    f"the label {spec.label!r} is not 0/1 and the policy names no positive value"
                )
            else:
                y = spec.labels(frame)
                if y.min() == y.max():
                    problems.append(f"the label {spec.label!r} has one class only")
    for name in features:
        if name not in frame.columns:
            continue
        fs = schema.get(name) or FeatureSpec(name, FeatureType.CATEGORICAL, nullable=True)
        for c in _check_feature(frame[name], fs, spec.checks):
            checks.append(c)
            if not c["passed"]:
                problems.append(
                    f"{name}: {c['check']} {c['value']:.4g} > {c['limit']:g}"
                    + (f" ({c['detail']})" if c["detail"] else "")
                )
    result = {
        "champion_version": champion.version,
        "features": features,
        "rows": len(frame),
        "checks": checks,
        "failed_checks": sum(not c["passed"] for c in checks),
    }
    if problems:
        more = f"; and {len(problems) - 5} more" if len(problems) > 5 else ""
        shown = "; ".join(problems[:5]) + more
        return _failed(f"the training data failed validation: {shown}", result)
    return _done(result)


def _step_train(ctx: _Context) -> _Outcome:
    spec = ctx.spec
    parts = ctx.splits()
    features = ctx.features()
    train = parts["train"]
    trained = train_model(spec.training, train[features], spec.labels(train), seed=spec.seed)
    serialized = formats.serialize_model(trained.model)
    sha = ctx.registry.artifacts.put_bytes(serialized.data)
    auc = None
    hold = parts["holdout"]
    y_hold = spec.labels(hold)
    if 0 < y_hold.sum() < len(y_hold):
        from charter.stats.classification import roc_auc

        scores = np.asarray(trained.model.predict_proba(hold[features]))[:, 1]
        auc = float(roc_auc(y_hold, scores))
    return _done(
        {
            "model_artifact_sha256": sha,
            "format": serialized.format,
            "model_class": serialized.model_class,
            "training": trained.description,
            "training_seconds": round(trained.seconds, 6),
            "rows": {k: len(v) for k, v in parts.items()},
            "auc_holdout": auc,
        }
    )


def _marker(run_id: str) -> str:
    return f"pipeline run {run_id}"


def _registered_by_run(ctx: _Context) -> Any:
    mark = _marker(ctx.run.id)
    found = [
        v
        for v in ctx.registry.list_versions(ctx.model)
        if mark in v.description and v.author == ctx.spec.developer
    ]
    return found[0] if found else None


def _step_register(ctx: _Context) -> _Outcome:
    spec = ctx.spec
    existing = _registered_by_run(ctx)
    reused = existing is not None
    if existing is None:
        trained = ctx.result("train")
        data = ctx.registry.artifacts.get_bytes(str(trained["model_artifact_sha256"]))
        model = formats.load_model(
            data, str(trained["format"]), trusted_types=ctx.registry.trusted_types
        )
        train = ctx.splits()["train"]
        features = ctx.features()
        snap = ctx.result("snapshot")
        threshold = spec.threshold
        if threshold is None:
            champion = ctx.registry.get_version(
                spec.model, int(ctx.result("validate_data")["champion_version"])
            )
            threshold = champion.decision_threshold
        metrics = {} if trained["auc_holdout"] is None else {"auc_holdout": trained["auc_holdout"]}
        existing = ctx.registry.log_model(
            ctx.bot,
            spec.model,
            model,
            X=train[features],
            y=spec.labels(train),
            dataset_id=str(snap["dataset_id"]),
            metrics=metrics,
            training_seconds=float(trained["training_seconds"]),
            description=f"Continuous-training candidate from {_marker(ctx.run.id)}: "
            f"{trained['training']} on {snap['dataset_id']} (snapshot {snap['content_hash'][:12]}, "
            f"seed {spec.seed})",
            threshold=threshold,
            on_behalf_of=ctx.developer().username,
        )
    v = existing
    td = v.training_data
    return _done(
        {
            "version": v.version,
            "artifact_sha256": v.artifact_sha256,
            "artifact_format": v.artifact_format,
            "training_data_hash": None if td is None else td.content_hash,
            "registered_as": v.author,
            "adopted_after_crash": reused,
        },
        candidate_version=v.version,
    )


def _step_gates(ctx: _Context) -> _Outcome:
    from charter.validation.runner import validate

    spec = ctx.spec
    version = ctx.candidate
    tier = ctx.registry.get_model(spec.model).risk_tier
    policy = parse_policy(spec.policy_text, tier=tier)
    earlier = [
        g
        for g in ctx.registry.list_gate_runs(spec.model, version)
        if g.run_by == AUTOMATION_USER and g.policy_sha256 == policy.sha256
    ]
    if earlier:
        rec = earlier[-1]
        passed, failed, gate_run_id, report_sha = (
            rec.passed, list(rec.failed_gates), rec.id, rec.report_sha256
        )  # fmt: skip
    else:
        run_, rec2 = validate(ctx.registry, ctx.bot, spec.model, version, spec.policy_text,
                              ctx.splits())  # fmt: skip
        passed, failed, gate_run_id, report_sha = (
            run_.passed, list(run_.failed_gates), rec2.id, rec2.report_sha256
        )  # fmt: skip
    result = {
        "gate_run_id": gate_run_id,
        "passed": passed,
        "failed_gates": failed,
        "policy_name": policy.name,
        "policy_sha256": policy.sha256,
        "report_sha256": report_sha,
    }
    if not passed:
        return _failed(
            f"{spec.model} v{version} failed the gates of policy {policy.name}: "
            f"{', '.join(failed)} (gate run #{gate_run_id})",
            result,
            run_status="stopped",
        )
    return _done(result)


def _alias_holder(registry: Registry, model: str, alias: str) -> int | None:
    try:
        return registry.resolve(model, alias).version
    except NotFound:
        return None


def _shadow_rows(db: Database, model: str, version: int, as_of: datetime) -> list[Any]:
    """The candidate's shadow scores beside the champion's decisions, with the outcomes recorded
    by ``as_of``."""
    arrived = and_(outcomes.c.decision_id == decisions.c.id, outcomes.c.recorded_at <= iso(as_of))
    q = (
        select(
            shadow_scores.c.score.label("shadow_score"),
            shadow_scores.c.decision.label("shadow_decision"),
            decisions.c.score.label("score"),
            decisions.c.decision.label("decision"),
            outcomes.c.label.label("label"),
        )
        .join(decisions, decisions.c.id == shadow_scores.c.decision_id)
        .outerjoin(outcomes, arrived)
        .where(
            shadow_scores.c.model_name == model,
            shadow_scores.c.version == version,
            decisions.c.variant == "champion",
        )
    )
    with db.read() as conn:
        return [r for r in conn.execute(q)]


def _step_shadow(ctx: _Context) -> _Outcome:
    spec = ctx.spec
    version = ctx.candidate
    reg = ctx.registry
    v = reg.get_version(spec.model, version)
    if v.stage is Stage.DEVELOPMENT:
        gate_run = ctx.result("gates")["gate_run_id"]
        reg.transition(
            ctx.bot, spec.model, version, "validation",
            comment=f"submitted by {_marker(ctx.run.id)} after passing the gates "
            f"(gate run #{gate_run})",
        )  # fmt: skip
    elif v.stage not in (Stage.VALIDATION, Stage.APPROVED, Stage.DEPLOYED):
        return _failed(f"v{version} is {v.stage.value}", {}, run_status="stopped")
    holder = _alias_holder(reg, spec.model, "shadow")
    earlier = ctx.run.step("shadow")
    if holder != version:
        if earlier is not None and earlier.result.get("shadow_set"):
            return _failed(
                f"the shadow alias was taken from v{version} while it waited "
                f"(now held by {'nobody' if holder is None else f'v{holder}'})",
                {"shadow_set": True},
                run_status="stopped",
            )
        if holder is not None:
            return _waiting(
                f"v{holder} holds the shadow alias; v{version} waits for it to be free",
                {"shadow_set": False, "decisions": 0, "needed": spec.shadow_decisions},
            )
        reg.set_alias(ctx.bot, spec.model, version, AliasName.SHADOW, expected=None,
                      comment=f"shadow of {_marker(ctx.run.id)}")  # fmt: skip
    n = len(_shadow_rows(reg.db, spec.model, version, ctx.clock()))
    result = {"shadow_set": True, "decisions": n, "needed": spec.shadow_decisions}
    if n < spec.shadow_decisions:
        return _waiting(
            f"v{version} is in shadow until it has scored {spec.shadow_decisions} applicants "
            "beside the champion",
            result,
        )
    return _done(result)


def compare_shadow(rows: Sequence[Any], rule: CompareRule) -> dict[str, Any]:
    """The comparison of ``compare`` on rows of (shadow_score, shadow_decision, score,
    decision, label or None): a dict with ``verdict`` ``worse``, ``not_worse`` or
    ``insufficient_labels``, the agreement and, with enough labels, DeLong's test."""
    from charter.stats.experiments import delong_test

    n = len(rows)
    agree = sum(r.shadow_decision == r.decision for r in rows)
    agreement = agree / n if n else 0.0
    labelled = [r for r in rows if r.label is not None]
    y = np.array([int(r.label) for r in labelled], dtype=np.int64)
    out: dict[str, Any] = {
        "decisions": n,
        "agreement": agreement,
        "labelled": len(labelled),
        "min_labels": rule.min_labels,
    }
    reasons: list[str] = []
    worse = False
    if agreement < rule.min_agreement:
        worse = True
        reasons.append(f"agreement {agreement:.3f} < min_agreement {rule.min_agreement:g}")
    enough = len(labelled) >= rule.min_labels and 2 <= int(y.sum()) <= len(y) - 2
    if enough:
        sa = np.array([r.score for r in labelled], dtype=np.float64)
        sb = np.array([r.shadow_score for r in labelled], dtype=np.float64)
        two = delong_test(y, sa, sb, confidence=1.0 - rule.alpha)
        low = delong_test(y, sa, sb, alternative="smaller")
        out["auc"] = {
            "champion": two.auc_a,
            "candidate": two.auc_b,
            "difference": two.difference,
            "p_value_two_sided": two.p_value,
            "p_value_worse": low.p_value,
            "ci": [two.ci_low, two.ci_high],
        }
        if two.difference < -rule.max_auc_drop:
            worse = True
            reasons.append(
                f"AUC {two.auc_b:.4f} trails the champion's {two.auc_a:.4f} by "
                f"{-two.difference:.4f} > max_auc_drop {rule.max_auc_drop:g} (DeLong one-sided "
                f"p = {low.p_value:.3g})"
            )
    out["verdict"] = "worse" if worse else ("not_worse" if enough else "insufficient_labels")
    out["reasons"] = reasons
    return out


def _step_compare(ctx: _Context) -> _Outcome:
    spec = ctx.spec
    version = ctx.candidate
    rows = _shadow_rows(ctx.registry.db, spec.model, version, ctx.clock())
    result = compare_shadow(rows, spec.compare)
    if result["verdict"] == "worse":
        if _alias_holder(ctx.registry, spec.model, "shadow") == version:
            ctx.registry.remove_alias(
                ctx.bot, spec.model, AliasName.SHADOW,
                comment=f"{_marker(ctx.run.id)}: worse than the champion",
            )  # fmt: skip
        return _failed(
            f"v{version} is worse than the champion on {result['decisions']} shadow decisions: "
            + "; ".join(result["reasons"]),
            result,
            run_status="stopped",
        )
    if result["verdict"] == "insufficient_labels" and spec.compare.require_labels:
        return _waiting(
            f"the comparison waits for {spec.compare.min_labels} shadow decisions with matured "
            "outcomes",
            result,
        )
    return _done(result)


def _step_approval(ctx: _Context) -> _Outcome:
    spec = ctx.spec
    version = ctx.candidate
    reg = ctx.registry
    tier = reg.get_model(spec.model).risk_tier.value
    required = tier in spec.approval.required_tiers
    v = reg.get_version(spec.model, version)
    vals = reg.list_validations(spec.model, version)
    apps = reg.list_approvals(spec.model, version)
    evidence: dict[str, Any] = {
        "tier": tier,
        "required": required,
        "validations": [
            {"validator": r.validator, "recommendation": r.recommendation, "id": r.id} for r in vals
        ],
        "approvals": [
            {"approver": a.approver, "decision": a.decision.value, "id": a.id} for a in apps
        ],
    }
    if v.stage in (Stage.APPROVED, Stage.DEPLOYED):
        people = [
            a for a in apps if a.approver != AUTOMATION_USER and a.decision.value != "rejected"
        ]
        if not people:  # pragma: no cover - the registry lets only approvers approve
            return _failed(f"v{version} is approved without a person's approval", evidence)
        return _done(evidence)
    if v.stage is Stage.DEVELOPMENT:
        last = apps[-1] if apps else None
        why = (
            f"the approver {last.approver} rejected v{version}: {last.comment}"
            if last is not None and last.decision.value == "rejected"
            else f"v{version} was sent back to development"
        )
        if _alias_holder(reg, spec.model, "shadow") == version:
            reg.remove_alias(ctx.bot, spec.model, AliasName.SHADOW,
                             comment=f"{_marker(ctx.run.id)}: {why}")  # fmt: skip
        return _failed(why, evidence, run_status="stopped")
    if v.stage is Stage.RETIRED:
        return _failed(f"v{version} was retired", evidence, run_status="stopped")
    waiting_for = (
        "an independent validator's recommendation"
        if not any(r.recommendation != "reject" for r in vals)
        else "an approver's decision"
    )
    if not required:
        evidence["note"] = (
            f"tier {tier} does not require a person's approval in this spec, but the registry "
            "puts only approved versions into service; an approver must still approve"
        )
    return _waiting(
        f"v{version} awaits {waiting_for} (risk tier {tier})", evidence, "awaiting_approval"
    )


def _step_canary(ctx: _Context) -> _Outcome:
    spec = ctx.spec
    version = ctx.candidate
    reg = ctx.registry
    current = reg.canary(spec.model)
    if current is not None and int(current["version"]) == version:
        return _done({"plan": current["plan"], "state": current["state"], "started": False})
    if current is not None and current["state"].get("status") == "running":
        return _waiting(
            f"a canary of v{current['version']} is running; v{version} waits for it to end",
            {"plan": spec.canary.to_dict()},
        )
    blocking = [
        f.id
        for f in reg.list_findings(spec.model)
        if f.severity is Severity.HIGH
        and f.status is not FindingStatus.CLOSED
        and (f.version is None or f.version == version)
    ]
    if blocking:
        ids = ", ".join(f"#{i}" for i in blocking)
        return _waiting(
            f"high-severity finding {ids} must be closed before v{version} goes to canary",
            {"findings": blocking},
        )
    if _alias_holder(reg, spec.model, "shadow") == version:
        reg.remove_alias(ctx.bot, spec.model, AliasName.SHADOW,
                         comment=f"{_marker(ctx.run.id)}: shadow ends, canary starts")  # fmt: skip
    try:
        payload = reg.start_canary(ctx.bot, spec.model, version, spec.canary)
    except TransitionNotAllowed as e:
        return _failed(f"the canary of v{version} was refused: {e.message}", {},
                       run_status="stopped")  # fmt: skip
    return _done({"plan": payload["plan"], "champion": payload["champion"], "started": True})


def _step_promote(ctx: _Context) -> _Outcome:
    from charter.serving.canary import tick

    spec = ctx.spec
    version = ctx.candidate
    reg = ctx.registry
    current = reg.canary(spec.model)
    if current is None or int(current["version"]) != version:
        if reg.get_model(spec.model).champion_version == version:
            return _done({"champion": version}, run_status="succeeded")
        return _failed(f"the canary of v{version} was replaced by another", {})
    if current["state"].get("status") == "running" and ctx.tick_canary:
        tick(reg, spec.model, ctx.clock())
        current = reg.canary(spec.model) or current
    state = current["state"]
    status = state.get("status")
    result = {"state": state, "share": current["share"]}
    if status == "promoted":
        champion = reg.get_model(spec.model).champion_version
        return _done({**result, "champion": champion}, run_status="succeeded")
    if status == "rolled_back":
        return _failed(f"the canary of v{version} rolled back: {state.get('reason', '')}",
                       result, run_status="rolled_back")  # fmt: skip
    return _waiting(
        f"the canary of v{version} is running (plan steps {list(spec.canary.steps)})", result
    )


_HANDLERS: dict[str, Callable[[_Context], _Outcome]] = {
    "snapshot": _step_snapshot,
    "validate_data": _step_validate_data,
    "train": _step_train,
    "register": _step_register,
    "gates": _step_gates,
    "shadow": _step_shadow,
    "compare": _step_compare,
    "approval": _step_approval,
    "canary": _step_canary,
    "promote": _step_promote,
}


# ------------------------------------------------------------------------------------ persistence
def _audit_result(step: str, result: Mapping[str, Any]) -> dict[str, Any]:
    """What the audit event carries of a step's result (the data checks only as a count)."""
    out = dict(result)
    if step == "validate_data":
        out.pop("checks", None)
    return out


def _record(ctx: _Context, step: str, outcome: _Outcome) -> bool:
    """Write the step's row and the run's status with the ``pipeline.<step>`` audit event, in
    one transaction. Returns False (and writes nothing) when nothing changed: a step still
    waiting for the same thing."""
    reg = ctx.registry
    run_id = ctx.run.id
    changed = True

    def body(conn: Connection) -> None:
        nonlocal changed
        now = iso(ctx.clock())
        prior = conn.execute(
            select(pipeline_steps).where(
                pipeline_steps.c.run_id == run_id, pipeline_steps.c.step == step
            )
        ).first()
        run_row = conn.execute(select(pipeline_runs).where(pipeline_runs.c.id == run_id)).one()
        if run_row.status in TERMINAL:
            raise Conflict(
                f"pipeline run {run_id} ended ({run_row.status}) while this call worked on it",
                remedy="read its status; start a new run if needed",
            )
        if prior is not None and prior.status == "done":
            raise Conflict(f"step {step} of run {run_id} is done already", remedy="resume again")
        same = (
            prior is not None
            and prior.status == outcome.status == "waiting"
            and run_row.status == outcome.run_status
            and jsonutil.loads(prior.result).get("reason") == outcome.result.get("reason")
        )
        if same:
            changed = False
            return
        text = jsonutil.dumps(outcome.result)
        finished = None if outcome.status == "waiting" else now
        if prior is None:
            conn.execute(
                pipeline_steps.insert().values(
                    run_id=run_id, step=step, status=outcome.status, result=text,
                    started_at=now, finished_at=finished,
                )
            )  # fmt: skip
        else:
            conn.execute(
                pipeline_steps.update()
                .where(pipeline_steps.c.run_id == run_id, pipeline_steps.c.step == step)
                .values(status=outcome.status, result=text, finished_at=finished)
            )
        values: dict[str, Any] = {"status": outcome.run_status, "updated_at": now}
        if outcome.candidate_version is not None:
            values["candidate_version"] = outcome.candidate_version
        conn.execute(pipeline_runs.update().where(pipeline_runs.c.id == run_id).values(**values))
        audit.append(
            conn,
            actor=ctx.bot,
            role=Role.SERVICE.value,
            action=f"pipeline.{step}",
            subject=audit.Subject("pipeline_run", run_id, ctx.model),
            payload={
                "run_id": run_id,
                "step": step,
                "status": outcome.status,
                "run_status": outcome.run_status,
                "candidate_version": outcome.candidate_version
                if outcome.candidate_version is not None
                else ctx.run.candidate_version,
                "result": _audit_result(step, outcome.result),
            },
            clock=ctx.clock,
        )

    with reg.db.write() as conn:
        body(conn)
    return changed


def _refresh(ctx: _Context) -> None:
    with ctx.registry.db.read() as conn:
        run = _read_run(conn, run_id=ctx.run.id)
    assert run is not None
    ctx.run = run


def _emit(ctx: _Context, event_type: str, facets: dict[str, Any]) -> None:
    ctx.transport.emit(
        ol.run_event(
            event_type,
            run_id=ctx.run.id,
            model=ctx.model,
            event_time=ctx.clock(),
            inputs=ctx.lineage_inputs(),
            outputs=ctx.lineage_outputs(),
            run_facets=facets,
        )
    )


def _emit_step(ctx: _Context, step: str, outcome: _Outcome) -> None:
    facets: dict[str, Any] = {
        "charter_pipeline": ol.pipeline_facet(
            step=step,
            stepStatus=outcome.status,
            runStatus=outcome.run_status,
            candidateVersion=ctx.run.candidate_version,
            idempotencyKey=ctx.run.idempotency_key,
            **({"reason": str(outcome.result["reason"])} if "reason" in outcome.result else {}),
        )
    }
    if outcome.run_status in TERMINAL:
        if outcome.run_status == "failed":
            facets["errorMessage"] = ol.error_facet(str(outcome.result.get("reason", "failed")))
        _emit(ctx, LINEAGE_END[outcome.run_status], facets)
    else:
        _emit(ctx, "RUNNING", facets)


_TRANSIENT = (StoreUnavailable, Conflict)


def _execute(ctx: _Context, before_commit: Callable[[str], None] | None) -> None:
    for step in STEPS:
        rec = ctx.run.step(step)
        if rec is not None and rec.status == "done":
            continue
        try:
            outcome = _HANDLERS[step](ctx)
        except _TRANSIENT:
            raise
        except CharterError as e:
            outcome = _failed(e.message, {"error": e.to_dict()})
        if before_commit is not None:
            before_commit(step)
        changed = _record(ctx, step, outcome)
        _refresh(ctx)
        if changed:
            _emit_step(ctx, step, outcome)
        if outcome.status != "done" or outcome.run_status in TERMINAL:
            return


@contextlib.contextmanager
def _exclusive(db: Database, run_id: str) -> Iterator[None]:
    """Hold the run for this call: one process at a time executes a run."""
    busy = Conflict(
        f"pipeline run {run_id} is being executed by another process",
        field="run_id",
        remedy="wait for that call to return, then resume the run again",
    )
    if db.dialect == "postgresql":
        key = zlib.crc32(run_id.encode("ascii")) - 2**31
        conn = db.engine.connect()
        try:
            got = conn.exec_driver_sql(
                f"SELECT pg_try_advisory_lock({_LOCK_CLASS}, {key})"
            ).scalar()
            conn.commit()
            if not got:
                raise busy
            try:
                yield
            finally:
                conn.exec_driver_sql(f"SELECT pg_advisory_unlock({_LOCK_CLASS}, {key})")
                conn.commit()
        finally:
            conn.close()
        return
    database = make_url(db.url).database
    if not database or database == ":memory:":
        yield
        return
    folder = Path(database).resolve().parent / "pipeline-locks"
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / f"{uuid.UUID(run_id)}.lock").open("a+") as f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise busy from None
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def _open_run(
    registry: Registry,
    spec: PipelineSpec,
    bot: Actor,
    key: str,
    trigger: str | None,
    clock: Clock,
) -> tuple[PipelineRun, bool]:
    """The run with ``key``, created (with its ``pipeline.started`` event) if there is none."""
    spec_sha = spec.sha256()
    stored = jsonutil.dumps({"spec": spec.to_dict(), "spec_sha256": spec_sha, "trigger": trigger})
    run_id = str(uuid.uuid4())

    def body(conn: Connection) -> tuple[PipelineRun, bool]:
        existing = _read_run(conn, key=key)
        if existing is not None:
            return existing, False
        registry._model_row(conn, spec.model)
        now = iso(clock())
        conn.execute(
            pipeline_runs.insert().values(
                id=run_id, model_name=spec.model, idempotency_key=key, status="running",
                spec=stored, candidate_version=None, created_by=bot.username, created_at=now,
                updated_at=now,
            )
        )  # fmt: skip
        audit.append(
            conn,
            actor=bot,
            role=Role.SERVICE.value,
            action="pipeline.started",
            subject=audit.Subject("pipeline_run", run_id, spec.model),
            payload={
                "run_id": run_id,
                "idempotency_key": key,
                "trigger": trigger,
                "spec_sha256": spec_sha,
                "developer": spec.developer,
                "data": spec.data.source,
                "training": spec.training.to_dict(),
                "policy_sha256": hashlib.sha256(spec.policy_text.encode("utf-8")).hexdigest(),
                "shadow_decisions": spec.shadow_decisions,
                "canary": spec.canary.to_dict(),
            },
            clock=clock,
        )
        created = _read_run(conn, run_id=run_id)
        assert created is not None
        return created, True

    try:
        with registry.db.write() as conn:
            run, created = body(conn)
    except exc.IntegrityError:  # another caller created it between our read and our insert
        with registry.db.read() as conn:
            found = _read_run(conn, key=key)
        if found is None:  # pragma: no cover - the conflict was about something else
            raise
        run, created = found, False
    if run.spec_sha256 != spec_sha:
        raise Conflict(
            f"pipeline run {run.id} ({key!r}) was started with another spec",
            field="idempotency_key",
            remedy="resume it with its own spec (resume_pipeline), or use a new idempotency key",
            details={"run_id": run.id, "spec_sha256": run.spec_sha256},
        )
    return run, created


def _check_key(key: str) -> str:
    if not isinstance(key, str) or not key.strip() or len(key) > 200:
        raise InvalidArgument(
            "the idempotency key must be text of 1 to 200 characters",
            field="idempotency_key",
            remedy='use e.g. "<model>:<trigger id>"',
        )
    return key


def run_pipeline(
    registry: Registry,
    spec: PipelineSpec,
    *,
    trigger: str | None = None,
    idempotency_key: str | None = None,
    clock: Clock | None = None,
    lineage: ol.LineageTransport | None = None,
    tick_canary: bool = True,
    before_commit: Callable[[str], None] | None = None,
) -> PipelineRun:
    """Start the run of ``spec`` for ``idempotency_key``, or continue it, as far as it can go now.

    The key defaults to ``"<model>:<trigger>"`` when a ``trigger`` (e.g. a retraining trigger's
    id) is given, else to a new one (every call a new run). A call on a run that ended returns it
    unchanged; a run that waits returns with status ``waiting`` or ``awaiting_approval`` and
    continues on the next call. ``lineage`` receives the OpenLineage run events (default: JSON
    lines under ``$CHARTER_HOME/lineage``). ``tick_canary`` steps a running canary once per call,
    as the service's timer does. ``before_commit`` (for tests) is called with each step's name
    after its effect and before its row is committed; raising there simulates a crash.

    Raises ``Conflict`` if another process is executing the run, or if the key belongs to a run
    of another spec."""
    if not isinstance(spec, PipelineSpec):
        raise InvalidArgument("spec must be a PipelineSpec", field="spec",
                              remedy="read it with PipelineSpec.from_toml(path)")  # fmt: skip
    if trigger is not None and (not isinstance(trigger, str) or not trigger.strip()):
        raise InvalidArgument("trigger must be text", field="trigger", remedy="e.g. '42'")
    key = _check_key(
        idempotency_key
        if idempotency_key is not None
        else (f"{spec.model}:{trigger}" if trigger is not None else f"{spec.model}:{uuid.uuid4()}")
    )
    registry.get_model(spec.model)
    _developer(registry, spec)
    bot = registry.identity.actor(AUTOMATION_USER)
    clk = clock if clock is not None else registry.clock
    transport = lineage if lineage is not None else ol.default_transport()
    run, created = _open_run(registry, spec, bot, key, trigger, clk)
    ctx = _Context(registry, spec, run, bot, clk, transport, tick_canary)
    if created:
        _emit(ctx, "START", {
            "charter_pipeline": ol.pipeline_facet(
                step=None, runStatus="running", idempotencyKey=key, trigger=trigger,
                specSha256=spec.sha256(),
            )
        })  # fmt: skip
    if run.terminal:
        return run
    with _exclusive(registry.db, run.id):
        _refresh(ctx)
        if not ctx.run.terminal:
            _execute(ctx, before_commit)
    return get_pipeline_run(registry, run.id)


def resume_pipeline(
    registry: Registry,
    run_id: str,
    *,
    spec: PipelineSpec | None = None,
    clock: Clock | None = None,
    lineage: ol.LineageTransport | None = None,
    tick_canary: bool = True,
    before_commit: Callable[[str], None] | None = None,
) -> PipelineRun:
    """Continue run ``run_id`` (or an idempotency key) with the spec it was started with (read
    back from the run; pass ``spec`` when it trains or loads data with Python callables)."""
    run = get_pipeline_run(registry, run_id)
    if spec is None:
        with registry.db.read() as conn:
            stored = jsonutil.loads(
                conn.execute(
                    select(pipeline_runs.c.spec).where(pipeline_runs.c.id == run.id)
                ).scalar_one()
            )
        try:
            spec = PipelineSpec.from_dict(stored["spec"])
        except InvalidArgument as e:
            raise InvalidArgument(
                f"the stored spec of run {run.id} cannot be rebuilt: {e.message}",
                field="spec",
                remedy="pass the spec the run was started with (spec=...)",
            ) from e
    return run_pipeline(
        registry,
        spec,
        idempotency_key=run.idempotency_key,
        trigger=run.trigger,
        clock=clock,
        lineage=lineage,
        tick_canary=tick_canary,
        before_commit=before_commit,
    )


def scheduled_runner(registry: Registry, model: Any, trigger: Any) -> PipelineRun | None:
    """What ``charter scheduler`` does for one retraining trigger of a model that has a pipeline
    spec (``model.pipeline``, a TOML path): start the trigger's run (key
    ``"<model>:trigger-<id>"``) and link it to the trigger, or resume it while it is unfinished.
    Returns the run, or None when there is nothing to do: no spec, the run ended, another run of
    the model is still going (one candidate at a time: this trigger starts later), or another
    process is executing the run."""
    from charter.monitoring import store

    spec_path = getattr(model, "pipeline", None)
    if spec_path is None:
        return None
    try:
        if trigger.pipeline_run_id is not None:
            run = get_pipeline_run(registry, str(trigger.pipeline_run_id))
            if run.terminal:
                return None
            return resume_pipeline(registry, run.id)
        spec = PipelineSpec.from_toml(spec_path)
        key = f"{spec.model}:trigger-{trigger.id}"
        busy = [
            r for r in list_pipeline_runs(registry, spec.model)
            if not r.terminal and r.idempotency_key != key
        ]  # fmt: skip
        if busy:
            return None
        run = run_pipeline(registry, spec, trigger=f"trigger-{trigger.id}")
        store.link_trigger(registry.db, int(trigger.id), run.id)
        return run
    except Conflict:
        return None


__all__ = [
    "RUN_STATUSES",
    "STEPS",
    "ApprovalRule",
    "CompareRule",
    "DataChecks",
    "DataSource",
    "PipelineRun",
    "PipelineSpec",
    "SplitRule",
    "StepRecord",
    "compare_shadow",
    "get_pipeline_run",
    "list_pipeline_runs",
    "resume_pipeline",
    "run_pipeline",
    "scheduled_runner",
    "split_frame",
]
