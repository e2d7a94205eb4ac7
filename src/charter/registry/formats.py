"""Serialisation and safe loading of model artifacts.

Formats (the ``format`` string stored with every model version):

===============  ======================================================================
``skops``        scikit-learn estimators and pipelines, via ``skops.io`` (the default)
``xgboost-json`` XGBoost's native JSON model (``Booster.save_raw("json")``)
``xgboost-ubj``  XGBoost's native Universal Binary JSON model (``save_raw("ubj")``)
``lightgbm-txt`` LightGBM's native text model (``Booster.model_to_string()``)
``pickle``       Python pickle; never chosen automatically, refused unless explicitly allowed
===============  ======================================================================

Conventions:

* Loading never executes code from the artifact unless the caller explicitly allows pickle.
  skops artifacts are audited first: every type skops does not trust by itself must be covered
  by :data:`DEFAULT_TRUSTED_TYPE_PREFIXES` or by the caller's ``trusted_types``, otherwise
  :class:`UnsafeArtifact` names the types and nothing is constructed.
* A trusted-type entry matches a dotted type name exactly; an entry that ends with ``"."``
  (e.g. ``"mypackage.models."``) matches every name that starts with it.
* The XGBoost scikit-learn wrappers (``XGBClassifier``, ``XGBRegressor``, ...) are stored as the
  native model of their booster, with two booster attributes added on a copy before saving:
  ``scikit_learn`` (the estimator type, as ``XGBModel.save_model`` itself writes it) and
  ``charter_sklearn_class`` (the wrapper's dotted class name). On load the wrapper is rebuilt
  from a fixed table of xgboost classes (the attribute is never used to import anything) with
  ``load_model``, which restores the fitted booster, classes and feature names; training
  hyper-parameters that do not affect prediction are not restored. A plain ``Booster`` loads
  back as a ``Booster``.
* LightGBM models are stored as the booster's text model. LightGBM has no public way to rebuild
  its scikit-learn wrapper from a model, so an ``LGBMClassifier`` loads back as a
  ``lightgbm.Booster`` whose ``predict`` gives the wrapper's ``predict_proba`` of the positive
  class (binary) or all class probabilities (multiclass). ``SerializedModel.model_class``
  keeps the original wrapper class for the record.
* xgboost and lightgbm are optional (the ``explain`` extra) and imported only when needed.
"""

from __future__ import annotations

import json
import pickle
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from charter.errors import InvalidArgument, UnsafeArtifact, require_extra

__all__ = [
    "DEFAULT_TRUSTED_TYPE_PREFIXES",
    "FORMATS",
    "LIGHTGBM_TXT",
    "PICKLE",
    "SKOPS",
    "XGBOOST_JSON",
    "XGBOOST_UBJ",
    "SerializedModel",
    "check_loadable",
    "feature_names",
    "load_model",
    "serialize_model",
]

SKOPS = "skops"
XGBOOST_JSON = "xgboost-json"
XGBOOST_UBJ = "xgboost-ubj"
LIGHTGBM_TXT = "lightgbm-txt"
PICKLE = "pickle"

FORMATS: tuple[str, ...] = (SKOPS, XGBOOST_JSON, XGBOOST_UBJ, LIGHTGBM_TXT, PICKLE)

#: Types trusted when loading skops artifacts, on top of what skops trusts by itself (public
#: scikit-learn estimators, builtins, numpy arrays and ufuncs, ...).
#: ``skops.io.get_untrusted_types`` reports only what is outside skops' own list; each entry
#: below is one such report for a common estimator, checked with scikit-learn 1.9 and skops
#: 0.16. All are plain fitted-state containers or pure functions of scikit-learn and numpy;
#: none runs code on construction. Entries are exact names (no module-wide prefixes), so any
#: new type needs a review.
DEFAULT_TRUSTED_TYPE_PREFIXES: tuple[str, ...] = (
    # dtype objects, e.g. OrdinalEncoder(dtype=...) or a ColumnTransformer's fitted dtypes
    "numpy.dtype",
    # fitted trees: DecisionTree, RandomForest, ExtraTrees, GradientBoosting, AdaBoost,
    # IsolationForest
    "sklearn.tree._tree.Tree",
    # fitted trees of HistGradientBoostingClassifier / Regressor
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    # HistGradientBoosting with categorical_features="from_dtype" keeps a FunctionTransformer of
    # partial(check_array, ...); skops audits a partial's function and arguments as separate
    # nodes, so trusting ``partial`` itself adds no capability.
    "functools.partial",
    "sklearn.utils.validation.check_array",
    # CalibratedClassifierCV (sigmoid and isotonic)
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    # KNeighborsClassifier / Regressor with the default Euclidean metric
    "sklearn.neighbors._kd_tree.KDTree",
    "sklearn.neighbors._ball_tree.BallTree",
    "sklearn.metrics._dist_metrics.EuclideanDistance64",
    # MLPClassifier / Regressor optimiser state
    "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
    "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
    # VotingClassifier / StackingClassifier ``named_estimators_``
    "sklearn.utils._bunch.Bunch",
    # ColumnTransformer columns chosen by make_column_selector(...)
    "sklearn.compose._column_transformer.make_column_selector",
)

# xgboost's scikit-learn wrappers that can be rebuilt on load (dotted name -> attribute of the
# ``xgboost`` module). The booster attribute only ever selects from this table.
_XGB_WRAPPERS: dict[str, str] = {
    "xgboost.sklearn.XGBClassifier": "XGBClassifier",
    "xgboost.sklearn.XGBRegressor": "XGBRegressor",
    "xgboost.sklearn.XGBRanker": "XGBRanker",
    "xgboost.sklearn.XGBRFClassifier": "XGBRFClassifier",
    "xgboost.sklearn.XGBRFRegressor": "XGBRFRegressor",
}
_XGB_CLASS_ATTR = "charter_sklearn_class"

# Pickle protocols 2-5 start with the PROTO opcode (0x80) and the protocol number; every pickle
# ends with the STOP opcode ("."). Protocols 0 and 1 have no header and are not accepted.
_PICKLE_PROTO = 0x80
_PICKLE_STOP = b"."
_PICKLE_PROTOCOLS = range(2, 6)


@dataclass(frozen=True)
class SerializedModel:
    """A model as bytes, with what is needed to load it and to record where it came from."""

    data: bytes
    format: str
    library: str
    library_version: str
    model_class: str


# -- helpers ---------------------------------------------------------------------------------


def _dotted(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _library_of(model: object) -> str | None:
    """``"xgboost"`` or ``"lightgbm"`` if the model's class comes from one, without importing it."""
    for cls in type(model).__mro__:
        top = cls.__module__.split(".", 1)[0]
        if top in ("xgboost", "lightgbm"):
            return top
    return None


def _is_sklearn_like(model: object) -> bool:
    if callable(getattr(model, "get_params", None)):
        return True
    return any(cls.__module__.split(".", 1)[0] == "sklearn" for cls in type(model).__mro__)


def _version_of(module: str) -> str:
    mod = sys.modules.get(module)
    version = getattr(mod, "__version__", None)
    return str(version) if version is not None else "unknown"


def _check_format(format: str) -> str:
    if format not in FORMATS:
        raise InvalidArgument(
            f"unknown model format {format!r}",
            field="format",
            remedy=f"use one of: {', '.join(FORMATS)}",
        )
    return format


def _as_bytes(data: object) -> bytes:
    if isinstance(data, bytes | bytearray | memoryview):
        return bytes(data)
    raise InvalidArgument(
        f"model data must be bytes, not {type(data).__name__}",
        field="data",
        remedy="pass the artifact's bytes (e.g. from ArtifactStore.get_bytes)",
    )


def _pickle_refused(action: str) -> UnsafeArtifact:
    return UnsafeArtifact(
        f"refusing to {action} a pickle: unpickling can run arbitrary code",
        field="format",
        remedy="use a safe format (skops, xgboost-json, lightgbm-txt); pickle is only loaded for "
        "a version registered explicitly as pickle whose sha256 the registry has verified",
    )


def _trusted_by(name: str, allowed: Sequence[str]) -> bool:
    return any(
        name == entry or (entry.endswith(".") and name.startswith(entry)) for entry in allowed
    )


def _check_trusted_types(trusted_types: Sequence[str]) -> tuple[str, ...]:
    if isinstance(trusted_types, str | bytes):
        raise InvalidArgument(
            "trusted_types must be a sequence of type names, not a single string",
            field="trusted_types",
            remedy=f"pass a list, e.g. trusted_types=[{trusted_types!r}]",
        )
    out = tuple(trusted_types)
    for entry in out:
        if not isinstance(entry, str) or not entry.strip(".") or entry != entry.strip():
            raise InvalidArgument(
                f"not a dotted type name: {entry!r}",
                field="trusted_types",
                remedy="pass fully qualified names such as 'mypackage.module.MyClass'",
            )
    return out


# -- serialise -------------------------------------------------------------------------------


def _serialize_xgboost(model: object, format: str) -> SerializedModel:
    xgb = require_extra("xgboost", "explain")
    if isinstance(model, xgb.Booster):
        booster = model.copy()
    elif isinstance(model, xgb.XGBModel):
        try:
            booster = model.get_booster().copy()
        except Exception as exc:  # xgboost raises NotFittedError for an unfitted wrapper
            raise InvalidArgument(
                f"cannot serialise {type(model).__name__}: {exc}",
                field="model",
                remedy="fit the model before registering it",
            ) from exc
        wrapper = next(
            (_dotted(cls) for cls in type(model).__mro__ if _dotted(cls) in _XGB_WRAPPERS), None
        )
        estimator_type = getattr(model, "_estimator_type", None)
        if estimator_type is None:
            tags = model.__sklearn_tags__()
            estimator_type = tags.estimator_type
        booster.set_attr(scikit_learn=json.dumps({"_estimator_type": estimator_type}))
        if wrapper is not None:
            booster.set_attr(**{_XGB_CLASS_ATTR: wrapper})
    else:
        raise InvalidArgument(
            f"format {format!r} needs an xgboost Booster or XGBModel, got {_dotted(type(model))}",
            field="format",
            remedy="omit format to choose it automatically",
        )
    raw = booster.save_raw("json" if format == XGBOOST_JSON else "ubj")
    return SerializedModel(
        data=bytes(raw),
        format=format,
        library="xgboost",
        library_version=str(xgb.__version__),
        model_class=_dotted(type(model)),
    )


def _serialize_lightgbm(model: object) -> SerializedModel:
    lgb = require_extra("lightgbm", "explain")
    if isinstance(model, lgb.Booster):
        booster = model
    elif isinstance(model, lgb.LGBMModel):
        try:
            booster = model.booster_
        except Exception as exc:  # LGBMNotFittedError for an unfitted wrapper
            raise InvalidArgument(
                f"cannot serialise {type(model).__name__}: {exc}",
                field="model",
                remedy="fit the model before registering it",
            ) from exc
    else:
        raise InvalidArgument(
            f"format {LIGHTGBM_TXT!r} needs a lightgbm Booster or LGBMModel, "
            f"got {_dotted(type(model))}",
            field="format",
            remedy="omit format to choose it automatically",
        )
    text: str = booster.model_to_string()
    return SerializedModel(
        data=text.encode("utf-8"),
        format=LIGHTGBM_TXT,
        library="lightgbm",
        library_version=str(lgb.__version__),
        model_class=_dotted(type(model)),
    )


def _serialize_skops(model: object) -> SerializedModel:
    import sklearn
    import skops.io

    try:
        data = skops.io.dumps(model)
    except Exception as exc:
        raise InvalidArgument(
            f"skops cannot serialise {_dotted(type(model))}: {exc}",
            field="model",
            remedy="use a scikit-learn compatible estimator, or a native xgboost/lightgbm model",
        ) from exc
    return SerializedModel(
        data=bytes(data),
        format=SKOPS,
        library="scikit-learn",
        library_version=str(sklearn.__version__),
        model_class=_dotted(type(model)),
    )


def serialize_model(
    model: object, format: str | None = None, *, allow_pickle: bool = False
) -> SerializedModel:
    """Serialise ``model`` to bytes in a safe format.

    Without ``format`` the format is chosen from the model's type: xgboost ``Booster`` and
    ``XGBModel`` -> ``xgboost-json``; lightgbm ``Booster`` and ``LGBMModel`` -> ``lightgbm-txt``;
    anything scikit-learn-like (has ``get_params`` or derives from a scikit-learn class) ->
    ``skops``. ``pickle`` is never chosen automatically; asking for it raises
    :class:`UnsafeArtifact` unless ``allow_pickle=True``.
    """
    library = _library_of(model)
    if format is None:
        if library == "xgboost":
            format = XGBOOST_JSON
        elif library == "lightgbm":
            format = LIGHTGBM_TXT
        elif _is_sklearn_like(model):
            format = SKOPS
        else:
            raise InvalidArgument(
                f"no safe format is known for {_dotted(type(model))}",
                field="model",
                remedy="register a scikit-learn, xgboost or lightgbm model, or pass "
                "format='pickle' with allow_pickle=True if your policy permits pickle",
            )
    _check_format(format)
    if format in (XGBOOST_JSON, XGBOOST_UBJ):
        return _serialize_xgboost(model, format)
    if format == LIGHTGBM_TXT:
        return _serialize_lightgbm(model)
    if format == SKOPS:
        return _serialize_skops(model)
    # format == PICKLE
    if not allow_pickle:
        raise _pickle_refused("write")
    top = type(model).__module__.split(".", 1)[0]
    return SerializedModel(
        data=pickle.dumps(model, protocol=5),
        format=PICKLE,
        library=top,
        library_version=_version_of(top),
        model_class=_dotted(type(model)),
    )


# -- load ------------------------------------------------------------------------------------


def _untrusted_skops_types(data: bytes) -> list[str]:
    import skops.io

    try:
        return list(skops.io.get_untrusted_types(data=data))
    except Exception as exc:  # not a zip, no schema, unknown protocol, ...
        raise InvalidArgument(
            f"not a readable skops artifact: {exc}",
            field="data",
            remedy="check that the artifact's format is recorded correctly",
        ) from exc


def _load_skops(data: bytes, trusted_types: Sequence[str]) -> object:
    import skops.io

    extra = _check_trusted_types(trusted_types)
    untrusted = _untrusted_skops_types(data)
    refused = [
        name
        for name in untrusted
        if not _trusted_by(name, DEFAULT_TRUSTED_TYPE_PREFIXES) and not _trusted_by(name, extra)
    ]
    if refused:
        raise UnsafeArtifact(
            f"the skops artifact contains types that are not trusted: {', '.join(refused)}",
            field="trusted_types",
            remedy="review these types and, if they are safe, pass them as trusted_types "
            f"(e.g. trusted_types={refused!r})",
            details={"untrusted_types": refused},
        )
    try:
        return skops.io.loads(data, trusted=untrusted)
    except Exception as exc:
        raise InvalidArgument(
            f"the skops artifact could not be loaded: {exc}",
            field="data",
            remedy="check that the scikit-learn version matches the one it was saved with",
        ) from exc


def _load_xgboost(data: bytes, format: str) -> object:
    xgb = require_extra("xgboost", "explain")
    # Both encodings are objects; in JSON the first key is a quoted string, in UBJ it starts
    # with a length-type marker.
    body = data.lstrip()
    is_object = body[:1] == b"{"
    is_json = is_object and body[1:].lstrip()[:1] == b'"'
    if not is_object or is_json != (format == XGBOOST_JSON):
        raise InvalidArgument(
            f"the artifact is not an XGBoost {'JSON' if format == XGBOOST_JSON else 'UBJ'} model",
            field="format",
            remedy="check that the artifact's format is recorded correctly",
        )
    raw = bytearray(data)
    try:
        booster = xgb.Booster()
        booster.load_model(raw)
        wrapper = booster.attr(_XGB_CLASS_ATTR)
        if wrapper is None:
            booster.set_attr(scikit_learn=None)
            return booster
        if wrapper not in _XGB_WRAPPERS:
            raise InvalidArgument(
                f"unknown xgboost wrapper class {wrapper!r} recorded in the model",
                field="data",
                remedy=f"expected one of: {', '.join(_XGB_WRAPPERS)}",
            )
        model: Any = getattr(xgb, _XGB_WRAPPERS[wrapper])()
        model.load_model(raw)
        model.get_booster().set_attr(**{_XGB_CLASS_ATTR: None})
        return model
    except InvalidArgument:
        raise
    except Exception as exc:  # XGBoostError, TypeError for a mismatched estimator type
        raise InvalidArgument(
            f"the XGBoost model could not be loaded: {exc}",
            field="data",
            remedy="check that the artifact's format is recorded correctly",
        ) from exc


def _load_lightgbm(data: bytes) -> object:
    lgb = require_extra("lightgbm", "explain")
    try:
        return lgb.Booster(model_str=data.decode("utf-8"))
    except Exception as exc:  # UnicodeDecodeError, LightGBMError
        raise InvalidArgument(
            f"the LightGBM model could not be loaded: {exc}",
            field="data",
            remedy="check that the artifact's format is recorded correctly",
        ) from exc


def _check_pickle_header(data: bytes) -> None:
    if (
        len(data) < 3
        or data[0] != _PICKLE_PROTO
        or data[1] not in _PICKLE_PROTOCOLS
        or not data.endswith(_PICKLE_STOP)
    ):
        raise InvalidArgument(
            "the artifact is not a pickle of protocol 2 to 5",
            field="data",
            remedy="check that the artifact's format is recorded correctly",
        )


def load_model(
    data: bytes,
    format: str,
    *,
    trusted_types: Sequence[str] = (),
    allow_pickle: bool = False,
) -> object:
    """Load a model from ``data`` stored in ``format``.

    ``skops``: the types skops does not trust by itself must all be covered by
    :data:`DEFAULT_TRUSTED_TYPE_PREFIXES` or ``trusted_types``; otherwise
    :class:`UnsafeArtifact` lists them and nothing is constructed. ``xgboost-json``,
    ``xgboost-ubj`` and ``lightgbm-txt`` use the libraries' native loaders (see the module
    docstring for which class comes back).

    ``pickle`` raises :class:`UnsafeArtifact` unless ``allow_pickle=True``. Contract: the caller
    (the registry) passes ``allow_pickle=True`` only after it has checked the bytes' sha256
    against the hash it registered and only for a version that was registered explicitly as
    pickle. Unpickling runs whatever code the pickle names, so this function cannot make an
    unvetted pickle safe; the hash check is what ties the bytes to a reviewed registration.

    Unknown formats raise :class:`InvalidArgument` listing the valid ones.
    """
    _check_format(format)
    payload = _as_bytes(data)
    if format == SKOPS:
        return _load_skops(payload, trusted_types)
    if format in (XGBOOST_JSON, XGBOOST_UBJ):
        return _load_xgboost(payload, format)
    if format == LIGHTGBM_TXT:
        return _load_lightgbm(payload)
    # format == PICKLE
    if not allow_pickle:
        raise _pickle_refused("load")
    _check_pickle_header(payload)
    return pickle.loads(payload)


def check_loadable(data: bytes, format: str, *, trusted_types: Sequence[str] = ()) -> None:
    """Prove at registration that ``data`` loads in ``format``; raise if it does not.

    Safe formats are loaded (with the same trusted-type audit as :func:`load_model`) and thrown
    away. Pickle is never unpickled: only its header (protocol 2-5 marker) and final STOP opcode
    are checked.
    """
    _check_format(format)
    payload = _as_bytes(data)
    if format == PICKLE:
        _check_pickle_header(payload)
        return
    load_model(payload, format, trusted_types=trusted_types)


# -- introspection ---------------------------------------------------------------------------


def feature_names(model: object) -> list[str] | None:
    """The input column names a fitted model knows, or ``None`` if it has none.

    Read from ``feature_names_in_`` (scikit-learn convention, also the xgboost and lightgbm
    wrappers), else an xgboost ``Booster``'s ``feature_names``, else a lightgbm ``Booster``'s
    ``feature_name()``; lightgbm's generated names (``Column_0``, ``Column_1``, ...) are not
    real names and give ``None``.
    """
    names: Any = getattr(model, "feature_names_in_", None)
    if names is not None:
        return [str(n) for n in names]
    library = _library_of(model)
    if library == "xgboost":
        xgb_names = getattr(model, "feature_names", None)
        return [str(n) for n in xgb_names] if xgb_names else None
    if library == "lightgbm":
        getter = getattr(model, "feature_name", None)
        if not callable(getter):
            return None
        lgb_names = [str(n) for n in getter()]
        if not lgb_names or lgb_names == [f"Column_{i}" for i in range(len(lgb_names))]:
            return None
        return lgb_names
    return None
