"""The Open Inference Protocol v2 (the KServe / Triton HTTP/REST protocol) over the v1 scoring path.

Standard clients (``tritonclient[http]``, KServe's) work unchanged with JSON tensors:

* ``GET /v2/health/live``, ``GET /v2/health/ready``, ``GET /v2`` (server metadata);
* ``GET /v2/models/{name}[/versions/{v}]`` (metadata: one input tensor per feature),
  ``GET .../ready``;
* ``POST /v2/models/{name}[/versions/{v}]/infer``.

An inference request is a batch of N rows given column-wise: one input tensor per feature, each
of shape ``[N]`` or ``[N, 1]``. It is checked here only for what v2 adds (tensor names, datatypes,
shapes), then turned into a v1 batch body and handed to the v1 ``score_core``, so validation
against the feature schema, sticky routing, scoring, reason codes, the durable decision log and
idempotency are exactly v1's. Row ``i`` of a request with ``id`` gets the v1 request id
``f"{id}-{i}"``, so repeating a v2 request repeats, per row, the original decisions.

Conventions:

* datatypes: numeric and integer features take any integer or floating datatype (metadata lists
  FP64 and INT64), boolean features BOOL, categorical and datetime features BYTES (JSON strings).
  A JSON ``null`` element is a missing value; v1 then refuses it unless the feature is nullable;
* the entity key (for sticky routing) is an optional BYTES input named ``entity_key``, or the
  request parameter ``entity_key`` for every row; otherwise each row's request id;
* the binary-data and shared-memory extensions are refused (400): send JSON tensors, and ask for
  outputs with ``binary_data`` false (tritonclient asks for binary outputs when ``outputs`` is
  left out, so name them);
* inputs are checked against the champion's features (what the metadata lists);
  ``versions/{v}`` must name a version the model serves (champion, challenger or canary), else
  404, and the rows are still routed by the model's traffic policy, as on v1; ``model_version``
  in the response is the champion's, each row's own version is the ``version`` output;
* auth: infer as v1 (role service or admin); model metadata and readiness need a token with a
  read role (as ``GET /v1/models/{name}``); health and server metadata need none;
* a batch is at most v1's 1,000 rows and its v1 body at most v1's body limit (else 413);
* every error is ``{"error": "<field>: <problem> (remedy: <what to do>)"}`` with v1's status:
  400 malformed request (JSON, tensor name, datatype, shape), 401/403 authentication and role,
  404 unknown model or version, 413 too large, 422 a value the feature schema refuses, 503 the
  decision log cannot be written.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import Response
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from starlette.background import BackgroundTask

from charter import __version__
from charter.entities import FeatureSpec, FeatureType, Role
from charter.errors import CharterError, NotFound
from charter.serving.runtime import ModelRuntime, ServedVersion
from charter.serving.validation import FieldError, RequestInvalid, check_text, parse_json

if TYPE_CHECKING:
    from charter.serving.app import ScoreCore, Service

SERVER_NAME = "charter"
PLATFORM = "charter"
ENTITY_KEY = "entity_key"
MAX_REQUEST_ID = 128  # v1's limit on a request id

_INT_RANGES: dict[str, tuple[int, int]] = {
    "INT8": (-(2**7), 2**7 - 1),
    "INT16": (-(2**15), 2**15 - 1),
    "INT32": (-(2**31), 2**31 - 1),
    "INT64": (-(2**63), 2**63 - 1),
    "UINT8": (0, 2**8 - 1),
    "UINT16": (0, 2**16 - 1),
    "UINT32": (0, 2**32 - 1),
    "UINT64": (0, 2**64 - 1),
}
_FLOATS = frozenset({"FP16", "FP32", "FP64"})
_NUMBERS = frozenset(_INT_RANGES) | _FLOATS
DATATYPES = frozenset({"BOOL", "BYTES", "BF16"}) | _NUMBERS

_ADVERTISED: dict[FeatureType, str] = {
    FeatureType.NUMERIC: "FP64",
    FeatureType.INTEGER: "INT64",
    FeatureType.BOOLEAN: "BOOL",
    FeatureType.CATEGORICAL: "BYTES",
    FeatureType.DATETIME: "BYTES",
}
_ACCEPTED: dict[FeatureType, frozenset[str]] = {
    FeatureType.NUMERIC: _NUMBERS,
    FeatureType.INTEGER: _NUMBERS,
    FeatureType.BOOLEAN: frozenset({"BOOL"}),
    FeatureType.CATEGORICAL: frozenset({"BYTES"}),
    FeatureType.DATETIME: frozenset({"BYTES"}),
}
# Output name -> (datatype, the v1 result field it carries).
OUTPUTS: dict[str, tuple[str, str]] = {
    "score": ("FP64", "score"),
    "decision": ("BYTES", "decision"),
    "decision_id": ("BYTES", "decision_id"),
    "version": ("INT64", "version"),
    "variant": ("BYTES", "variant"),
}
_REQUEST_KEYS = frozenset({"id", "parameters", "inputs", "outputs"})
_INPUT_KEYS = frozenset({"name", "shape", "datatype", "data", "parameters"})
_OUTPUT_KEYS = frozenset({"name", "parameters"})
_SHARED_MEMORY = ("shared_memory_region", "shared_memory_byte_size", "shared_memory_offset")
_BINARY_REMEDY = (
    "send tensors as JSON: tritonclient set_data_from_numpy(..., binary_data=False) and "
    "InferRequestedOutput(name, binary_data=False) for every output wanted"
)
_V1_FIELD = re.compile(r"instances\[(\d+)\]\.(.+)", re.DOTALL)


# ----------------------------------------------------------------------------- error bodies
def _line(field: Any, message: Any, remedy: Any) -> str:
    out = str(message or "the request was refused")
    if field:
        out = f"{_v2_field(str(field))}: {out}"
    if remedy:
        out += f" (remedy: {remedy})"
    return out


def _v2_field(field: str) -> str:
    """A v1 field path (``instances[3].features.age``) in v2 terms (``input 'age', row 3``)."""
    m = _V1_FIELD.fullmatch(field)
    if m is None:
        return field
    row, rest = m.group(1), m.group(2)
    if rest.startswith("features."):
        return f"input {rest[len('features.') :]!r}, row {row}"
    if rest == "request_id":
        return f"id (row {row})"
    if rest == ENTITY_KEY:
        return f"input {ENTITY_KEY!r}, row {row}"
    return f"{rest}, row {row}"


def v2_message(error: dict[str, Any]) -> str:
    """The one-line v2 message for a v1 error object (field, message, remedy, field errors)."""
    details = error.get("details")
    problems = details.get("errors") if isinstance(details, dict) else None
    if isinstance(problems, list) and problems and all(isinstance(p, dict) for p in problems):
        shown = [_line(p.get("field"), p.get("message"), p.get("remedy")) for p in problems[:5]]
        more = len(problems) - len(shown)
        return "; ".join(shown) + (f"; and {more} more problem(s)" if more > 0 else "")
    return _line(error.get("field"), error.get("message"), error.get("remedy"))


def _json(content: Any, status: int = 200, background: BackgroundTask | None = None) -> Response:
    """A JSON response, ASCII-escaped so that any text a client sent can be echoed safely."""
    body = json.dumps(content, allow_nan=False, separators=(",", ":")).encode("ascii")
    return Response(body, status, media_type="application/json", background=background)


def v2_error(status: int, error: dict[str, Any]) -> Response:
    return _json({"error": v2_message(error)}, status)


def _bad(field: str, message: str, remedy: str, status: int = 400) -> RequestInvalid:
    return RequestInvalid([FieldError(field, message, remedy)], status)


# ----------------------------------------------------------------------------- request parsing
@dataclass(frozen=True)
class InferPlan:
    """A v2 request checked and turned into v1 terms."""

    id: str
    instances: list[dict[str, Any]]
    outputs: tuple[str, ...]


def _is_true(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _parameters(value: Any, field: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _bad(field, "must be an object", "send parameters as a JSON object, or leave it out")
    return value


def _shape(value: Any, field: str) -> int:
    """The batch size N of a shape ``[N]`` or ``[N, 1]``."""
    ok = (
        isinstance(value, list)
        and len(value) in (1, 2)
        and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in value)
        and (len(value) == 1 or value[1] == 1)
    )
    if not ok:
        raise _bad(
            field,
            f"shape {json.dumps(value)[:60]} is not [N] or [N, 1]",
            "send one value per row: shape [N] (or [N, 1]) for a batch of N rows",
        )
    n: int = value[0]
    return n


def _flatten(data: Any, depth: int, field: str) -> list[Any]:
    """Row-major elements of ``data``, nested at most ``depth`` levels of lists."""
    if not isinstance(data, list):
        raise _bad(field, "data must be a JSON array", "send the tensor's values as a list")
    items: list[Any] = data
    for _ in range(depth - 1):
        if not any(isinstance(x, list) for x in items):
            break
        flat: list[Any] = []
        for x in items:
            if isinstance(x, list):
                flat.extend(x)
            else:
                flat.append(x)
        items = flat
    if any(isinstance(x, list) for x in items):
        raise _bad(field, "data is nested deeper than its shape", "send a flat list of N values")
    return items


def _element(value: Any, datatype: str, field: str, row: int) -> Any:
    """One tensor element as a v1 JSON value, or a 400 (wrong JSON type for the datatype)."""
    if value is None:
        return None  # a missing value: v1 refuses it unless the feature is nullable
    where = f"{field}, row {row}"
    if datatype == "BYTES":
        if not isinstance(value, str):
            raise _bad(
                where,
                f"BYTES data must be JSON strings, not {type(value).__name__}",
                "send text values, or the datatype the metadata lists",
            )
        return value
    if datatype == "BOOL":
        if not isinstance(value, bool):
            raise _bad(
                where,
                f"BOOL data must be true or false, not {type(value).__name__}",
                "send JSON booleans",
            )
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _bad(
            where,
            f"{datatype} data must be JSON numbers, not {type(value).__name__}",
            "send numbers, or the datatype the metadata lists",
        )
    limits = _INT_RANGES.get(datatype)
    if limits is not None:
        if not isinstance(value, int):
            raise _bad(
                where,
                f"{datatype} data must be whole JSON numbers, got {value!r}",
                "send integers, or declare the input FP64",
            )
        if not limits[0] <= value <= limits[1]:
            raise _bad(
                where,
                f"{value} is outside the range of {datatype}",
                "send a value in range, or a wider datatype",
            )
        return value
    try:
        finite = math.isfinite(float(value))
    except OverflowError:
        finite = False
    if not finite:  # a literal such as 1e400 parses to infinity; v1 refuses it as a value (422)
        raise _bad(where, "must be finite", "send a finite number", 422)
    return value


def _feature_input(spec: FeatureSpec, datatype: str, field: str) -> None:
    if datatype not in _ACCEPTED[spec.type]:
        raise _bad(
            field,
            f"datatype {datatype} does not fit the {spec.type.value} feature {spec.name!r}",
            f"send it as {_ADVERTISED[spec.type]}, the datatype GET /v2/models/{{name}} lists",
        )


def plan_request(
    body: Any, schema: Sequence[FeatureSpec], max_batch: int, *, make_id: str
) -> InferPlan:
    """Check a v2 inference request against ``schema`` and turn it into v1 batch instances.

    Refuses (``RequestInvalid``, 400, the field naming the input) anything that is not a
    well-formed request for these features; the values themselves are left to v1's validator.
    ``make_id`` is the request id used when the request has none.
    """
    if not isinstance(body, dict):
        raise _bad("body", "must be a JSON object", 'send {"inputs": [...]}')
    extra = sorted(str(k)[:60] for k in set(body) - _REQUEST_KEYS)
    if extra:
        raise _bad(
            extra[0],
            "is not a field of a v2 inference request",
            "send only id, parameters, inputs and outputs",
        )
    params = _parameters(body.get("parameters"), "parameters")
    for key in ("binary_data_output", "binary_data"):
        if _is_true(params.get(key)):
            raise _bad(
                f"parameters.{key}", "the binary-data extension is not supported", _BINARY_REMEDY
            )
    request_id = body.get("id")
    if request_id is None or request_id == "":
        request_id = make_id
    elif not isinstance(request_id, str):
        raise _bad("id", f"must be text, not {type(request_id).__name__}", "send a string id")
    elif not check_text(request_id, "id", []):
        raise _bad("id", "must be valid Unicode text of at most 1000 characters", "fix the id")
    shared_key = params.get(ENTITY_KEY)
    if shared_key is not None and not isinstance(shared_key, str):
        raise _bad(f"parameters.{ENTITY_KEY}", "must be text", "send the applicant id as a string")

    inputs = body.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise _bad(
            "inputs",
            "must be a non-empty list of input tensors",
            "send one tensor per feature, as GET /v2/models/{name} lists",
        )
    by_name = {f.name: f for f in schema}
    columns: dict[str, list[Any]] = {}
    n: int | None = None
    first = ""
    for i, tensor in enumerate(inputs):
        if not isinstance(tensor, dict):
            raise _bad(f"inputs[{i}]", "must be an object", "send {name, shape, datatype, data}")
        name = tensor.get("name")
        if not isinstance(name, str) or not name:
            raise _bad(
                f"inputs[{i}].name",
                "must be the name of a feature",
                "name each input after a feature, as GET /v2/models/{name} lists",
            )
        shown = name if check_text(name, "name", []) and len(name) <= 100 else f"#{i}"
        field = f"input {shown!r}"
        extra = sorted(str(k)[:60] for k in set(tensor) - _INPUT_KEYS)
        if extra:
            raise _bad(
                f"{field}.{extra[0]}",
                "is not a field of an input tensor",
                "send only name, shape, datatype, data and parameters",
            )
        if name != ENTITY_KEY and name not in by_name:
            raise _bad(
                field,
                "is not a feature of this model",
                "send one input per feature, as GET /v2/models/{name} lists",
            )
        if name in columns:
            raise _bad(field, "is given twice", "send each input once")
        tparams = _parameters(tensor.get("parameters"), f"{field}.parameters")
        if "binary_data_size" in tparams or _is_true(tparams.get("binary_data")):
            raise _bad(field, "the binary-data extension is not supported", _BINARY_REMEDY)
        if any(k in tparams for k in _SHARED_MEMORY):
            raise _bad(
                field,
                "the shared-memory extension is not supported",
                "send the values in the input's data",
            )
        datatype = tensor.get("datatype")
        if not isinstance(datatype, str) or datatype not in DATATYPES:
            raise _bad(
                field,
                f"datatype {json.dumps(datatype)[:40]} is not a v2 datatype",
                "send BOOL, BYTES, INT8..INT64, UINT8..UINT64 or FP16..FP64",
            )
        if name == ENTITY_KEY:
            if datatype != "BYTES":
                raise _bad(
                    field,
                    f"datatype {datatype} does not fit the entity key",
                    "send the entity keys as BYTES",
                )
        else:
            _feature_input(by_name[name], datatype, field)
        rows = _shape(tensor.get("shape"), f"{field}.shape")
        if n is None:
            n, first = rows, field
            if n == 0:
                raise _bad(f"{field}.shape", "has no rows", "send at least one row")
            if n > max_batch:
                raise _bad(
                    f"{field}.shape",
                    f"{n} rows are more than {max_batch} per request",
                    f"split the batch into requests of at most {max_batch} rows",
                    413,
                )
        elif rows != n:
            raise _bad(
                f"{field}.shape",
                f"has {rows} rows but {first} has {n}",
                "send the same number of rows in every input",
            )
        if "data" not in tensor:
            raise _bad(f"{field}.data", "is missing", "send the tensor's values in data")
        values = _flatten(tensor["data"], len(tensor["shape"]), f"{field}.data")
        if len(values) != n:
            raise _bad(
                f"{field}.data",
                f"has {len(values)} values but its shape {json.dumps(tensor['shape'])} holds {n}",
                "send exactly one value per row",
            )
        columns[name] = [_element(v, datatype, field, r) for r, v in enumerate(values)]
    missing = [f.name for f in schema if f.name not in columns]
    if missing:
        more = f" ({len(missing) - 1} other features are missing too)" if len(missing) > 1 else ""
        raise _bad(
            f"input {missing[0]!r}",
            f"is missing{more}",
            "send one input per feature, as GET /v2/models/{name} lists",
        )
    if shared_key is not None and ENTITY_KEY in columns:
        raise _bad(
            f"parameters.{ENTITY_KEY}",
            "is given both as a parameter and as an input",
            "send the entity key one way only",
        )
    rows_n = n or 0
    if len(f"{request_id}-{rows_n - 1}") > MAX_REQUEST_ID:
        raise _bad(
            "id",
            f"is too long: with {rows_n} rows it may have at most "
            f"{MAX_REQUEST_ID - 1 - len(str(rows_n - 1))} characters",
            "send a shorter id",
        )

    outputs = _outputs(body.get("outputs"))
    keys = columns.pop(ENTITY_KEY, None)
    instances: list[dict[str, Any]] = []
    for r in range(rows_n):
        item: dict[str, Any] = {"request_id": f"{request_id}-{r}"}
        entity = keys[r] if keys is not None else shared_key
        if entity is not None:
            item[ENTITY_KEY] = entity
        item["features"] = {name: col[r] for name, col in columns.items()}
        instances.append(item)
    return InferPlan(request_id, instances, outputs)


def _outputs(value: Any) -> tuple[str, ...]:
    if value is None or value == []:
        return tuple(OUTPUTS)
    if not isinstance(value, list):
        raise _bad("outputs", "must be a list of requested outputs", 'send [{"name": ...}]')
    names: list[str] = []
    for i, out in enumerate(value):
        if not isinstance(out, dict):
            raise _bad(f"outputs[{i}]", "must be an object", 'send {"name": "score"}')
        extra = sorted(str(k)[:60] for k in set(out) - _OUTPUT_KEYS)
        if extra:
            raise _bad(
                f"outputs[{i}].{extra[0]}",
                "is not a field of a requested output",
                "send only name and parameters",
            )
        name = out.get("name")
        if not isinstance(name, str) or name not in OUTPUTS:
            shown = json.dumps(name)[:60]
            raise _bad(
                f"outputs[{i}]",
                f"{shown} is not an output of this model",
                f"ask for some of: {', '.join(OUTPUTS)}",
            )
        oparams = _parameters(out.get("parameters"), f"outputs[{i}].parameters")
        if _is_true(oparams.get("binary_data")):
            raise _bad(
                f"output {name!r}", "the binary-data extension is not supported", _BINARY_REMEDY
            )
        if any(k in oparams for k in _SHARED_MEMORY):
            raise _bad(
                f"output {name!r}",
                "the shared-memory extension is not supported",
                "leave the output's parameters out",
            )
        if "classification" in oparams:
            raise _bad(
                f"output {name!r}",
                "the classification extension is not supported",
                "ask for score and decision instead",
            )
        if name in names:
            raise _bad(f"output {name!r}", "is asked for twice", "ask for each output once")
        names.append(name)
    return tuple(names)


def model_metadata(rt: ModelRuntime, served: ServedVersion) -> dict[str, Any]:
    return {
        "name": rt.name,
        "versions": [str(v) for v in answering_versions(rt)],
        "platform": PLATFORM,
        "inputs": [
            {"name": f.name, "datatype": _ADVERTISED[f.type], "shape": [-1]}
            for f in served.validator.schema
        ],
        "outputs": [
            {"name": name, "datatype": datatype, "shape": [-1]}
            for name, (datatype, _) in OUTPUTS.items()
        ],
    }


def answering_versions(rt: ModelRuntime) -> list[int]:
    """The versions whose decisions a request may get back: all served but the shadows."""
    return sorted(v for v in rt.versions if v not in rt.policy.shadows)


def _version(rt: ModelRuntime, version: str | None) -> ServedVersion:
    if version is None:
        return rt.champion
    served = [str(v) for v in answering_versions(rt)]
    if version not in served:
        raise NotFound(
            f"model {rt.name!r} does not serve version {version[:40]!r}",
            field="version",
            remedy=f"use one of the versions it serves: {', '.join(served)}",
        )
    return rt.versions[int(version)]


# ----------------------------------------------------------------------------- OpenAPI
_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "string"}},
}
_TENSOR_META: dict[str, Any] = {
    "type": "object",
    "required": ["name", "datatype", "shape"],
    "properties": {
        "name": {"type": "string"},
        "datatype": {"type": "string"},
        "shape": {"type": "array", "items": {"type": "integer"}},
    },
}
_MODEL_METADATA: dict[str, Any] = {
    "type": "object",
    "required": ["name", "versions", "platform", "inputs", "outputs"],
    "properties": {
        "name": {"type": "string"},
        "versions": {"type": "array", "items": {"type": "string"}},
        "platform": {"type": "string"},
        "inputs": {"type": "array", "items": _TENSOR_META},
        "outputs": {"type": "array", "items": _TENSOR_META},
    },
}
_MODEL_READY: dict[str, Any] = {
    "type": "object",
    "required": ["name", "ready"],
    "properties": {"name": {"type": "string"}, "ready": {"type": "boolean"}},
}
_INFER_RESPONSE: dict[str, Any] = {
    "type": "object",
    "required": ["model_name", "model_version", "id", "outputs"],
    "properties": {
        "model_name": {"type": "string"},
        "model_version": {"type": "string"},
        "id": {"type": "string"},
        "outputs": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "datatype", "shape", "data"],
                "properties": {
                    "name": {"type": "string", "enum": list(OUTPUTS)},
                    "datatype": {"type": "string"},
                    "shape": {"type": "array", "items": {"type": "integer"}},
                    "data": {"type": "array"},
                },
            },
        },
    },
}
_INFER_REQUEST: dict[str, Any] = {
    "type": "object",
    "required": ["inputs"],
    "additionalProperties": False,
    "properties": {
        "id": {"type": "string"},
        "parameters": {"type": "object"},
        "inputs": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["name", "shape", "datatype", "data"],
                "additionalProperties": False,
                "properties": {
                    "name": {"type": "string"},
                    "shape": {
                        "type": "array",
                        "minItems": 1,
                        "maxItems": 2,
                        "items": {"type": "integer", "minimum": 0},
                    },
                    "datatype": {"type": "string", "enum": sorted(DATATYPES)},
                    "data": {"type": "array"},
                    "parameters": {"type": "object"},
                },
            },
        },
        "outputs": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name"],
                "additionalProperties": False,
                "properties": {
                    "name": {"type": "string", "enum": list(OUTPUTS)},
                    "parameters": {"type": "object"},
                },
            },
        },
    },
}
_WHY = {
    400: "Malformed request: JSON, tensor name, datatype or shape",
    401: "No valid API token",
    403: "The token's user lacks the role",
    404: "Unknown model or version",
    413: "Too large",
    422: "A value the feature schema refuses",
    503: "Not ready, or the decision log cannot be written",
}


def _responses(ok: dict[str, Any], *errors: int) -> dict[int | str, dict[str, Any]]:
    out: dict[int | str, dict[str, Any]] = {
        200: {"description": "OK", "content": {"application/json": {"schema": ok}}}
    }
    for status in errors:
        out[status] = {
            "description": _WHY[status] + ' (v2 error: {"error": "<message>"})',
            "content": {"application/json": {"schema": _ERROR_SCHEMA}},
        }
    return out


# ----------------------------------------------------------------------------- routes
def add_v2_routes(app: FastAPI, svc: Service, score_core: ScoreCore) -> None:
    """Register the v2 routes on ``app``, scoring through ``score_core`` (the v1 path)."""
    # Imported here: app.py imports this module, and calls this function once it is loaded.
    from charter.serving.app import MAX_BATCH, MAX_BODY_BYTES, READ_ROLES, SCORE_ROLES

    meta_roles = (*READ_ROLES, Role.DEVELOPER)  # as GET /v1/models/{name}

    def database_answers() -> bool:
        try:
            with svc.registry.db.read() as conn:
                conn.execute(text("SELECT 1"))
        except (CharterError, SQLAlchemyError):
            return False
        return True

    def failed(name: str, e: CharterError) -> Response:
        svc.metrics.errors.labels(name, e.code).inc()
        return v2_error(e.http_status, e.to_dict())

    async def read_body(chunks: AsyncIterator[bytes]) -> Any:
        parts: list[bytes] = []
        size = 0
        async for chunk in chunks:
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                raise _bad(
                    "body",
                    f"the body is larger than {MAX_BODY_BYTES} bytes",
                    "send fewer rows per request",
                    413,
                )
            parts.append(chunk)
        return parse_json(b"".join(parts))

    @app.get(
        "/v2/health/live",
        summary="v2: the server is live",
        responses=_responses({"type": "object", "properties": {"live": {"type": "boolean"}}}),
    )
    async def v2_live() -> Response:
        return _json({"live": True})

    @app.get(
        "/v2/health/ready",
        summary="v2: the server is ready (models loaded, database answering)",
        responses=_responses({"type": "object", "properties": {"ready": {"type": "boolean"}}}, 503),
    )
    async def v2_ready() -> Response:
        db_ok = await asyncio.to_thread(database_answers)
        if db_ok and svc.runtime.models:
            return _json({"ready": True})
        why = "the database does not answer" if not db_ok else "no model is loaded"
        remedy = (
            "check the database connection"
            if not db_ok
            else "give a model a champion; load failures are listed at /readyz"
        )
        message = _line("server", f"not ready: {why}", remedy)
        return _json({"ready": False, "error": message}, 503)

    @app.get(
        "/v2",
        summary="v2: server metadata",
        responses=_responses(
            {
                "type": "object",
                "required": ["name", "version", "extensions"],
                "properties": {
                    "name": {"type": "string"},
                    "version": {"type": "string"},
                    "extensions": {"type": "array", "items": {"type": "string"}},
                },
            }
        ),
    )
    async def v2_server_metadata() -> Response:
        return _json({"name": SERVER_NAME, "version": __version__, "extensions": []})

    async def metadata(name: str, version: str | None, request: Request) -> Response:
        try:
            svc.actor(request, meta_roles)
            rt = svc.runtime.get(name)
            served = _version(rt, version)
        except CharterError as e:
            return failed(name, e)
        return _json(model_metadata(rt, served))

    async def ready(name: str, version: str | None, request: Request) -> Response:
        try:
            svc.actor(request, meta_roles)
            rt = svc.runtime.get(name)
            _version(rt, version)
        except CharterError as e:
            return failed(name, e)
        return _json({"name": rt.name, "ready": True})

    async def infer(name: str, version: str | None, request: Request) -> Response:
        auth = request.headers.get("authorization", "")
        try:
            svc.authorize(auth, SCORE_ROLES)
            rt = svc.runtime.get(name)
            _version(rt, version)
            if "inference-header-content-length" in request.headers:
                raise _bad(
                    "Inference-Header-Content-Length",
                    "the binary-data extension is not supported",
                    _BINARY_REMEDY,
                )
            body = await read_body(request.stream())
            plan = plan_request(
                body, rt.champion.validator.schema, MAX_BATCH, make_id=str(uuid.uuid4())
            )
            v1_body = json.dumps({"instances": plan.instances}, separators=(",", ":")).encode()
            if len(v1_body) > MAX_BODY_BYTES:
                per_row = len(v1_body) // len(plan.instances) + 1
                raise _bad(
                    "inputs",
                    f"the {len(plan.instances)} rows are more than one request may carry",
                    f"send at most {MAX_BODY_BYTES // per_row} rows per request",
                    413,
                )
        except CharterError as e:
            return failed(name, e)

        async def chunks() -> AsyncIterator[bytes]:
            yield v1_body

        status, payload, shadow = await score_core(name, auth, chunks())
        if status != 200:
            error = payload.get("error")
            return v2_error(status, error if isinstance(error, dict) else {"message": error})
        results: list[dict[str, Any]] = payload["results"]
        outputs = []
        for out in plan.outputs:
            datatype, key = OUTPUTS[out]
            outputs.append(
                {
                    "name": out,
                    "datatype": datatype,
                    "shape": [len(results)],
                    "data": [r[key] for r in results],
                }
            )
        response = {
            "model_name": rt.name,
            "model_version": str(rt.champion.version),
            "id": plan.id,
            "outputs": outputs,
        }
        task = BackgroundTask(svc.queue_shadow, shadow) if shadow is not None else None
        return _json(response, background=task)

    meta = _responses(_MODEL_METADATA, 401, 403, 404)
    is_ready = _responses(_MODEL_READY, 401, 403, 404)
    scored = _responses(_INFER_RESPONSE, 400, 401, 403, 404, 413, 422, 503)
    body_doc = {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _INFER_REQUEST}},
        }
    }

    @app.get("/v2/models/{name}", summary="v2: model metadata", responses=meta)
    async def v2_model_metadata(name: str, request: Request) -> Response:
        return await metadata(name, None, request)

    @app.get(
        "/v2/models/{name}/versions/{version}", summary="v2: model version metadata", responses=meta
    )
    async def v2_version_metadata(name: str, version: str, request: Request) -> Response:
        return await metadata(name, version, request)

    @app.get("/v2/models/{name}/ready", summary="v2: the model is ready", responses=is_ready)
    async def v2_model_ready(name: str, request: Request) -> Response:
        return await ready(name, None, request)

    @app.get(
        "/v2/models/{name}/versions/{version}/ready",
        summary="v2: the model version is ready",
        responses=is_ready,
    )
    async def v2_version_ready(name: str, version: str, request: Request) -> Response:
        return await ready(name, version, request)

    @app.post(
        "/v2/models/{name}/infer",
        summary="v2: infer a batch; decisions are logged first",
        responses=scored,
        openapi_extra=body_doc,
    )
    async def v2_infer(name: str, request: Request) -> Response:
        return await infer(name, None, request)

    @app.post(
        "/v2/models/{name}/versions/{version}/infer",
        summary="v2: infer a batch, naming a served version (rows are routed by the policy)",
        responses=scored,
        openapi_extra=body_doc,
    )
    async def v2_version_infer(name: str, version: str, request: Request) -> Response:
        return await infer(name, version, request)
