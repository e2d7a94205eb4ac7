"""Tests of reading MLflow model directories (mlflow itself is not needed)."""

from __future__ import annotations

import json
import pathlib
import pickle
from pathlib import Path
from typing import Any

import pytest
import yaml

from charter.entities import FeatureSpec, FeatureType
from charter.errors import InvalidArgument, NotFound
from charter.registry.mlflow_import import MlflowModel, read_mlflow_model

RUN_ID = "0f5c2a7e3b4d4c1e9a8b7c6d5e4f3a2b"
MODEL_UUID = "a1b2c3d4e5f64718293a4b5c6d7e8f90"

INPUTS = [
    {"type": "double", "name": "income", "required": True},
    {"type": "float", "name": "ratio", "required": False},
    {"type": "long", "name": "age", "required": True},
    {"type": "integer", "name": "dependants"},
    {"type": "string", "name": "purpose", "required": True},
    {"type": "boolean", "name": "homeowner", "required": True},
    {"type": "datetime", "name": "applied_at", "required": False},
]


class _Evil:
    """Unpickling this creates a file: proof that code ran."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (pathlib.Path.touch, (self.target,))


def _mlmodel(
    *,
    pickled_model: str = "model.pkl",
    serialization_format: str = "cloudpickle",
    inputs: Any = INPUTS,
) -> dict[str, Any]:
    """An MLmodel document shaped like the ones MLflow 2.x writes for mlflow.sklearn."""
    doc: dict[str, Any] = {
        "artifact_path": "model",
        "flavors": {
            "python_function": {
                "env": {"conda": "conda.yaml", "virtualenv": "python_env.yaml"},
                "loader_module": "mlflow.sklearn",
                "model_path": pickled_model,
                "predict_fn": "predict",
                "python_version": "3.11.9",
            },
            "sklearn": {
                "code": None,
                "pickled_model": pickled_model,
                "serialization_format": serialization_format,
                "sklearn_version": "1.5.2",
            },
        },
        "mlflow_version": "2.17.2",
        "model_size_bytes": 1234,
        "model_uuid": MODEL_UUID,
        "run_id": RUN_ID,
        "utc_time_created": "2024-11-05 09:12:33.123456",
    }
    if inputs is not None:
        doc["signature"] = {
            "inputs": json.dumps(inputs),
            "outputs": json.dumps([{"type": "long", "required": True}]),
            "params": None,
        }
    return doc


def _write_model_dir(root: Path, doc: dict[str, Any], model_bytes: bytes = b"\x80\x05N.") -> Path:
    directory = root / "model"
    directory.mkdir(parents=True)
    (directory / "MLmodel").write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    (directory / "model.pkl").write_bytes(model_bytes)
    (directory / "requirements.txt").write_text("scikit-learn==1.5.2\n", encoding="utf-8")
    return directory


def test_reads_sklearn_model(tmp_path: Path) -> None:
    directory = _write_model_dir(tmp_path, _mlmodel(), b"\x80\x05N.")
    model = read_mlflow_model(directory)
    assert isinstance(model, MlflowModel)
    assert model.data == b"\x80\x05N."
    assert model.format == "pickle"
    assert model.flavor == "sklearn"
    assert model.run_id == RUN_ID
    assert model.model_uuid == MODEL_UUID
    assert model.utc_time_created == "2024-11-05 09:12:33.123456"
    assert model.mlflow_version == "2.17.2"
    assert model.sklearn_version == "1.5.2"
    assert model.source_path == str(directory.resolve())
    assert model.feature_schema == (
        FeatureSpec("income", FeatureType.NUMERIC, nullable=False),
        FeatureSpec("ratio", FeatureType.NUMERIC, nullable=True),
        FeatureSpec("age", FeatureType.INTEGER, nullable=False),
        FeatureSpec("dependants", FeatureType.INTEGER, nullable=False),
        FeatureSpec("purpose", FeatureType.CATEGORICAL, nullable=False, categories=None),
        FeatureSpec("homeowner", FeatureType.BOOLEAN, nullable=False),
        FeatureSpec("applied_at", FeatureType.DATETIME, nullable=True),
    )
    # the MLmodel file itself is accepted as the path too
    assert read_mlflow_model(directory / "MLmodel") == model


@pytest.mark.parametrize(("serialization", "fmt"), [("pickle", "pickle"), ("skops", "skops")])
def test_serialization_formats(tmp_path: Path, serialization: str, fmt: str) -> None:
    directory = _write_model_dir(tmp_path, _mlmodel(serialization_format=serialization))
    assert read_mlflow_model(directory).format == fmt


def test_unknown_serialization_format(tmp_path: Path) -> None:
    directory = _write_model_dir(tmp_path, _mlmodel(serialization_format="joblib"))
    with pytest.raises(InvalidArgument) as info:
        read_mlflow_model(directory)
    assert info.value.field == "flavors.sklearn.serialization_format"


def test_pickled_bytes_are_not_executed(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    evil = pickle.dumps(_Evil(marker), protocol=5)
    directory = _write_model_dir(tmp_path, _mlmodel(), evil)
    model = read_mlflow_model(directory)
    assert model.data == evil
    assert model.format == "pickle"
    assert not marker.exists()


def test_tensor_signature_gives_no_schema(tmp_path: Path) -> None:
    tensor = [{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 4]}}]
    directory = _write_model_dir(tmp_path, _mlmodel(inputs=tensor))
    assert read_mlflow_model(directory).feature_schema is None


def test_no_signature_gives_no_schema(tmp_path: Path) -> None:
    directory = _write_model_dir(tmp_path, _mlmodel(inputs=None))
    assert read_mlflow_model(directory).feature_schema is None


def test_unsupported_column_type_is_refused(tmp_path: Path) -> None:
    inputs = [{"type": "double", "name": "x"}, {"type": "binary", "name": "blob"}]
    directory = _write_model_dir(tmp_path, _mlmodel(inputs=inputs))
    with pytest.raises(InvalidArgument) as info:
        read_mlflow_model(directory)
    assert info.value.field == "signature.inputs"
    assert "blob" in info.value.message


def test_non_sklearn_flavour_is_refused(tmp_path: Path) -> None:
    doc = _mlmodel()
    doc["flavors"] = {
        "python_function": {"loader_module": "mlflow.xgboost", "data": "model.xgb"},
        "xgboost": {"data": "model.xgb", "model_class": "xgboost.sklearn.XGBClassifier"},
    }
    directory = _write_model_dir(tmp_path, doc)
    with pytest.raises(InvalidArgument) as info:
        read_mlflow_model(directory)
    assert info.value.field == "flavors"
    assert "xgboost" in info.value.message and "python_function" in info.value.message
    assert info.value.remedy is not None


@pytest.mark.parametrize("escape", ["../../etc/passwd", "/etc/passwd", "sub/../../outside.pkl"])
def test_path_traversal_is_refused(tmp_path: Path, escape: str) -> None:
    (tmp_path / "outside.pkl").write_bytes(b"\x80\x05N.")
    directory = _write_model_dir(tmp_path, _mlmodel(pickled_model=escape))
    with pytest.raises(InvalidArgument) as info:
        read_mlflow_model(directory)
    assert info.value.field == "flavors.sklearn.pickled_model"


def test_symlink_out_of_the_directory_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "secret.bin"
    secret.write_bytes(b"secret")
    directory = _write_model_dir(tmp_path, _mlmodel(pickled_model="link.pkl"))
    (directory / "link.pkl").symlink_to(secret)
    with pytest.raises(InvalidArgument):
        read_mlflow_model(directory)


def test_missing_model_file(tmp_path: Path) -> None:
    directory = _write_model_dir(tmp_path, _mlmodel(pickled_model="other.pkl"))
    with pytest.raises(NotFound):
        read_mlflow_model(directory)


def test_missing_mlmodel_is_not_found(tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()
    with pytest.raises(NotFound) as info:
        read_mlflow_model(tmp_path / "model")
    assert info.value.remedy is not None
    with pytest.raises(NotFound):
        read_mlflow_model(tmp_path / "does-not-exist")


def test_invalid_yaml(tmp_path: Path) -> None:
    directory = tmp_path / "model"
    directory.mkdir()
    (directory / "MLmodel").write_text("flavors: [unclosed\n", encoding="utf-8")
    with pytest.raises(InvalidArgument) as info:
        read_mlflow_model(directory)
    assert info.value.field == "MLmodel"


def test_yaml_is_read_safely(tmp_path: Path) -> None:
    directory = tmp_path / "model"
    directory.mkdir()
    (directory / "MLmodel").write_text(
        "flavors: !!python/object/apply:os.system ['touch pwned']\n", encoding="utf-8"
    )
    with pytest.raises(InvalidArgument):
        read_mlflow_model(directory)
    assert not (Path.cwd() / "pwned").exists()
