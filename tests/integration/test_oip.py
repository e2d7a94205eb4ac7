"""The Open Inference Protocol v2: metadata, readiness, inference equal to v1, v2 error bodies, and
the real ``tritonclient[http]`` client against a live server."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from charter.registry.service import Registry
from charter.serving.app import create_app
from charter.storage.schema import decisions

from .conftest import MODEL, Served, add_version

INFER = f"/v2/models/{MODEL}/infer"
OUTPUT_NAMES = ["score", "decision", "decision_id", "version", "variant"]


def count(served: Served) -> int:
    with served.registry.db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(decisions)).scalar_one())


def metadata(client: TestClient, served: Served) -> dict[str, Any]:
    r = client.get(f"/v2/models/{MODEL}", headers=served.headers())
    assert r.status_code == 200, r.text
    meta: dict[str, Any] = r.json()
    return meta


def tensors(meta: dict[str, Any], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One input tensor per feature, with the datatype the metadata lists."""
    return [
        {
            "name": i["name"],
            "shape": [len(rows)],
            "datatype": i["datatype"],
            "data": [row[i["name"]] for row in rows],
        }
        for i in meta["inputs"]
    ]


def v1_batch(
    client: TestClient, served: Served, rows: list[dict[str, Any]], keys: list[str] | None = None
) -> Any:
    instances: list[dict[str, Any]] = [{"features": row} for row in rows]
    for item, key in zip(instances, keys or [], strict=False):
        item["entity_key"] = key
    body = {"instances": instances}
    r = client.post(f"/v1/models/{MODEL}/score", json=body, headers=served.headers())
    assert r.status_code == 200, r.text
    return r.json()["results"]


def outputs(response: dict[str, Any]) -> dict[str, list[Any]]:
    return {o["name"]: o["data"] for o in response["outputs"]}


def v2_error(r: Any) -> str:
    body = r.json()
    assert set(body) == {"error"} and isinstance(body["error"], str), body
    message: str = body["error"]
    return message


# ----------------------------------------------------------------------------- metadata


def test_health_and_server_metadata(client: TestClient, served: Served) -> None:
    assert client.get("/v2/health/live").json() == {"live": True}
    ready = client.get("/v2/health/ready")
    assert ready.status_code == 200 and ready.json() == {"ready": True}
    meta = client.get("/v2").json()
    assert meta["name"] == "charter" and meta["version"] and meta["extensions"] == []
    spec = client.get("/openapi.json").json()
    for path in (
        "/v2/health/live",
        "/v2/health/ready",
        "/v2",
        "/v2/models/{name}",
        "/v2/models/{name}/versions/{version}",
        "/v2/models/{name}/ready",
        "/v2/models/{name}/versions/{version}/ready",
        "/v2/models/{name}/infer",
        "/v2/models/{name}/versions/{version}/infer",
    ):
        operation = next(iter(spec["paths"][path].values()))
        assert operation["summary"].startswith("v2:"), path


def test_not_ready_without_a_served_model(registry: Registry) -> None:
    with TestClient(create_app(registry, refresh_seconds=3600)) as c:
        assert c.get("/v2/health/live").status_code == 200
        r = c.get("/v2/health/ready")
        assert r.status_code == 503 and "no model is loaded" in r.json()["error"]


def test_model_metadata_and_readiness(client: TestClient, served: Served) -> None:
    meta = metadata(client, served)
    assert meta["name"] == MODEL and meta["versions"] == ["1"] and meta["platform"] == "charter"
    types = {i["name"]: i["datatype"] for i in meta["inputs"]}
    assert len(types) == 20 and set(types) == set(served.rows[0])
    assert types["age_in_years"] == "INT64" and types["purpose"] == "BYTES"
    assert all(i["shape"] == [-1] for i in meta["inputs"])
    assert [(o["name"], o["datatype"]) for o in meta["outputs"]] == [
        ("score", "FP64"),
        ("decision", "BYTES"),
        ("decision_id", "BYTES"),
        ("version", "INT64"),
        ("variant", "BYTES"),
    ]
    h = served.headers()
    assert client.get(f"/v2/models/{MODEL}/versions/1", headers=h).json() == meta
    r = client.get(f"/v2/models/{MODEL}/versions/2", headers=h)
    assert r.status_code == 404 and "version" in v2_error(r)
    assert client.get(f"/v2/models/{MODEL}/ready", headers=h).json() == {
        "name": MODEL,
        "ready": True,
    }
    assert client.get(f"/v2/models/{MODEL}/versions/1/ready", headers=h).status_code == 200
    r = client.get(f"/v2/models/{MODEL}/versions/9/ready", headers=h)
    assert r.status_code == 404 and "'9'" in v2_error(r)
    r = client.get("/v2/models/nope/ready", headers=h)
    assert r.status_code == 404 and "'nope'" in v2_error(r)
    r = client.get("/v2/models/nope", headers=h)
    assert r.status_code == 404 and "remedy" in v2_error(r)
    r = client.get(f"/v2/models/{MODEL}")
    assert r.status_code == 401 and "Authorization" in v2_error(r)


# ----------------------------------------------------------------------------- inference


def test_infer_equals_v1_and_logs_each_row(client: TestClient, served: Served) -> None:
    rows = served.rows[:5]
    meta = metadata(client, served)
    want = v1_batch(client, served, rows)
    r = client.post(
        INFER, json={"id": "batch-1", "inputs": tensors(meta, rows)}, headers=served.headers()
    )
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["model_name"] == MODEL and got["model_version"] == "1" and got["id"] == "batch-1"
    assert [o["name"] for o in got["outputs"]] == OUTPUT_NAMES
    assert all(o["shape"] == [5] for o in got["outputs"])
    out = outputs(got)
    assert np.allclose(out["score"], [w["score"] for w in want], rtol=0, atol=1e-12)
    assert out["decision"] == [w["decision"] for w in want]
    assert out["version"] == [1] * 5 and out["variant"] == ["champion"] * 5
    assert count(served) == 10  # 5 from v1, 5 from v2
    with served.registry.db.read() as conn:
        logged = dict(
            conn.execute(
                select(decisions.c.request_id, decisions.c.id).where(
                    decisions.c.request_id.like("batch-1-%")
                )
            ).all()
        )
    assert logged == {f"batch-1-{i}": out["decision_id"][i] for i in range(5)}


def test_nested_data_output_subset_and_entity_keys(client: TestClient, served: Served) -> None:
    rows = served.rows[10:13]
    meta = metadata(client, served)
    inputs = tensors(meta, rows)
    for t in inputs:  # shape [N, 1], data nested row by row
        t["shape"] = [3, 1]
        t["data"] = [[v] for v in t["data"]]
    inputs.append(
        {"name": "entity_key", "shape": [3], "datatype": "BYTES", "data": ["a", "b", "c"]}
    )
    body = {"id": "n", "inputs": inputs, "outputs": [{"name": "decision_id"}, {"name": "score"}]}
    r = client.post(INFER, json=body, headers=served.headers())
    assert r.status_code == 200, r.text
    assert [o["name"] for o in r.json()["outputs"]] == ["decision_id", "score"]
    want = v1_batch(client, served, rows)
    assert outputs(r.json())["score"] == [w["score"] for w in want]
    shared = {"id": "p", "inputs": tensors(meta, rows[:1]), "parameters": {"entity_key": "z"}}
    assert client.post(INFER, json=shared, headers=served.headers()).status_code == 200
    with served.registry.db.read() as conn:
        keys = dict(conn.execute(select(decisions.c.request_id, decisions.c.entity_key)).all())
    assert keys["n-0"] == "a" and keys["n-2"] == "c" and keys["p-0"] == "z"


def test_repeated_id_is_idempotent_per_row(client: TestClient, served: Served) -> None:
    meta = metadata(client, served)
    body = {"id": "same", "inputs": tensors(meta, served.rows[20:24])}
    first = client.post(INFER, json=body, headers=served.headers()).json()
    again = client.post(INFER, json=body, headers=served.headers()).json()
    assert outputs(again) == outputs(first) and count(served) == 4
    # Without an id every request is new; the response carries the id it was given.
    anon = client.post(INFER, json={"inputs": body["inputs"]}, headers=served.headers()).json()
    assert anon["id"] and anon["id"] != "same" and count(served) == 8
    assert set(outputs(anon)["decision_id"]).isdisjoint(outputs(first)["decision_id"])


def test_versioned_infer_and_sticky_routing_like_v1(served: Served) -> None:
    reg, p = served.registry, served.people
    v2 = add_version(reg, p, c=0.05)
    reg.set_alias(p.app, MODEL, v2, "challenger")
    reg.set_traffic(p.app, MODEL, challenger_share=0.5)
    with TestClient(create_app(reg, refresh_seconds=3600)) as c:
        meta = metadata(c, served)
        assert meta["versions"] == ["1", str(v2)]
        rows = served.rows[:40]
        keys = [f"applicant-{i}" for i in range(40)]
        inputs = [
            *tensors(meta, rows),
            {"name": "entity_key", "shape": [40], "datatype": "BYTES", "data": keys},
        ]
        r = c.post(
            f"/v2/models/{MODEL}/versions/{v2}/infer",
            json={"inputs": inputs},
            headers=served.headers(),
        )
        assert r.status_code == 200, r.text
        assert r.json()["model_version"] == "1"  # the champion's
        got = outputs(r.json())
        want = v1_batch(c, served, rows, keys)
        assert got["version"] == [w["version"] for w in want]
        assert got["variant"] == [w["variant"] for w in want]
        assert got["score"] == [w["score"] for w in want]
        assert {1, v2} == set(got["version"])
        r = c.post(
            f"/v2/models/{MODEL}/versions/77/infer",
            json={"inputs": inputs},
            headers=served.headers(),
        )
        assert r.status_code == 404 and "77" in v2_error(r)


# ----------------------------------------------------------------------------- refusals

Mutation = Callable[[dict[str, Any], dict[str, str]], None]


def _input(body: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(t for t in body["inputs"] if t["name"] == name)
    return found


def _set(name: str, **changes: Any) -> Mutation:
    def mutate(body: dict[str, Any], headers: dict[str, str]) -> None:
        _input(body, name).update(changes)

    return mutate


def _drop(name: str) -> Mutation:
    def mutate(body: dict[str, Any], headers: dict[str, str]) -> None:
        body["inputs"].remove(_input(body, name))

    return mutate


def _unset(name: str, key: str) -> Mutation:
    def mutate(body: dict[str, Any], headers: dict[str, str]) -> None:
        del _input(body, name)[key]

    return mutate


def _add(tensor: dict[str, Any]) -> Mutation:
    def mutate(body: dict[str, Any], headers: dict[str, str]) -> None:
        body["inputs"].append(tensor)

    return mutate


def _top(**changes: Any) -> Mutation:
    def mutate(body: dict[str, Any], headers: dict[str, str]) -> None:
        body.update(changes)

    return mutate


def _header(key: str, value: str) -> Mutation:
    def mutate(body: dict[str, Any], headers: dict[str, str]) -> None:
        headers[key] = value

    return mutate


def _value(name: str, row: int, value: Any) -> Mutation:
    def mutate(body: dict[str, Any], headers: dict[str, str]) -> None:
        _input(body, name)["data"][row] = value

    return mutate


HUGE = "<the number 1e400>"

# (case, mutation of a valid 3-row request, status, text the message must contain)
REFUSED: list[tuple[str, Mutation, int, str]] = [
    ("numeric as BYTES", _set("age_in_years", datatype="BYTES", data=["1", "2", "3"]), 400,
     "'age_in_years'"),
    ("categorical as FP64", _set("purpose", datatype="FP64", data=[1.0, 2.0, 3.0]), 400,
     "'purpose'"),
    ("unknown datatype", _set("age_in_years", datatype="FLOAT"), 400, "'age_in_years'"),
    ("INT64 data are strings", _value("age_in_years", 1, "forty"), 400, "'age_in_years', row 1"),
    ("INT64 data not whole", _value("age_in_years", 0, 35.5), 400, "'age_in_years', row 0"),
    ("BYTES data are numbers", _value("purpose", 2, 7), 400, "'purpose', row 2"),
    ("2-D shape", _set("credit_amount", shape=[3, 2]), 400, "'credit_amount'"),
    ("shape not a list", _set("credit_amount", shape=3), 400, "'credit_amount'"),
    ("N inconsistent", _set("credit_amount", shape=[2], data=[1, 2]), 400, "'credit_amount'"),
    ("data length != shape", _set("credit_amount", data=[1000, 2000]), 400, "'credit_amount'"),
    ("data not a list", _set("credit_amount", data=5), 400, "'credit_amount'"),
    ("data null", _set("credit_amount", data=None), 400, "'credit_amount'"),
    ("data missing", _unset("credit_amount", "data"), 400, "'credit_amount'"),
    ("data nested too deep", _set("credit_amount", data=[[[1]], [[2]], [[3]]]), 400,
     "'credit_amount'"),
    ("unknown input", _add({"name": "shoe_size", "shape": [3], "datatype": "INT64",
                            "data": [1, 2, 3]}), 400, "'shoe_size'"),
    ("missing input", _drop("age_in_years"), 400, "'age_in_years'"),
    ("input twice", _add({"name": "job", "shape": [3], "datatype": "BYTES",
                          "data": ["a", "b", "c"]}), 400, "'job'"),
    ("entity key as INT64", _add({"name": "entity_key", "shape": [3], "datatype": "INT64",
                                  "data": [1, 2, 3]}), 400, "'entity_key'"),
    ("unknown request field", _top(instances=[]), 400, "instances"),
    ("id not text", _top(id=7), 400, "id"),
    ("id too long", _top(id="x" * 130), 400, "id"),
    ("no inputs", _top(inputs=[]), 400, "inputs"),
    ("unknown output", _top(outputs=[{"name": "probability"}]), 400, "probability"),
    ("binary output", _top(outputs=[{"name": "score", "parameters": {"binary_data": True}}]),
     400, "binary"),
    ("binary_data_output", _top(parameters={"binary_data_output": True}), 400, "binary"),
    ("binary input", _set("age_in_years", parameters={"binary_data_size": 24}), 400,
     "'age_in_years'"),
    ("binary header", _header("Inference-Header-Content-Length", "100"), 400,
     "Inference-Header-Content-Length"),
    ("classification", _top(outputs=[{"name": "score", "parameters": {"classification": 2}}]),
     400, "classification"),
    # Values the feature schema refuses: v1's validator and status, v2's body.
    ("implausible value", _value("age_in_years", 2, 1_000_000), 422, "'age_in_years', row 2"),
    ("unknown category", _value("purpose", 0, "yacht"), 422, "'purpose', row 0"),
    ("infinite number", _set("credit_amount", datatype="FP64", data=[1.0, HUGE, 2.0]), 422,
     "'credit_amount', row 1"),
    ("missing value", _value("job", 1, None), 422, "'job', row 1"),
    ("empty entity key", _add({"name": "entity_key", "shape": [3], "datatype": "BYTES",
                               "data": ["a", "", "c"]}), 422, "'entity_key', row 1"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "mutate", "status", "needle"), REFUSED, ids=[c[0] for c in REFUSED]
)
def test_refusals_name_the_input(
    client: TestClient, served: Served, case: str, mutate: Mutation, status: int, needle: str
) -> None:
    body: dict[str, Any] = {
        "id": "bad",
        "inputs": tensors(metadata(client, served), served.rows[:3]),
    }
    headers = dict(served.headers())
    mutate(body, headers)
    raw = json.dumps(body).replace(json.dumps(HUGE), "1e400")  # JSON that parses to infinity
    r = client.post(INFER, content=raw, headers={**headers, "content-type": "application/json"})
    assert r.status_code == status, (case, r.text)
    message = v2_error(r)
    assert needle in message and "remedy:" in message, (case, message)
    assert count(served) == 0


def test_unparseable_and_too_large(client: TestClient, served: Served) -> None:
    h = {**served.headers(), "content-type": "application/json"}
    for raw in (b'{"inputs": [', b"[1, 2]", b'{"inputs": NaN}', b'{"id": "\xff"}'):
        r = client.post(INFER, content=raw, headers=h)
        assert r.status_code == 400 and v2_error(r).startswith("body"), (raw, r.text)
    meta = metadata(client, served)
    rows = [served.rows[i % 1000] for i in range(1001)]
    r = client.post(INFER, json={"inputs": tensors(meta, rows)}, headers=h)
    assert r.status_code == 413 and "1000" in v2_error(r)
    r = client.post(INFER, content=b" " * 1_000_001, headers=h)
    assert r.status_code == 413
    assert count(served) == 0


def test_auth(client: TestClient, served: Served) -> None:
    body = {"inputs": tensors(metadata(client, served), served.rows[:1])}
    r = client.post(INFER, json=body)
    assert r.status_code == 401 and "Authorization" in v2_error(r)
    r = client.post(INFER, json=body, headers={"Authorization": "Bearer chr_nope"})
    assert r.status_code == 401 and v2_error(r)
    dev_token = served.registry.identity.issue_token(served.people.admin, "dana")
    dev = {"Authorization": f"Bearer {dev_token}"}
    r = client.post(INFER, json=body, headers=dev)
    assert r.status_code == 403 and "service" in v2_error(r)
    assert client.get(f"/v2/models/{MODEL}", headers=dev).status_code == 200  # reading is allowed
    r = client.post("/v2/models/nope/infer", json=body, headers=served.headers())
    assert r.status_code == 404 and "'nope'" in v2_error(r)
    assert count(served) == 0


# ----------------------------------------------------------------------------- tritonclient


NUMPY_TYPES = {"FP64": np.float64, "INT64": np.int64, "BOOL": np.bool_, "BYTES": np.object_}


def test_tritonclient_against_a_live_server(served: Served, live: int) -> None:
    import tritonclient.http as triton
    from tritonclient.utils import InferenceServerException

    client = triton.InferenceServerClient(url=f"127.0.0.1:{live}")
    headers = served.headers()
    try:
        assert client.is_server_live()
        assert client.is_server_ready()
        assert client.is_model_ready(MODEL, headers=headers)
        assert not client.is_model_ready("nope", headers=headers)
        meta = client.get_model_metadata(MODEL, headers=headers)
        assert meta["name"] == MODEL and meta["platform"] == "charter"
        rows = served.rows[100:108]
        inputs = []
        for spec in meta["inputs"]:
            arr: np.ndarray[Any, Any] = np.array(
                [r[spec["name"]] for r in rows], dtype=NUMPY_TYPES[spec["datatype"]]
            )
            tensor = triton.InferInput(spec["name"], [len(rows)], spec["datatype"])
            tensor.set_data_from_numpy(arr, binary_data=False)
            inputs.append(tensor)
        wanted = [triton.InferRequestedOutput(n, binary_data=False) for n in OUTPUT_NAMES]
        result = client.infer(MODEL, inputs, request_id="triton-1", outputs=wanted, headers=headers)
        scores = result.as_numpy("score")
        assert scores is not None and scores.dtype == np.float64 and scores.shape == (8,)
        with TestClient(create_app(served.registry, refresh_seconds=3600)) as c:
            want = [w["score"] for w in v1_batch(c, served, rows)]
        assert np.allclose(scores, want, rtol=0, atol=1e-12)
        versions = result.as_numpy("version")
        assert versions is not None and versions.tolist() == [1] * 8
        assert result.get_response()["id"] == "triton-1"
        assert count(served) == 16  # 8 through tritonclient, 8 through /v1
        # A refusal arrives as the client's exception, with the v2 message.
        bad = triton.InferInput("age_in_years", [len(rows)], "BYTES")
        bad.set_data_from_numpy(np.array(["x"] * 8, dtype=np.object_), binary_data=False)
        swapped = [bad if i.name() == "age_in_years" else i for i in inputs]
        with pytest.raises(InferenceServerException, match="age_in_years"):
            client.infer(MODEL, swapped, outputs=wanted, headers=headers)
    finally:
        client.close()
