"""OpenLineage run events for continuous-training runs, written as JSON lines (no network).

Each pipeline run is one OpenLineage *run* (``run.runId`` is the pipeline run's UUID) of the job
``{namespace: "charter", name: "<model>.continuous_training"}``. Events follow the core spec's
``RunEvent`` (``schemaURL`` :data:`SCHEMA_URL`):

* ``START`` when the run is created;
* ``RUNNING`` each time a step reaches a new status (a run facet ``charter_pipeline`` names the
  step and its status);
* exactly one of ``COMPLETE`` (promoted), ``FAIL`` (failed, with the ``errorMessage`` facet) or
  ``ABORT`` (stopped: the candidate was refused or its canary rolled back).

Inputs: the training data set (namespace ``file`` and the absolute path for a file, or
``charter`` and ``callable:<module>:<function>`` for a function), with the ``schema``,
``dataSource`` and ``version`` facets (``datasetVersion`` is the snapshot's content hash).
Outputs: the registered model version (namespace ``charter``, name ``<model>/versions/<n>``) with
the ``version`` facet (the artifact's SHA-256).

Transport: :class:`FileTransport` appends one canonical JSON line per event to
``<directory>/<runId>.jsonl`` (default directory ``$CHARTER_HOME/lineage``), flushed and fsynced,
which lineage tools (Marquez, DataHub, OpenMetadata ...) can ingest. Events are written after the
database commit they describe; a crash between the two loses that event, never invents one.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from charter.clock import iso
from charter.errors import InvalidArgument

PRODUCER = "https://github.com/charter-mrm/charter"
SCHEMA_URL = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
NAMESPACE = "charter"
EVENT_TYPES = ("START", "RUNNING", "COMPLETE", "FAIL", "ABORT", "OTHER")

_FACETS = "https://openlineage.io/spec/facets"
SCHEMA_FACET_URL = f"{_FACETS}/1-2-0/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet"
DATASOURCE_FACET_URL = f"{_FACETS}/1-0-1/DatasourceDatasetFacet.json#/$defs/DatasourceDatasetFacet"
VERSION_FACET_URL = (
    f"{_FACETS}/1-0-1/DatasetVersionDatasetFacet.json#/$defs/DatasetVersionDatasetFacet"
)
ERROR_FACET_URL = f"{_FACETS}/1-0-1/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet"
JOB_TYPE_FACET_URL = f"{_FACETS}/2-0-4/JobTypeJobFacet.json#/$defs/JobTypeJobFacet"
DOCUMENTATION_FACET_URL = f"{_FACETS}/1-1-0/DocumentationJobFacet.json#/$defs/DocumentationJobFacet"
CHARTER_FACET_URL = f"{PRODUCER}/blob/main/docs/pipelines.md#openlineage"


def job_name(model: str) -> str:
    return f"{model}.continuous_training"


def _facet(schema_url: str, **fields: Any) -> dict[str, Any]:
    return {"_producer": PRODUCER, "_schemaURL": schema_url, **fields}


def _field_type(dtype: Any) -> str:
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if pd.api.types.is_integer_dtype(dtype):
        return "integer"
    if pd.api.types.is_numeric_dtype(dtype):
        return "number"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "timestamp"
    return "string"


def schema_facet(columns: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    """The ``schema`` facet from (column name, pandas dtype) pairs."""
    fields = [{"name": str(n), "type": _field_type(t)} for n, t in columns]
    return _facet(SCHEMA_FACET_URL, fields=fields)


@dataclass(frozen=True)
class DatasetRef:
    """An OpenLineage data set: where it lives and what is known about it."""

    namespace: str
    name: str
    facets: Mapping[str, Any]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"namespace": self.namespace, "name": self.name}
        if self.facets:
            out["facets"] = dict(self.facets)
        return out


def training_dataset(
    source: str,
    *,
    columns: Sequence[tuple[str, Any]] = (),
    content_hash: str | None = None,
) -> DatasetRef:
    """The training data set. ``source`` is a file path or ``callable:<module>:<function>``."""
    if source.startswith("callable:"):
        namespace, name, uri = NAMESPACE, source, None
    else:
        path = Path(source).expanduser().resolve()
        namespace, name, uri = "file", str(path), path.as_uri()
    facets: dict[str, Any] = {}
    if columns:
        facets["schema"] = schema_facet(columns)
    source_fields: dict[str, Any] = {"name": namespace}
    if uri is not None:
        source_fields["uri"] = uri
    facets["dataSource"] = _facet(DATASOURCE_FACET_URL, **source_fields)
    if content_hash is not None:
        facets["version"] = _facet(VERSION_FACET_URL, datasetVersion=content_hash)
    return DatasetRef(namespace, name, facets)


def model_version_dataset(model: str, version: int, artifact_sha256: str) -> DatasetRef:
    """A registered model version as an output data set (its version is the artifact hash)."""
    return DatasetRef(
        NAMESPACE,
        f"{model}/versions/{version}",
        {
            "version": _facet(VERSION_FACET_URL, datasetVersion=artifact_sha256),
            "charter_model_version": _facet(
                CHARTER_FACET_URL, model=model, version=version, artifactSha256=artifact_sha256
            ),
        },
    )


def error_facet(message: str) -> dict[str, Any]:
    return _facet(ERROR_FACET_URL, message=message, programmingLanguage="python")


def pipeline_facet(**fields: Any) -> dict[str, Any]:
    """Charter's own run facet (``charter_pipeline``): step, status, candidate version ..."""
    return _facet(CHARTER_FACET_URL, **fields)


def run_event(
    event_type: str,
    *,
    run_id: str,
    model: str,
    event_time: datetime,
    inputs: Sequence[DatasetRef] = (),
    outputs: Sequence[DatasetRef] = (),
    run_facets: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One OpenLineage RunEvent as a dict (what :class:`FileTransport` writes)."""
    if event_type not in EVENT_TYPES:
        raise InvalidArgument(
            f"unknown OpenLineage event type {event_type!r}",
            field="event_type",
            remedy=f"use one of: {', '.join(EVENT_TYPES)}",
        )
    try:
        rid = str(uuid.UUID(str(run_id)))
    except ValueError:
        raise InvalidArgument(
            f"run id {run_id!r} is not a UUID", field="run_id", remedy="pass the run's UUID"
        ) from None
    run: dict[str, Any] = {"runId": rid}
    if run_facets:
        run["facets"] = dict(run_facets)
    return {
        "eventType": event_type,
        "eventTime": iso(event_time),
        "producer": PRODUCER,
        "schemaURL": SCHEMA_URL,
        "run": run,
        "job": {
            "namespace": NAMESPACE,
            "name": job_name(model),
            "facets": {
                "jobType": _facet(
                    JOB_TYPE_FACET_URL,
                    processingType="BATCH",
                    integration="CHARTER",
                    jobType="CONTINUOUS_TRAINING",
                ),
                "documentation": _facet(
                    DOCUMENTATION_FACET_URL,
                    description=f"Charter continuous training of {model}: snapshot, validate "
                    "data, train, register, gates, shadow, compare, approval, canary, promote",
                ),
            },
        },
        "inputs": [d.to_dict() for d in inputs],
        "outputs": [d.to_dict() for d in outputs],
    }


class LineageTransport(Protocol):
    """Where run events go."""

    def emit(self, event: Mapping[str, Any]) -> None: ...


class NullTransport:
    """Drops every event (lineage switched off)."""

    def emit(self, event: Mapping[str, Any]) -> None:
        return None


class FileTransport:
    """Appends each event as one JSON line to ``<directory>/<runId>.jsonl``."""

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)

    def path_for(self, run_id: str) -> Path:
        return self.directory / f"{uuid.UUID(str(run_id))}.jsonl"

    def emit(self, event: Mapping[str, Any]) -> None:
        path = self.path_for(str(event["run"]["runId"]))
        self.directory.mkdir(parents=True, exist_ok=True)
        line = json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        with path.open("a", encoding="utf-8") as f:
            f.write(line + "\n")
            f.flush()
            os.fsync(f.fileno())


def default_transport() -> FileTransport:
    """``$CHARTER_HOME/lineage`` (``./.charter/lineage`` without ``CHARTER_HOME``)."""
    from charter.config import Settings

    return FileTransport(Settings.from_env().home / "lineage")


def read_events(path: Path | str) -> list[dict[str, Any]]:
    """The events of one JSON-lines file, in order."""
    out = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.strip():
            out.append(json.loads(line))
    return out
