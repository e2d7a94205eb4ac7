"""How a continuous-training pipeline trains its candidate: an estimator spec or a function.

Two ways, exactly one per spec:

* **An estimator spec** (from TOML or Python)::

      [training]
      estimator = "sklearn.linear_model.LogisticRegression"
      params = { C = 0.5, max_iter = 1000 }
      preprocess = "auto"          # or "none"

  The class is imported only from an allow-listed library (:data:`ESTIMATOR_ROOTS`: scikit-learn,
  XGBoost, LightGBM), so a spec file cannot make Charter import arbitrary code. ``params`` go to
  the constructor as they are; a ``random_state`` the estimator takes and the spec does not set
  is the pipeline's seed. With ``preprocess = "auto"`` the estimator is the last step of a
  scikit-learn ``Pipeline`` whose ``ColumnTransformer`` standardises the numeric inputs and
  one-hot encodes the others (``handle_unknown="ignore"``), each after an imputer when the training
  data has missing values: the shape Charter's compiled scorer and reason codes understand.

* **A training function** ``train(X, y) -> model``, named explicitly by the user
  (``function = "my_package.training:train"``) or passed as a Python callable. This is the only
  way arbitrary code runs, and only code the spec's author named. If the function takes a
  keyword ``seed``, the pipeline's seed is passed.

Either way the result must be a binary classifier with ``predict_proba`` (classes 0 and 1, 1 the
adverse outcome). Errors are ``InvalidArgument`` naming the field (``training.estimator``, ...).
"""

from __future__ import annotations

import importlib
import inspect
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from charter.errors import CharterError, InvalidArgument, OptionalDependencyMissing

ESTIMATOR_ROOTS = ("sklearn", "xgboost", "lightgbm")
"""The libraries an ``estimator = "..."`` may name; anything else needs ``function = "..."``."""

PREPROCESS = ("auto", "none")
TRAINING_KEYS = ("estimator", "params", "function", "preprocess")
_DOTTED = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$")
_FUNCTION_REF = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_.]*$")

TrainFunction = Callable[..., Any]


def _unknown_keys(data: Mapping[str, Any], allowed: tuple[str, ...], where: str) -> None:
    unknown = sorted(str(k) for k in data if k not in allowed)
    if unknown:
        raise InvalidArgument(
            f"unknown key(s) in {where}: {', '.join(unknown)}",
            field=f"{where}.{unknown[0]}",
            remedy=f"use only: {', '.join(allowed)}",
        )


def _json_plain(value: Any, fld: str) -> Any:
    """Constructor parameters from TOML or Python: numbers, text, booleans, lists, tables."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [_json_plain(v, fld) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _json_plain(v, f"{fld}.{k}") for k, v in value.items()}
    raise InvalidArgument(
        f"{fld} must be a number, text, boolean, list or table, not {type(value).__name__}",
        field=fld,
        remedy="pass plain values; build objects in a training function instead",
    )


def callable_name(fn: Callable[..., Any]) -> str:
    """``module:qualname`` of a Python callable (how a spec records it)."""
    module = getattr(fn, "__module__", None) or "?"
    name = getattr(fn, "__qualname__", None) or type(fn).__name__
    return f"{module}:{name}"


def load_callable(ref: str, fld: str) -> Callable[..., Any]:
    """Import ``module:function`` (an explicit reference the spec's author wrote)."""
    if not isinstance(ref, str) or not _FUNCTION_REF.match(ref):
        raise InvalidArgument(
            f"{fld} {ref!r} is not a reference of the form 'module:function'",
            field=fld,
            remedy="write e.g. 'my_package.training:train'",
        )
    module_name, attr = ref.split(":", 1)
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as e:
        raise InvalidArgument(
            f"{fld}: cannot import module {module_name!r}: {e}",
            field=fld,
            remedy="install the package, or put its folder on PYTHONPATH",
        ) from e
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise InvalidArgument(
                f"{fld}: {module_name!r} has no {attr!r}",
                field=fld,
                remedy="check the function's name",
            )
        obj = getattr(obj, part)
    if not callable(obj):
        raise InvalidArgument(f"{fld}: {ref!r} is not callable", field=fld)
    return obj


def resolve_estimator(path: str, fld: str = "training.estimator") -> type:
    """The estimator class named by a dotted path under an allow-listed library."""
    if not isinstance(path, str) or not _DOTTED.match(path) or "__" in path:
        raise InvalidArgument(
            f"{fld} {path!r} is not a dotted class path",
            field=fld,
            remedy='write e.g. "sklearn.linear_model.LogisticRegression"',
        )
    root = path.split(".", 1)[0]
    if root not in ESTIMATOR_ROOTS:
        raise InvalidArgument(
            f"{fld} {path!r} is not in an allowed library ({', '.join(ESTIMATOR_ROOTS)})",
            field=fld,
            remedy="for other code, write a training function and name it: function = "
            '"my_package.training:train"',
        )
    module_name, cls_name = path.rsplit(".", 1)
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        if root in ("xgboost", "lightgbm"):
            raise OptionalDependencyMissing(
                f"{fld} needs {root}, which is not installed",
                field=fld,
                remedy="pip install 'charter[explain]'",
            ) from e
        raise InvalidArgument(
            f"{fld}: no module {module_name!r}", field=fld, remedy="check the class path"
        ) from e
    cls = getattr(module, cls_name, None)
    if not isinstance(cls, type):
        raise InvalidArgument(
            f"{fld}: {module_name!r} has no class {cls_name!r}",
            field=fld,
            remedy="check the class path",
        )
    if not callable(getattr(cls, "fit", None)) or not callable(getattr(cls, "predict_proba", None)):
        raise InvalidArgument(
            f"{fld}: {path} is not a classifier with fit and predict_proba",
            field=fld,
            remedy="name a probabilistic classifier, e.g. sklearn.linear_model.LogisticRegression",
        )
    return cls


@dataclass(frozen=True)
class TrainingSpec:
    """How to train the candidate: ``estimator`` + ``params`` (+ ``preprocess``), or a function
    (``function`` reference, or ``train_fn`` as a Python callable)."""

    estimator: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    function: str | None = None
    preprocess: str = "auto"
    train_fn: TrainFunction | None = None

    def __post_init__(self) -> None:
        chosen = [
            n for n, v in (("estimator", self.estimator), ("function", self.function),
                           ("train_fn", self.train_fn)) if v is not None
        ]  # fmt: skip
        if len(chosen) != 1:
            raise InvalidArgument(
                "training needs exactly one of estimator or function"
                + (f" (got {', '.join(chosen)})" if chosen else ""),
                field="training",
                remedy='set estimator = "sklearn.linear_model.LogisticRegression" (with params), '
                'or function = "my_package.training:train"',
            )
        if self.preprocess not in PREPROCESS:
            raise InvalidArgument(
                f"training.preprocess {self.preprocess!r} is not one of {', '.join(PREPROCESS)}",
                field="training.preprocess",
                remedy='use "auto" (scale numeric, one-hot encode the rest) or "none"',
            )
        if not isinstance(self.params, Mapping):
            raise InvalidArgument(
                "training.params must be a table of constructor arguments",
                field="training.params",
                remedy="write params = { C = 0.5, max_iter = 1000 }",
            )
        object.__setattr__(self, "params", _json_plain(dict(self.params), "training.params"))
        if self.estimator is not None:
            resolve_estimator(self.estimator)
        elif self.params:
            raise InvalidArgument(
                "training.params go with an estimator, not with a training function",
                field="training.params",
                remedy="set the parameters inside your training function",
            )
        if self.function is not None:
            load_callable(self.function, "training.function")
        if self.train_fn is not None and not callable(self.train_fn):
            raise InvalidArgument("train_fn must be callable", field="training.train_fn")

    @classmethod
    def from_dict(cls, data: Any) -> TrainingSpec:
        if isinstance(data, TrainingSpec):
            return data
        if callable(data):
            return cls(train_fn=data)
        if not isinstance(data, Mapping):
            raise InvalidArgument(
                "training must be a table (estimator/params/preprocess or function)",
                field="training",
                remedy='write [training] with estimator = "sklearn.linear_model.'
                'LogisticRegression"',
            )
        _unknown_keys(data, TRAINING_KEYS, "training")
        function = data.get("function")
        if function is not None and callable(function):
            return cls(train_fn=function, preprocess=str(data.get("preprocess", "auto")))
        return cls(
            estimator=data.get("estimator"),
            params=data.get("params") or {},
            function=function,
            preprocess=str(data.get("preprocess", "auto")),
        )

    def to_dict(self) -> dict[str, Any]:
        """Canonical form, as stored with the run (a Python callable by its name)."""
        if self.estimator is not None:
            return {
                "estimator": self.estimator,
                "params": dict(self.params),
                "preprocess": self.preprocess,
            }
        if self.train_fn is not None:
            return {"function": callable_name(self.train_fn)}
        return {"function": self.function}

    def describe(self) -> str:
        if self.estimator is not None:
            return self.estimator.rsplit(".", 1)[-1]
        return str(self.to_dict()["function"])


@dataclass(frozen=True)
class TrainedModel:
    """A fitted candidate and how it came about."""

    model: Any
    seconds: float
    description: str


def _columns(X: pd.DataFrame) -> tuple[list[str], list[str]]:
    numeric, other = [], []
    for name in X.columns:
        col = X[name]
        if pd.api.types.is_bool_dtype(col) or pd.api.types.is_numeric_dtype(col):
            numeric.append(str(name))
        else:
            other.append(str(name))
    return numeric, other


def build_estimator(spec: TrainingSpec, X: pd.DataFrame, *, seed: int) -> Any:
    """The unfitted estimator of an estimator spec (wrapped in preprocessing for "auto")."""
    if spec.estimator is None:
        raise InvalidArgument("the spec trains with a function", field="training.estimator")
    cls = resolve_estimator(spec.estimator)
    params = dict(spec.params)
    accepted: Mapping[str, Any]
    try:
        accepted = inspect.signature(cls).parameters
    except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
        accepted = {}
    if "random_state" in accepted and "random_state" not in params:
        params["random_state"] = seed
    try:
        estimator = cls(**params)
    except TypeError as e:
        known = ", ".join(p for p in accepted if p not in ("self", "args", "kwargs"))
        raise InvalidArgument(
            f"training.params do not fit {spec.estimator}: {e}",
            field="training.params",
            remedy=f"use the constructor's parameters: {known}",
        ) from e
    if spec.preprocess == "none":
        return estimator
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric, categorical = _columns(X)
    parts: list[tuple[str, Any, list[str]]] = []
    if numeric:
        scale: Any = StandardScaler()
        if X[numeric].isna().any().any():
            scale = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", scale)])
        parts.append(("num", scale, numeric))
    if categorical:
        encode: Any = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
        if X[categorical].isna().any().any():
            encode = Pipeline(
                [("impute", SimpleImputer(strategy="most_frequent")), ("onehot", encode)]
            )
        parts.append(("cat", encode, categorical))
    return Pipeline([("prep", ColumnTransformer(parts)), ("model", estimator)])


def _check_classifier(model: Any, where: str) -> None:
    if not callable(getattr(model, "predict_proba", None)):
        raise InvalidArgument(
            f"{where} returned a {type(model).__name__}, which has no predict_proba",
            field="training",
            remedy="return a fitted binary classifier with predict_proba",
        )
    classes = getattr(model, "classes_", None)
    if classes is not None and [int(c) for c in np.asarray(classes).tolist()] != [0, 1]:
        raise InvalidArgument(
            f"{where} returned a classifier with classes {list(classes)}, not [0, 1]",
            field="training",
            remedy="train on labels 0/1 (1 = the adverse outcome)",
        )


def train_model(spec: TrainingSpec, X: pd.DataFrame, y: np.ndarray, *, seed: int) -> TrainedModel:
    """Fit the candidate on ``X, y`` (labels 0/1). The user's own errors come back as
    ``InvalidArgument`` naming the training field; nothing is retried."""
    start = time.perf_counter()
    if spec.estimator is not None:
        estimator = build_estimator(spec, X, seed=seed)
        try:
            estimator.fit(X, y)
        except Exception as e:
            raise InvalidArgument(
                f"{spec.estimator} failed to fit: {type(e).__name__}: {e}",
                field="training.params",
                remedy="check the parameters and the training data",
            ) from e
        model = estimator
        where = spec.estimator
    else:
        fn = (
            spec.train_fn
            if spec.train_fn is not None
            else load_callable(str(spec.function), "training.function")
        )
        where = spec.describe()
        kwargs: dict[str, Any] = {}
        try:
            if "seed" in inspect.signature(fn).parameters:
                kwargs["seed"] = seed
        except (TypeError, ValueError):  # pragma: no cover - callables without a signature
            pass
        try:
            model = fn(X, y, **kwargs)
        except CharterError:
            raise
        except Exception as e:
            raise InvalidArgument(
                f"the training function {where} raised {type(e).__name__}: {e}",
                field="training.function",
                remedy="fix the training function; it is called as train(X, y)",
            ) from e
    _check_classifier(model, where)
    return TrainedModel(model=model, seconds=time.perf_counter() - start, description=where)
