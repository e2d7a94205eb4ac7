"""Explanations: per-decision Shapley values, counterfactuals and global importance.

* :mod:`charter.explain.shapley`: model-agnostic Shapley values of the log-odds against a
  background (:func:`sampling_shapley`, the :func:`exact_shapley` oracle, and backgrounds drawn
  from a reference profile). The compiled scorers (:mod:`charter.serving.compiled`) use it for
  models without exact contributions.
* :mod:`charter.explain.counterfactual`: the cheapest feasible change that flips a decline.
* :mod:`charter.explain.global_importance`: importance, dependence and reason stability for
  reports.
* :mod:`charter.explain.decision`: "why was this applicant declined?" for a logged decision
  (imported on its own: it needs the registry).
"""

from __future__ import annotations

from charter.explain.counterfactual import Change, Counterfactual, counterfactual
from charter.explain.global_importance import (
    Dependence,
    DependenceBin,
    FeatureImportance,
    FeatureStability,
    ReasonStability,
    dependence,
    importance,
    reason_stability,
)
from charter.explain.shapley import (
    ShapleyValues,
    background_from_profile,
    exact_shapley,
    sample_background,
    sampling_shapley,
    shapley_values,
)

__all__ = [
    "Change",
    "Counterfactual",
    "Dependence",
    "DependenceBin",
    "FeatureImportance",
    "FeatureStability",
    "ReasonStability",
    "ShapleyValues",
    "background_from_profile",
    "counterfactual",
    "dependence",
    "exact_shapley",
    "importance",
    "reason_stability",
    "sample_background",
    "sampling_shapley",
    "shapley_values",
]
