"""The HTTP service: ``create_app(registry)`` returns the FastAPI application.

The scoring path, per request: authenticate (token cache) -> parse strict JSON -> validate
against the version's schema -> route (pure, sticky) -> score (compiled) -> reason codes ->
durable log (group commit; the response waits for the commit) -> respond. Shadow versions are
scored after the response has been sent and logged beside the decision, never returned.

Errors are JSON: ``{"error": {"code", "message", "field", "remedy", "details"}}`` with a 4xx status
for anything the caller can fix, 503 when the decision log cannot be written (nothing unrecorded
is ever returned), never a bare 500 for bad input.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Literal

import orjson
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector
from sqlalchemy import select, text
from starlette.background import BackgroundTask

from charter.clock import iso, now_iso, parse_iso, system_clock
from charter.entities import Actor, Role
from charter.errors import (
    AuthenticationFailed,
    CharterError,
    NotFound,
    PermissionDenied,
    ScoringFailed,
)
from charter.ids import uuid7
from charter.registry.service import Registry
from charter.serving.decision_log import (
    DecisionLog,
    DecisionQueue,
    DecisionRecord,
    get_decision,
    get_outcome,
    list_decisions,
)
from charter.serving.oip import add_v2_routes
from charter.serving.routing import route
from charter.serving.runtime import ModelRuntime, Runtime, ServedVersion
from charter.serving.server import workers_serving
from charter.serving.shadow import ShadowJob, ShadowWorker
from charter.serving.validation import FieldError, RequestInvalid, check_text, parse_json
from charter.storage.schema import decisions, outcomes

log = logging.getLogger("charter.serving")

MAX_BODY_BYTES = 1_000_000
MAX_BATCH = 1000
TOKEN_CACHE_SECONDS = 30.0
SCORE_ROLES = (Role.SERVICE, Role.ADMIN)
READ_ROLES = (Role.SERVICE, Role.ADMIN, Role.AUDITOR, Role.VALIDATOR, Role.APPROVER)

_ERROR_CAUSES = {
    400: "The body is not UTF-8 JSON, or is nested too deeply",
    401: "No API token, or an unknown, revoked or expired one",
    403: "The token's user lacks the role this route needs",
    404: "No such model being served, or no such decision",
    409: "The decision already has a different outcome; outcomes are final",
    413: f"The body is larger than {MAX_BODY_BYTES} bytes",
    422: "One or more fields are invalid; details.errors names each one",
    503: "The database cannot be reached or written; nothing was decided or recorded",
}


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the error statuses a v1 route can answer, each with the
    ``{"error": {...}}`` body (the ``Error`` schema, added by ``CharterAPI.openapi``)."""
    ref = {"$ref": "#/components/schemas/Error"}
    return {
        s: {"description": _ERROR_CAUSES[s], "content": {"application/json": {"schema": ref}}}
        for s in statuses
    }


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.requests = Counter(
            "charter_requests", "Scoring requests", ["model", "version", "variant", "status"],
            registry=r,
        )  # fmt: skip
        self.latency = Histogram(
            "charter_request_latency_seconds", "Scoring latency, parse to durable log",
            ["model", "variant"], registry=r,
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0),
        )  # fmt: skip
        self.errors = Counter(
            "charter_errors", "Refused or failed requests", ["model", "code"], registry=r
        )
        self.scores = Histogram(
            "charter_score", "Scores returned", ["model", "version"], registry=r,
            buckets=tuple(i / 20 for i in range(1, 20)),
        )  # fmt: skip
        self.shadow_disagreement = Counter(
            "charter_shadow_disagreements", "Shadow decision differs from the returned one",
            ["model", "shadow_version"], registry=r,
        )  # fmt: skip
        self.shadow_scored = Counter(
            "charter_shadow_scored", "Shadow scores", ["model", "shadow_version"], registry=r
        )
        self.shadow_dropped = Counter(
            "charter_shadow_dropped",
            "Requests not shadow-scored because the shadow queue was full",
            registry=r,
        )
        self._served: dict[tuple[str, int, str], tuple[Any, Any, Any]] = {}
        self._shadow: dict[tuple[str, int], tuple[Any, Any]] = {}

    def served(self, model: str, version: int, variant: str) -> tuple[Any, Any, Any]:
        """The (requests ok, latency, scores) series of one served version and variant, looked
        up once: ``labels()`` costs several microseconds a call on the request path."""
        key = (model, version, variant)
        series = self._served.get(key)
        if series is None:
            series = (
                self.requests.labels(model, str(version), variant, "ok"),
                self.latency.labels(model, variant),
                self.scores.labels(model, str(version)),
            )
            self._served[key] = series
        return series

    def shadow(self, model: str, version: int) -> tuple[Any, Any]:
        """The (scored, disagreed) series of one shadow version, looked up once."""
        key = (model, version)
        series = self._shadow.get(key)
        if series is None:
            label = str(version)
            series = (
                self.shadow_scored.labels(model, label),
                self.shadow_disagreement.labels(model, label),
            )
            self._shadow[key] = series
        return series


@dataclass
class Service:
    registry: Registry
    runtime: Runtime
    decision_log: DecisionQueue
    metrics: Metrics
    shadows: ShadowWorker
    refresh_seconds: float = 1.0
    # Scoring of slow (generic) models, off the event loop (opened and closed with the app).
    scoring_pool: ThreadPoolExecutor | None = None
    _tokens: dict[str, tuple[float, Actor]] = field(default_factory=dict)

    async def queue_shadow(self, job: ShadowJob) -> None:
        """Run shadow work, or hand it to the shadow thread (async, so that a response's
        background task runs on the event loop instead of in a thread pool)."""
        self.shadows.submit(job)

    def actor(self, request: Request, roles: tuple[Role, ...]) -> Actor:
        return self.authorize(request.headers.get("authorization", ""), roles)

    def authorize(self, header: str, roles: tuple[Role, ...]) -> Actor:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise AuthenticationFailed(
                "no API token given",
                field="Authorization",
                remedy="send the header 'Authorization: Bearer <token>'",
            )
        key = hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()
        now = time.monotonic()
        hit = self._tokens.get(key)
        if hit is not None and hit[0] > now:
            actor = hit[1]
        else:
            actor = self.registry.identity.authenticate(token)
            self._tokens[key] = (now + TOKEN_CACHE_SECONDS, actor)
        if not any(actor.has(r) for r in roles):
            need = " or ".join(r.value for r in roles)
            raise PermissionDenied(
                f"{actor.username} may not use this route: it needs the role {need}",
                remedy="use a token of a user with that role",
            )
        return actor


def _error(e: CharterError, status: int | None = None) -> JSONResponse:
    return JSONResponse({"error": e.to_dict()}, status_code=status or e.http_status)


async def _body(request: Request) -> Any:
    return parse_json(await _read(request.stream()))


async def _read(stream: AsyncIterator[bytes]) -> bytes:
    """The whole body, refused (413) as soon as it passes MAX_BODY_BYTES."""
    chunks = []
    size = 0
    async for chunk in stream:
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise RequestInvalid(
                [
                    FieldError(
                        "body", f"the body is larger than {MAX_BODY_BYTES} bytes", "send less"
                    )
                ],
                413,
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _identity(item: dict[str, Any], path: str, errors: list[FieldError]) -> tuple[str, str]:
    rid = item.get("request_id")
    if rid is None:
        rid = str(uuid.uuid4())
    elif not isinstance(rid, str) or not rid or len(rid) > 128:
        errors.append(
            FieldError(f"{path}request_id", "must be text of 1 to 128 characters", "send your id")
        )
        rid = ""
    elif not check_text(rid, f"{path}request_id", errors):
        rid = ""
    key = item.get("entity_key", rid)
    if not isinstance(key, str) or not key or len(key) > 256:
        errors.append(
            FieldError(
                f"{path}entity_key", "must be text of 1 to 256 characters", "send the applicant id"
            )
        )
        key = ""
    elif not check_text(key, f"{path}entity_key", errors):
        key = ""
    return rid, key


def _parse_time(text_value: str) -> str | None:
    """ISO 8601 (a date or a time, UTC if no zone) as Charter's canonical text, or None."""
    from datetime import UTC, datetime

    try:
        t = datetime.fromisoformat(text_value.replace("Z", "+00:00"))
        t = t if t.tzinfo else t.replace(tzinfo=UTC)
        if not 1000 <= t.astimezone(UTC).year <= 9999:  # the canonical text sorts in this range
            return None
        return iso(t)
    except (ValueError, OverflowError):  # OverflowError: its zone moves it out of years 1-9999
        return None


def _logged(rec: DecisionRecord) -> dict[str, Any]:
    """A logged decision as the read routes return it: the scoring response's fields (less
    ``duplicate``) with its inputs, latency and time."""
    out = _result(rec, False)
    out.pop("duplicate")
    out.update(inputs=rec.inputs, latency_ms=rec.latency_ms, created_at=rec.created_at)
    return out


def _result(rec: DecisionRecord, duplicate: bool) -> dict[str, Any]:
    return {
        "decision_id": rec.id,
        "request_id": rec.request_id,
        "entity_key": rec.entity_key,
        "model": rec.model_name,
        "version": rec.version,
        "variant": rec.variant,
        "score": rec.score,
        "threshold": rec.threshold,
        "decision": rec.decision,
        "reason_codes": rec.reason_codes,
        "duplicate": duplicate,
    }


def create_app(
    registry: Registry,
    *,
    refresh_seconds: float = 1.0,
    decision_log: DecisionQueue | None = None,
    canary_seconds: float = 10.0,
) -> FastAPI:
    """The service over ``registry``'s database and artifacts."""
    svc = Service(
        registry=registry,
        runtime=Runtime(registry),
        decision_log=decision_log or DecisionLog(registry.db),
        metrics=(prom := Metrics()),
        shadows=ShadowWorker(on_drop=prom.shadow_dropped.inc),
        refresh_seconds=refresh_seconds,
    )
    svc.metrics.registry.register(_DecisionLogCollector(svc.decision_log))
    from charter.monitoring.prometheus import MonitoringCollector  # monitoring windows, alerts

    svc.metrics.registry.register(MonitoringCollector(registry.db, clock=registry.clock))

    async def refresher() -> None:
        while True:
            await asyncio.sleep(svc.refresh_seconds)
            try:
                await asyncio.to_thread(svc.runtime.refresh)
            except CharterError as e:  # the database is away; keep serving what is loaded
                log.warning("model refresh failed: %s", e)

    async def canary_controller() -> None:
        from charter.serving.canary import tick

        while True:
            await asyncio.sleep(canary_seconds)
            for name, rt in list(svc.runtime.models.items()):
                if rt.policy.canary is None:
                    continue
                try:
                    await asyncio.to_thread(tick, registry, name, system_clock())
                except CharterError as e:
                    log.warning("canary step of %s failed: %s", name, e)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        svc.decision_log.start()
        svc.shadows.start()
        svc.scoring_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="charter-score")
        svc.runtime.refresh()
        # Everything loaded so far (numpy, scikit-learn, models) lives as long as the process:
        # keep it out of the collector's full passes, which otherwise pause every request in
        # flight for tens of milliseconds.
        gc.collect()
        gc.freeze()
        tasks = [asyncio.create_task(refresher())]
        if canary_seconds > 0:
            tasks.append(asyncio.create_task(canary_controller()))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            svc.scoring_pool.shutdown(wait=True)
            svc.scoring_pool = None
            svc.shadows.stop()  # the queued shadow work is logged before the log stops
            svc.decision_log.stop()

    app = CharterAPI(
        title="Charter",
        version="0.1.0",
        description="Governed real-time decisions with a durable decision log.",
        lifespan=lifespan,
    )
    app.state.service = svc

    @app.exception_handler(CharterError)
    async def _charter_error(_: Request, e: CharterError) -> JSONResponse:
        return _error(e)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, e: RequestValidationError) -> JSONResponse:
        errs = [
            FieldError(".".join(str(p) for p in err.get("loc", ())), str(err.get("msg")), "fix it")
            for err in e.errors()
        ] or [FieldError("body", "invalid request", "check the request")]
        return _error(RequestInvalid(errs))

    # ------------------------------------------------------------------------- scoring
    def score_item(
        rt: ModelRuntime, item: Any, path: str
    ) -> tuple[DecisionRecord, ServedVersion, dict[str, Any]]:
        errors: list[FieldError] = []
        if not isinstance(item, dict):
            raise RequestInvalid([FieldError(path.rstrip(".") or "body", "must be an object", "")])
        rid, key = _identity(item, path, errors)
        unknown = set(item) - {"request_id", "entity_key", "features"}
        for k in sorted(map(str, unknown)):
            errors.append(FieldError(f"{path}{k}", "is not a request field", "remove it"))
        decision = route(key or "-", rt.policy)
        served = rt.versions[decision.version]
        try:
            features = served.validator.validate(
                item.get("features"), f"{path}features", rt.accepted
            )
        except RequestInvalid as e:
            errors.extend(e.errors)
            features = {}
        if errors:
            raise RequestInvalid(errors)
        start = time.perf_counter()
        try:
            score, reasons = served.scorer.score_and_reasons(features)
        except (CharterError, ArithmeticError, LookupError, TypeError, ValueError) as e:
            log.exception("%s v%s failed to score a validated request", rt.name, served.version)
            svc.decision_log.submit_error(
                {
                    "model_name": rt.name,
                    "version": served.version,
                    "variant": decision.variant,
                    "message": str(e)[:1000],
                    "created_at": iso(system_clock()),
                }
            )
            raise ScoringFailed(
                f"version {served.version} of {rt.name} could not score this request: {e}",
                remedy="this is a fault of the model, not of the request: tell the model owner",
            ) from e
        rec = DecisionRecord(
            id=uuid7(),
            request_id=rid,
            entity_key=key,
            model_name=rt.name,
            version=served.version,
            variant=decision.variant,
            inputs=features,
            score=score,
            threshold=served.threshold,
            decision=served.decide(score),
            reason_codes=reasons,
            latency_ms=(time.perf_counter() - start) * 1000,
            created_at=now_iso(),
        )
        # The shadows get the request's own features (they may use inputs the routed version
        # does not), each checked by the shadow's validator in shadow_task.
        return rec, served, item["features"]

    def score_body(
        rt: ModelRuntime, body: Any
    ) -> tuple[list[tuple[DecisionRecord, ServedVersion, dict[str, Any]]], bool]:
        """Every applicant of a request body scored, and whether it was a batch."""
        if isinstance(body, dict) and "instances" in body:
            items = body["instances"]
            extra = set(body) - {"instances"}
            if extra:
                raise RequestInvalid(
                    [FieldError(sorted(map(str, extra))[0], "is not a request field", "remove")]
                )
            if not isinstance(items, list) or not items or len(items) > MAX_BATCH:
                raise RequestInvalid(
                    [
                        FieldError(
                            "instances",
                            f"must be a list of 1 to {MAX_BATCH} requests",
                            "split the batch",
                        )
                    ]
                )
            return [score_item(rt, it, f"instances[{i}].") for i, it in enumerate(items)], True
        return [score_item(rt, body, "")], False

    def shadow_task(rt: ModelRuntime, items: list[tuple[DecisionRecord, dict[str, Any]]]) -> None:
        for shadow_version in rt.policy.shadows:
            served = rt.versions[shadow_version]
            scored, disagreed = svc.metrics.shadow(rt.name, shadow_version)
            key = served.validator.key
            for rec, raw in items:
                t = time.perf_counter()
                try:
                    # A shadow with the same feature schema as the version that answered takes
                    # that version's checked inputs; one with another schema checks the request.
                    features = (
                        rec.inputs
                        if rt.versions[rec.version].validator.key == key
                        else served.validator.validate(raw, "features", rt.accepted)
                    )
                    s = float(served.scorer.score_one(features))
                except (CharterError, ValueError, KeyError) as e:
                    log.warning("shadow v%s failed on %s: %s", shadow_version, rec.id, e)
                    continue
                d = served.decide(s)
                scored.inc()
                if d != rec.decision:
                    disagreed.inc()
                svc.decision_log.submit_shadow(
                    {
                        "decision_id": rec.id,
                        "model_name": rt.name,
                        "version": shadow_version,
                        "score": s,
                        "decision": d,
                        "latency_ms": (time.perf_counter() - t) * 1000,
                        "created_at": rec.created_at,
                    }
                )

    @app.post(
        "/v1/models/{name}/score",
        summary="Score one applicant or a batch; the decision is logged before the response",
        responses=_errors(400, 401, 403, 404, 413, 422, 503),
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "oneOf": [
                                {"$ref": "#/components/schemas/ScoreRequest"},
                                {"$ref": "#/components/schemas/BatchScoreRequest"},
                            ]
                        }
                    }
                },
            }
        },
    )
    async def score(name: str, request: Request) -> Response:
        status, payload, shadow = await score_core(
            name, request.headers.get("authorization", ""), request.stream()
        )
        task = BackgroundTask(svc.queue_shadow, shadow) if shadow is not None else None
        return JSONResponse(payload, status_code=status, background=task)

    async def score_core(
        name: str, authorization: str, chunks: AsyncIterator[bytes]
    ) -> tuple[int, dict[str, Any], ShadowJob | None]:
        """The scoring path shared by the FastAPI route and the raw ASGI fast path:
        (status, JSON payload, shadow work to run after the response)."""
        t0 = time.perf_counter()
        try:
            svc.authorize(authorization, SCORE_ROLES)
            rt = svc.runtime.get(name)
        except CharterError as e:
            svc.metrics.errors.labels(name, e.code).inc()
            return e.http_status, {"error": e.to_dict()}, None
        try:
            body = parse_json(await _read(chunks))
            if rt.slow and svc.scoring_pool is not None:
                # A generic model takes milliseconds (tens with its explanations): score it in
                # a thread, so the event loop goes on serving the other requests meanwhile.
                scored, batch = await asyncio.get_running_loop().run_in_executor(
                    svc.scoring_pool, score_body, rt, body
                )
            else:
                scored, batch = score_body(rt, body)
        except (RequestInvalid, ScoringFailed) as e:
            svc.metrics.errors.labels(name, e.code).inc()
            return e.http_status, {"error": e.to_dict()}, None
        futures = [svc.decision_log.submit_async(rec) for rec, _, _ in scored]
        try:
            logged = [await f for f in futures]
        except CharterError as e:
            svc.metrics.errors.labels(name, e.code).inc()
            return 503, {"error": e.to_dict()}, None
        elapsed = time.perf_counter() - t0
        results = []
        for (rec, served, _), lg in zip(scored, logged, strict=True):
            results.append(_result(lg.record, lg.duplicate))
            ok, latency, scores = svc.metrics.served(name, served.version, rec.variant)
            ok.inc()
            latency.observe(elapsed)
            scores.observe(lg.record.score)
        fresh = [
            (rec, f) for (rec, _, f), lg in zip(scored, logged, strict=True) if not lg.duplicate
        ]
        shadow = None
        if rt.policy.shadows and fresh:
            # cheap scorers (no generic model among the versions) score on the event loop
            shadow = ShadowJob(lambda: shadow_task(rt, fresh), inline=not rt.slow)
        return 200, ({"results": results} if batch else results[0]), shadow

    app.state.score_core = score_core
    app.fast_score = FastScorePath(score_core, svc)
    add_v2_routes(app, svc, score_core)

    from charter.web import create_router  # the dashboard: server-rendered pages under /ui

    app.include_router(create_router(registry), prefix="/ui")

    # ------------------------------------------------------------------------- outcomes
    @app.post(
        "/v1/outcomes",
        summary="Attach delayed labels to decisions (idempotent)",
        responses=_errors(400, 401, 403, 404, 409, 413, 422, 503),
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/OutcomesRequest"}}
                },
            }
        },
    )
    async def post_outcomes(request: Request) -> Response:
        svc.actor(request, SCORE_ROLES)
        body = await _body(request)
        items = body.get("outcomes") if isinstance(body, dict) else None
        if not isinstance(items, list) or not items or len(items) > MAX_BATCH:
            raise RequestInvalid(
                [FieldError("outcomes", f"must be a list of 1 to {MAX_BATCH} outcomes",
                            'send {"outcomes": [{"decision_id": ..., "label": 0 or 1}]}')]
            )  # fmt: skip
        errors: list[FieldError] = []
        clean: list[tuple[str, int, str | None]] = []
        for i, o in enumerate(items):
            p = f"outcomes[{i}]."
            if not isinstance(o, dict):
                errors.append(FieldError(p.rstrip("."), "must be an object", ""))
                continue
            did, label, obs = o.get("decision_id"), o.get("label"), o.get("observed_at")
            ok = True
            if not isinstance(did, str) or not did or len(did) > 36:
                errors.append(FieldError(p + "decision_id", "must be a decision id", "from /score"))
                ok = False
            elif not check_text(did, p + "decision_id", errors):
                ok = False
            if type(label) is not int or label not in (0, 1):
                errors.append(FieldError(p + "label", "must be 0 (good) or 1 (bad)", "send 0 or 1"))
                ok = False
            when = _parse_time(obs) if isinstance(obs, str) and len(obs) <= 40 else None
            if obs is not None and when is None:
                errors.append(
                    FieldError(p + "observed_at", "must be an ISO 8601 time", "e.g. 2027-05-01")
                )
                ok = False
            if ok and isinstance(did, str) and isinstance(label, int):
                clean.append((did, label, when))
        if errors:
            raise RequestInvalid(errors)
        return JSONResponse(await asyncio.to_thread(_record_outcomes, svc, clean))

    # ------------------------------------------------------------------------- reads
    @app.get(
        "/v1/decisions",
        summary="Logged decisions, newest first, filtered; pages by the next_before cursor",
        responses=_errors(401, 403, 422, 503),
    )
    async def list_many(
        request: Request,
        model: Annotated[str | None, Query(max_length=100)] = None,
        version: Annotated[int | None, Query(ge=1, le=1_000_000)] = None,
        decision: Literal["approve", "decline"] | None = None,
        variant: Literal["champion", "challenger", "canary"] | None = None,
        entity_key: Annotated[str | None, Query(max_length=256)] = None,
        since: Annotated[str | None, Query(max_length=40)] = None,
        until: Annotated[str | None, Query(max_length=40)] = None,
        before: Annotated[str | None, Query(max_length=100)] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> Response:
        """``since`` and ``until`` are ISO 8601 times (UTC when no zone is given); ``before`` is
        the ``next_before`` of the previous page."""
        svc.actor(request, READ_ROLES)
        errors: list[FieldError] = []
        for name, value in (("model", model), ("entity_key", entity_key), ("before", before)):
            if value is not None:
                check_text(value, name, errors)
        window: dict[str, datetime | None] = {}
        for name, value in (("since", since), ("until", until)):
            text_value = None if value is None else _parse_time(value)
            if value is not None and text_value is None:
                errors.append(
                    FieldError(name, "is not an ISO 8601 date or time", "e.g. 2026-05-01")
                )
            window[name] = None if text_value is None else parse_iso(text_value)
        if errors:
            raise RequestInvalid(errors)
        page = await asyncio.to_thread(
            list_decisions,
            svc.registry.db,
            model=model,
            version=version,
            decision=decision,
            variant=variant,
            entity_key=entity_key,
            since=window["since"],
            until=window["until"],
            before=before,
            limit=limit,
        )
        items = [_logged(rec) for rec in page.records]
        return JSONResponse({"decisions": items, "next_before": page.next_before})

    @app.get(
        "/v1/decisions/{decision_id}",
        summary="One logged decision, with its outcome",
        responses=_errors(401, 403, 404, 422, 503),
    )
    async def get_one(decision_id: str, request: Request) -> Response:
        svc.actor(request, READ_ROLES)
        if len(decision_id) > 36 or not check_text(decision_id, "decision_id", []):
            raise NotFound(f"no decision {decision_id!r}", field="decision_id")
        rec = await asyncio.to_thread(get_decision, svc.registry.db, decision_id)
        if rec is None:
            raise NotFound(f"no decision {decision_id!r}", field="decision_id")
        out = _logged(rec)
        out["outcome"] = await asyncio.to_thread(get_outcome, svc.registry.db, rec.id)
        return JSONResponse(out)

    @app.get(
        "/v1/decisions/{decision_id}/explanation",
        summary="Why: the reasons, a counterfactual, the validation in force, and a replay",
        responses=_errors(401, 403, 404, 422, 503),
    )
    async def explain_one(decision_id: str, request: Request) -> Response:
        from charter.explain.decision import explain_decision

        svc.actor(request, READ_ROLES)
        if len(decision_id) > 36 or not check_text(decision_id, "decision_id", []):
            raise NotFound(f"no decision {decision_id!r}", field="decision_id")
        e = await asyncio.to_thread(explain_decision, svc.registry, decision_id)
        return JSONResponse(e.to_dict())

    @app.get(
        "/v1/models",
        summary="The models being served and their traffic policies",
        responses=_errors(401, 403, 503),
    )
    async def list_served(request: Request) -> Response:
        svc.actor(request, (*READ_ROLES, Role.DEVELOPER))
        return JSONResponse(
            {
                "models": [
                    {
                        "name": rt.name,
                        "policy": rt.policy.to_dict(),
                        "versions": {
                            str(v.version): {
                                "sha256": v.sha256,
                                "threshold": v.threshold,
                                "scorer": v.scorer.kind,
                            }
                            for v in rt.versions.values()
                        },
                    }
                    for rt in svc.runtime.models.values()
                ],
                "load_failures": {k: f.error for k, f in svc.runtime.failures.items()},
            }
        )

    @app.get(
        "/v1/models/{name}",
        summary="A served model's features and policy",
        responses=_errors(401, 403, 404, 422, 503),
    )
    async def get_served(name: str, request: Request) -> Response:
        svc.actor(request, (*READ_ROLES, Role.DEVELOPER))
        rt = svc.runtime.get(name)
        return JSONResponse(
            {
                "name": rt.name,
                "policy": rt.policy.to_dict(),
                "features": [f.to_dict() for f in rt.champion.validator.schema],
                "threshold": rt.champion.threshold,
            }
        )

    # ------------------------------------------------------------------------- operations
    @app.get("/healthz", summary="Liveness")
    async def healthz() -> Response:
        return JSONResponse({"status": "ok"})

    @app.get(
        "/readyz",
        summary="Readiness: database reachable, models loaded, workers serving",
        responses={
            503: {
                "description": "Not ready: the database cannot be reached (the same body as 200)",
                "content": {"application/json": {"schema": {"type": "object"}}},
            }
        },
    )
    async def readyz() -> Response:
        try:
            with svc.registry.db.read() as conn:
                conn.execute(text("SELECT 1"))
            db_ok = True
        except CharterError:
            db_ok = False
        serving, configured = workers_serving()
        body = {
            "database": db_ok,
            "models": sorted(svc.runtime.models),
            "load_failures": {k: f.error for k, f in svc.runtime.failures.items()},
            # A worker accepts connections only once it has loaded: a load balancer may send
            # traffic when one is ready; a benchmark waits for all of them.
            "workers": {"serving": serving, "configured": configured},
        }
        return JSONResponse(body, status_code=200 if db_ok else 503)

    @app.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse)
    async def metrics() -> Response:
        # Off the event loop: the monitoring collector reads the database when its cache expires.
        text = await asyncio.to_thread(generate_latest, svc.metrics.registry)
        return Response(text, media_type=CONTENT_TYPE_LATEST)

    return app


ScoreCore = Callable[
    [str, str, AsyncIterator[bytes]], Awaitable[tuple[int, dict[str, Any], ShadowJob | None]]
]


async def _chunks(receive: Any) -> AsyncIterator[bytes]:
    """A request's body from an ASGI ``receive``, until its last chunk or a disconnect."""
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        yield message.get("body", b"")
        more = message.get("more_body", False)


class FastScorePath:
    """Answers ``POST /v1/models/{name}/score`` ahead of FastAPI's middleware, router,
    dependency injection and response classes (the same ``score_core`` the documented route
    calls). Under ``charter serve`` the HTTP protocol itself hands scoring requests here
    (``server.OneWriteProtocol``), without the ASGI call; elsewhere (``TestClient``, another
    ASGI server) ``CharterAPI`` asks :meth:`handle` first and passes everything else to FastAPI.
    Shadow work is run or queued (:mod:`charter.serving.shadow`) after the response."""

    PREFIX = "/v1/models/"
    SUFFIX = "/score"

    def __init__(self, core: ScoreCore, svc: Service) -> None:
        self.core = core
        self.svc = svc

    def model_of(self, method: str, path: str) -> str | None:
        """The model's name when this is a scoring request, else None."""
        if method != "POST" or not path.startswith(self.PREFIX) or not path.endswith(self.SUFFIX):
            return None
        name = path[len(self.PREFIX) : -len(self.SUFFIX)]
        return name if name and "/" not in name else None

    async def answer(
        self, name: str, headers: Iterable[tuple[bytes, bytes]], receive: Any
    ) -> tuple[int, bytes, ShadowJob | None]:
        """(status, JSON body, shadow work for after the response) of a request with these
        (lower-case) headers, its body read from the ASGI ``receive`` (uvicorn's request
        cycle's, under ``charter serve``)."""
        authorization = ""
        for key, value in headers:
            if key == b"authorization":
                authorization = value.decode("latin-1")
                break
        try:
            status, payload, shadow = await self.core(name, authorization, _chunks(receive))
        except Exception:  # a bug: answer as FastAPI's error middleware would, but in JSON
            log.exception("the scoring path failed")
            status, shadow = 500, None
            payload = {
                "error": {
                    "code": "internal_error",
                    "message": "the service failed on this request",
                    "remedy": "retry; report the server log to the platform team",
                }
            }
        return status, orjson.dumps(payload), shadow

    def after(self, shadow: ShadowJob | None) -> None:
        """Once the response has been sent: the request's shadow work."""
        if shadow is not None:
            self.svc.shadows.submit(shadow)

    async def handle(self, scope: dict[str, Any], receive: Any, send: Any) -> bool:
        """Answer the request if it is a scoring request (True), else leave it (False)."""
        if scope["type"] != "http":
            return False
        name = self.model_of(scope["method"], scope.get("path", ""))
        if name is None:
            return False
        status, body, shadow = await self.answer(name, scope["headers"], receive)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
        self.after(shadow)
        return True


class _DecisionLogCollector(Collector):
    """Exports the writer's own counts: group commits and rows committed."""

    def __init__(self, decision_log: DecisionQueue) -> None:
        self.decision_log = decision_log

    def collect(self) -> Iterable[Metric]:
        yield CounterMetricFamily(
            "charter_decision_log_commits", "Group commits", value=self.decision_log.batches
        )
        yield CounterMetricFamily(
            "charter_decision_log_rows", "Decisions committed", value=self.decision_log.rows
        )


def _record_outcomes(svc: Service, items: list[tuple[str, int, str | None]]) -> dict[str, Any]:
    now = iso(system_clock())
    recorded, unchanged = 0, 0
    with svc.registry.db.write(registry_lock=False) as conn:
        ids = [d for d, _, _ in items]
        known = {r.id for r in conn.execute(select(decisions.c.id).where(decisions.c.id.in_(ids)))}
        have = {
            r.decision_id: r.label
            for r in conn.execute(select(outcomes).where(outcomes.c.decision_id.in_(ids)))
        }
        for i, (did, label, obs) in enumerate(items):
            if did not in known:
                raise NotFound(
                    f"no decision {did!r}", field=f"outcomes[{i}].decision_id",
                    remedy="send the decision_id returned by /score",
                )  # fmt: skip
            if did in have:
                if have[did] != label:
                    from charter.errors import Conflict

                    raise Conflict(
                        f"decision {did} already has the outcome {have[did]}, not {label}",
                        field=f"outcomes[{i}].label",
                        remedy="outcomes are final; contact the model owner to correct one",
                    )
                unchanged += 1
                continue
            conn.execute(
                outcomes.insert().values(
                    decision_id=did, label=label, observed_at=obs, recorded_at=now
                )
            )
            have[did] = label
            recorded += 1
    return {"recorded": recorded, "unchanged": unchanged}


class CharterAPI(FastAPI):
    """FastAPI plus the request schemas the scoring route reads by hand (it parses strict JSON
    itself, so FastAPI cannot infer them), and the scoring fast path ahead of everything."""

    fast_score: FastScorePath | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        fast = self.fast_score
        if fast is not None and await fast.handle(scope, receive, send):
            return
        await super().__call__(scope, receive, send)

    def openapi(self) -> dict[str, Any]:
        if self.openapi_schema:
            return self.openapi_schema
        schema = super().openapi()
        comps = schema.setdefault("components", {}).setdefault("schemas", {})
        comps["ScoreRequest"] = {
            "type": "object",
            "required": ["features"],
            "additionalProperties": False,
            "properties": {
                "request_id": {"type": "string", "minLength": 1, "maxLength": 128},
                "entity_key": {"type": "string", "minLength": 1, "maxLength": 256},
                "features": {"type": "object"},
            },
        }
        comps["OutcomesRequest"] = {
            "type": "object",
            "required": ["outcomes"],
            "properties": {
                "outcomes": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": MAX_BATCH,
                    "items": {
                        "type": "object",
                        "required": ["decision_id", "label"],
                        "properties": {
                            "decision_id": {"type": "string", "minLength": 1, "maxLength": 36},
                            "label": {"type": "integer", "enum": [0, 1]},
                            "observed_at": {
                                "type": "string",
                                "format": "date-time",
                                "maxLength": 40,
                                "description": "ISO 8601 time (or date), UTC if no zone",
                            },
                        },
                    },
                }
            },
        }
        comps["Error"] = {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["code", "message"],
                    "properties": {
                        "code": {"type": "string"},
                        "message": {"type": "string"},
                        "field": {"type": "string"},
                        "remedy": {"type": "string"},
                        "details": {"type": "object"},
                    },
                }
            },
        }
        comps["BatchScoreRequest"] = {
            "type": "object",
            "required": ["instances"],
            "additionalProperties": False,
            "properties": {
                "instances": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": MAX_BATCH,
                    "items": {"$ref": "#/components/schemas/ScoreRequest"},
                }
            },
        }
        self.openapi_schema = schema
        return schema


def from_env() -> FastAPI:
    """The app for ``charter serve`` (a factory, so each worker process opens its own store)."""
    import os

    from charter.config import Settings
    from charter.serving.shared_log import SOCKET_ENV, RemoteDecisionLog

    registry = Registry.open(Settings.from_env())
    shared = os.environ.get(SOCKET_ENV)  # set by `charter serve` for workers of one SQLite store
    return create_app(
        registry,
        refresh_seconds=float(os.environ.get("CHARTER_REFRESH_SECONDS", 1)),
        decision_log=RemoteDecisionLog(shared) if shared else None,
    )
