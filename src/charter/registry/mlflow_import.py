"""Read an MLflow model directory (``MLmodel`` + model file) without importing mlflow.

Conventions:

* Only the ``sklearn`` flavour is supported; the model file it names is read as bytes and never
  deserialised here. MLflow's ``cloudpickle`` and ``pickle`` serialisations become Charter's
  ``pickle`` format (which the registry only loads under its explicit pickle policy); ``skops``
  stays ``skops``. A missing ``serialization_format`` means ``pickle`` (older MLflow versions).
* The model file must resolve (symlinks included) to a regular file inside the model directory;
  anything else (``../``, absolute paths, symlinks out) is refused.
* A column-based ``signature.inputs`` becomes a feature schema: ``double``/``float`` -> numeric,
  ``long``/``integer`` -> integer, ``string`` -> categorical (categories unknown),
  ``boolean`` -> boolean, ``datetime`` -> datetime; ``"required": false`` means nullable. A
  tensor-based signature, unnamed columns or no signature give ``feature_schema=None``. A named
  column of a type Charter cannot represent (``binary``, arrays, objects, ...) is an error rather
  than a silently dropped column.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from charter.entities import FeatureSpec, FeatureType
from charter.errors import InvalidArgument, NotFound

__all__ = ["MlflowModel", "read_mlflow_model"]

_MLMODEL = "MLmodel"

_SERIALIZATION_FORMATS = {"cloudpickle": "pickle", "pickle": "pickle", "skops": "skops"}

_COLUMN_TYPES = {
    "double": FeatureType.NUMERIC,
    "float": FeatureType.NUMERIC,
    "long": FeatureType.INTEGER,
    "integer": FeatureType.INTEGER,
    "string": FeatureType.CATEGORICAL,
    "boolean": FeatureType.BOOLEAN,
    "datetime": FeatureType.DATETIME,
}


@dataclass(frozen=True)
class MlflowModel:
    """What Charter takes from an MLflow model directory; ``data`` is the raw model file."""

    data: bytes
    format: str
    flavor: str
    run_id: str | None
    model_uuid: str | None
    utc_time_created: str | None
    mlflow_version: str | None
    sklearn_version: str | None
    feature_schema: tuple[FeatureSpec, ...] | None
    source_path: str


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _schema_error(message: str) -> InvalidArgument:
    return InvalidArgument(
        message,
        field="signature.inputs",
        remedy="fix the MLmodel signature, or register the version with an explicit feature "
        "schema after removing the signature",
    )


def _feature_schema(signature: Any) -> tuple[FeatureSpec, ...] | None:
    if not isinstance(signature, dict):
        return None
    inputs = signature.get("inputs")
    if inputs is None:
        return None
    if isinstance(inputs, str):
        try:
            columns = json.loads(inputs)
        except json.JSONDecodeError as exc:
            raise _schema_error(f"signature.inputs is not valid JSON: {exc}") from exc
    else:
        columns = inputs
    if not isinstance(columns, list) or not all(isinstance(c, dict) for c in columns):
        raise _schema_error("signature.inputs must be a JSON list of column specifications")
    if not columns:
        return None
    if any(c.get("type") == "tensor" for c in columns) or any("name" not in c for c in columns):
        return None  # tensor-based or unnamed columns: nothing to validate by name
    specs: list[FeatureSpec] = []
    seen: set[str] = set()
    for column in columns:
        name = str(column["name"])
        kind = column.get("type")
        if not isinstance(kind, str) or kind not in _COLUMN_TYPES:
            raise _schema_error(
                f"column {name!r} has MLflow type {kind!r}, which Charter cannot represent "
                f"(supported: {', '.join(_COLUMN_TYPES)})"
            )
        if name in seen:
            raise _schema_error(f"column {name!r} appears twice in the signature")
        seen.add(name)
        specs.append(
            FeatureSpec(
                name=name,
                type=_COLUMN_TYPES[kind],
                nullable=column.get("required", True) is False,
            )
        )
    return tuple(specs)


def _model_dir(path: Path | str) -> Path:
    given = Path(path)
    if given.name == _MLMODEL and given.is_file():
        given = given.parent
    directory = given.resolve()
    if not (directory / _MLMODEL).is_file():
        raise NotFound(
            f"no MLmodel file in {directory}",
            field="path",
            remedy="pass the MLflow model directory (the one that contains MLmodel), e.g. the "
            "'model' folder under a run's artifacts",
        )
    return directory


def _read_mlmodel(directory: Path) -> dict[str, Any]:
    try:
        content = yaml.safe_load((directory / _MLMODEL).read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise InvalidArgument(
            f"{directory / _MLMODEL} is not valid YAML: {exc}",
            field="MLmodel",
            remedy="export the model again with mlflow",
        ) from exc
    if not isinstance(content, dict):
        raise InvalidArgument(
            f"{directory / _MLMODEL} does not hold a mapping",
            field="MLmodel",
            remedy="export the model again with mlflow",
        )
    return content


def _model_file(directory: Path, name: Any) -> Path:
    if not isinstance(name, str) or not name:
        raise InvalidArgument(
            "flavors.sklearn.pickled_model is missing",
            field="flavors.sklearn.pickled_model",
            remedy="export the model again with mlflow.sklearn",
        )
    candidate = (directory / name).resolve()
    if not candidate.is_relative_to(directory):
        raise InvalidArgument(
            f"the model file {name!r} lies outside the model directory {directory}",
            field="flavors.sklearn.pickled_model",
            remedy="the model file must be inside the MLflow model directory; do not import "
            "an MLmodel that points elsewhere",
        )
    if not candidate.is_file():
        raise NotFound(
            f"the model file {name!r} named by MLmodel does not exist in {directory}",
            field="flavors.sklearn.pickled_model",
            remedy="copy the complete MLflow model directory, including the model file",
        )
    return candidate


def read_mlflow_model(path: Path | str) -> MlflowModel:
    """Read the scikit-learn model and its metadata from the MLflow model directory ``path``.

    ``path`` may also be the ``MLmodel`` file itself. The model bytes are read, not loaded.
    """
    directory = _model_dir(path)
    mlmodel = _read_mlmodel(directory)
    flavors = mlmodel.get("flavors")
    if not isinstance(flavors, dict):
        flavors = {}
    sklearn_flavor = flavors.get("sklearn")
    if not isinstance(sklearn_flavor, dict):
        found = ", ".join(sorted(str(f) for f in flavors)) or "none"
        raise InvalidArgument(
            f"the MLflow model has no sklearn flavour (flavours found: {found})",
            field="flavors",
            remedy="log the model with mlflow.sklearn.log_model, or register xgboost/lightgbm "
            "models from the model object in a native format",
        )
    serialization = sklearn_flavor.get("serialization_format", "pickle")
    fmt = _SERIALIZATION_FORMATS.get(str(serialization))
    if fmt is None:
        raise InvalidArgument(
            f"unsupported sklearn serialization_format {serialization!r}",
            field="flavors.sklearn.serialization_format",
            remedy=f"use one of: {', '.join(_SERIALIZATION_FORMATS)}",
        )
    model_file = _model_file(directory, sklearn_flavor.get("pickled_model"))
    return MlflowModel(
        data=model_file.read_bytes(),
        format=fmt,
        flavor="sklearn",
        run_id=_opt_str(mlmodel.get("run_id")),
        model_uuid=_opt_str(mlmodel.get("model_uuid")),
        utc_time_created=_opt_str(mlmodel.get("utc_time_created")),
        mlflow_version=_opt_str(mlmodel.get("mlflow_version")),
        sklearn_version=_opt_str(sklearn_flavor.get("sklearn_version")),
        feature_schema=_feature_schema(mlmodel.get("signature")),
        source_path=str(directory),
    )
