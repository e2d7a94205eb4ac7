"""OpenLineage run events: every kind the pipeline writes is valid against the OpenLineage
schema (vendored, validated offline), and the JSON-lines transport writes one event a line."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema_rs
import numpy as np
import pandas as pd
import pytest

from charter.errors import InvalidArgument
from charter.pipelines import openlineage as ol

SCHEMA = Path(__file__).parent.parent / "data" / "openlineage" / "OpenLineage-2-0-0.json"
RUN_ID = "3b452093-782c-4ef2-9c0c-aafe2aa6f34d"
WHEN = datetime(2026, 11, 22, 9, 30, 15, 123456, tzinfo=UTC)


def validator() -> Any:
    """The RunEvent definition of the vendored spec, offline: its relative facet references
    resolve to the schema ``false`` (see tests/data/openlineage/README.md)."""
    doc = json.loads(SCHEMA.read_text())
    registry = jsonschema_rs.Registry([(doc["$id"], doc)], retriever=lambda uri: False)
    return jsonschema_rs.validator_for(
        {"$ref": doc["$id"] + "#/$defs/RunEvent"}, registry=registry, validate_formats=True
    )


def errors(event: dict[str, Any]) -> list[str]:
    return [str(e) for e in validator().iter_errors(event)]


def _event(event_type: str = "RUNNING", **kw: Any) -> dict[str, Any]:
    frame = pd.DataFrame(
        {
            "income": [1.0],
            "age": np.array([30], dtype=np.int64),
            "region": ["north"],
            "ok": [True],
            "at": pd.to_datetime(["2026-11-01"]),
        }
    )
    data = ol.training_dataset(
        "/data/applications.parquet",
        columns=list(frame.dtypes.items()),
        content_hash="ab" * 32,
    )
    kw.setdefault("inputs", [data])
    kw.setdefault("outputs", [ol.model_version_dataset("pd-model", 3, "cd" * 32)])
    return ol.run_event(event_type, run_id=RUN_ID, model="pd-model", event_time=WHEN, **kw)


@pytest.mark.parametrize("event_type", ["START", "RUNNING", "COMPLETE", "FAIL", "ABORT"])
def test_every_event_type_is_valid_against_the_openlineage_schema(event_type: str) -> None:
    facets = {"charter_pipeline": ol.pipeline_facet(step="register", stepStatus="done")}
    if event_type == "FAIL":
        facets["errorMessage"] = ol.error_facet("the training data failed validation")
    event = _event(event_type, run_facets=facets)
    assert errors(event) == []
    assert event["eventType"] == event_type
    assert event["eventTime"] == "2026-11-22T09:30:15.123456Z"
    assert (
        event["schemaURL"] == "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
    )
    assert event["producer"] == "https://github.com/charter-mrm/charter"
    assert event["job"]["namespace"] == "charter"
    assert event["job"]["name"] == "pd-model.continuous_training"
    assert event["run"]["runId"] == RUN_ID


def test_the_datasets_carry_schema_source_and_version_facets() -> None:
    event = _event()
    (data,) = event["inputs"]
    assert data["namespace"] == "file" and data["name"] == "/data/applications.parquet"
    assert data["facets"]["schema"]["fields"] == [
        {"name": "income", "type": "number"},
        {"name": "age", "type": "integer"},
        {"name": "region", "type": "string"},
        {"name": "ok", "type": "boolean"},
        {"name": "at", "type": "timestamp"},
    ]
    assert data["facets"]["dataSource"]["uri"] == "file:///data/applications.parquet"
    assert data["facets"]["version"]["datasetVersion"] == "ab" * 32
    (model,) = event["outputs"]
    assert model == {**model, "namespace": "charter", "name": "pd-model/versions/3"}
    assert model["facets"]["version"]["datasetVersion"] == "cd" * 32
    for facet in [*data["facets"].values(), *model["facets"].values()]:
        assert facet["_producer"] and facet["_schemaURL"].startswith("https://")


def test_a_function_source_is_named_in_charters_namespace() -> None:
    ds = ol.training_dataset("callable:my_bank.data:applications")
    assert (ds.namespace, ds.name) == ("charter", "callable:my_bank.data:applications")
    assert "uri" not in ds.facets["dataSource"]
    assert errors(_event(inputs=[ds], outputs=[])) == []


def test_the_validator_catches_what_the_schema_forbids() -> None:
    """The negative control: the same validator refuses broken events."""
    good = _event()
    for broken in (
        {k: v for k, v in good.items() if k != "producer"},
        {k: v for k, v in good.items() if k != "schemaURL"},
        {**good, "eventType": "PAUSED"},
        {**good, "eventTime": "yesterday"},
        {**good, "run": {"runId": "not-a-uuid"}},
        {**good, "job": {"namespace": "charter"}},
        {**good, "run": {"runId": RUN_ID, "facets": {"x": {"value": 1}}}},  # no _producer
    ):
        assert errors(broken), broken


def test_bad_arguments_are_refused_with_the_field() -> None:
    with pytest.raises(InvalidArgument) as e:
        ol.run_event("PAUSED", run_id=RUN_ID, model="m", event_time=WHEN)
    assert e.value.field == "event_type"
    with pytest.raises(InvalidArgument) as e:
        ol.run_event("START", run_id="42", model="m", event_time=WHEN)
    assert e.value.field == "run_id"


def test_the_file_transport_appends_one_line_per_event(tmp_path: Path) -> None:
    transport = ol.FileTransport(tmp_path / "lineage")
    other = str(uuid.uuid4())
    transport.emit(_event("START"))
    transport.emit(ol.run_event("START", run_id=other, model="m", event_time=WHEN))
    transport.emit(_event("COMPLETE"))
    path = transport.path_for(RUN_ID)
    assert path == tmp_path / "lineage" / f"{RUN_ID}.jsonl"
    lines = path.read_text().splitlines()
    assert len(lines) == 2 and all(json.loads(line)["run"]["runId"] == RUN_ID for line in lines)
    assert [e["eventType"] for e in ol.read_events(path)] == ["START", "COMPLETE"]
    assert len(ol.read_events(transport.path_for(other))) == 1
    ol.NullTransport().emit(_event())  # drops it


def test_the_default_transport_writes_under_charter_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHARTER_HOME", str(tmp_path / "home"))
    assert ol.default_transport().directory == tmp_path / "home" / "lineage"
