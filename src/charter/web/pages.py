"""The dashboard's routes under ``/ui``: thin handlers that authenticate, call one view or one
service action, and render a server-side template. See ``docs/dashboard.md``.

Pages answer HTML for every outcome: a page that needs a sign-in redirects to it (303) on GET
and answers 401 otherwise, a missing role is 403, an unknown model, version, alert or decision
404, bad input 422, a refused action the service's own status (403 for a permission or
segregation-of-duties refusal, 409 for a refused transition), each with the service's message,
remedy and reasons. Every response carries a Content-Security-Policy that allows nothing but
this site's stylesheet and forms (no script at all), ``no-store`` caching and ``nosniff``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine, Mapping
from datetime import datetime
from importlib import resources
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from jinja2 import Environment, FunctionLoader, StrictUndefined
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool

from charter.clock import iso
from charter.errors import AuthenticationFailed, CharterError, InvalidArgument
from charter.monitoring.alert_store import AlertStore
from charter.registry.service import Registry
from charter.reports.drift_html import fmt_count, fmt_number, fmt_p, fmt_rate
from charter.web import auth, views

MAX_FORM_BYTES = 64 * 1024
PAGE_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
# The regulatory documents are self-contained pages with their stylesheet inline.
DOCUMENT_CSP = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}
ERROR_TITLES = {
    401: "Sign-in needed",
    403: "Not permitted",
    404: "Not found",
    409: "Refused",
    422: "Not valid",
    501: "Not available here",
    503: "Unavailable",
}
DONE_MESSAGES = {
    "acknowledged": "Alert #{alert} acknowledged, and audited.",
    "resolved": "Alert #{alert} resolved, and audited.",
    "decided": "Your decision on this version is recorded, and audited.",
    "signed_out": "You are signed out.",
}


# ----------------------------------------------------------------------------------- templates
def _template_source(name: str) -> str | None:
    try:
        return (resources.files("charter.web") / "templates" / name).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None


def _when(value: object) -> str:
    """A time as ``YYYY-MM-DD HH:MM`` UTC; text times are shown as they are, trimmed."""
    if value is None or value == "":
        return "n/a"
    if isinstance(value, datetime):
        return iso(value)[:16].replace("T", " ")
    text = str(value)
    return text[:16].replace("T", " ") if len(text) >= 16 and text[10] == "T" else text


def _day(value: object) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, datetime):
        return iso(value)[:10]
    return str(value)[:10]


def _short(value: object, n: int = 12) -> str:
    if not value:
        return "n/a"
    text = str(value)
    return text if len(text) <= n else text[:n] + "…"


def _as_json(value: object) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str, ensure_ascii=False)


ENV = Environment(
    loader=FunctionLoader(_template_source),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
ENV.filters.update(
    num=fmt_number,
    p=fmt_p,
    rate=fmt_rate,
    count=fmt_count,
    when=_when,
    day=_day,
    short=_short,
    as_json=_as_json,
    q=lambda v: quote(str(v), safe=""),
    svg=Markup,  # charts are built by charter.web.charts, which escapes every text it draws
)


def _static(name: str) -> str:
    return (resources.files("charter.web") / "static" / name).read_text(encoding="utf-8")


# ------------------------------------------------------------------------------------ plumbing
def _headers(response: Response, csp: str = PAGE_CSP) -> Response:
    response.headers.setdefault("Content-Security-Policy", csp)
    for k, v in SECURITY_HEADERS.items():
        response.headers.setdefault(k, v)
    return response


def render(
    request: Request,
    template: str,
    *,
    session: auth.Session | None,
    status: int = 200,
    nav: str = "",
    **context: Any,
) -> HTMLResponse:
    done = request.query_params.get("done")
    alert = request.query_params.get("alert", "")
    notice = None
    if done in DONE_MESSAGES and (alert.isdigit() or "{alert}" not in DONE_MESSAGES[done]):
        notice = DONE_MESSAGES[done].format(alert=alert)
    html = ENV.get_template(template).render(
        session=session,
        nav=nav,
        notice=notice,
        path=request.url.path,
        roles=auth,
        **context,
    )
    return HTMLResponse(html, status_code=status)


def _error_page(request: Request, e: CharterError, status: int | None = None) -> Response:
    code = status or e.http_status
    reasons = [str(r) for r in e.details.get("reasons", [])] if e.details else []
    session = getattr(request.state, "session", None)
    return render(
        request,
        "error.html.j2",
        session=session,
        status=code,
        title=ERROR_TITLES.get(code, "Something went wrong"),
        error=e,
        reasons=[r for r in reasons if r != e.message],
        back=request.headers.get("referer") if _same_site(request) else None,
    )


def _same_site(request: Request) -> bool:
    ref = request.headers.get("referer") or ""
    return ref.startswith(f"{request.url.scheme}://{request.headers.get('host', '')}/ui")


def _login_redirect(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    response = RedirectResponse(
        "/ui/login?" + urlencode({"next": auth.safe_next(target)}), status_code=303
    )
    if request.cookies.get(auth.SESSION_COOKIE):
        response.delete_cookie(auth.SESSION_COOKIE, path=auth.COOKIE_PATH)
    return response


class DashboardRoute(APIRoute):
    """Turns Charter's errors into HTML pages (the API answers JSON) and adds the security
    headers to every dashboard response."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def wrapped(request: Request) -> Response:
            try:
                response = await handler(request)
            except auth.SignInRequired as e:
                if request.method in ("GET", "HEAD"):
                    response = _login_redirect(request)
                else:
                    response = _error_page(request, e, 401)
            except CharterError as e:
                response = _error_page(request, e)
            except RequestValidationError:
                response = _error_page(
                    request, InvalidArgument("the request is not valid", remedy="check the link")
                )
            return _headers(response)

        return wrapped


async def read_form(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body (at most 64 KiB, 20 fields) as a dict."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/x-www-form-urlencoded":
        raise InvalidArgument(
            "the dashboard accepts form posts only", field="content-type", remedy="use the form"
        )
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise InvalidArgument("the form is too large", field="body", remedy="send less")
    try:
        pairs = parse_qsl(
            body.decode("utf-8"), keep_blank_values=True, max_num_fields=20, strict_parsing=False
        )
    except (UnicodeDecodeError, ValueError):
        raise InvalidArgument(
            "the form is not valid", field="body", remedy="use the form"
        ) from None
    out: dict[str, str] = {}
    for k, v in pairs:
        out.setdefault(k, v)
    return out


# -------------------------------------------------------------------------------------- router
def create_router(registry: Registry) -> APIRouter:
    """The dashboard over ``registry``: include it with ``prefix="/ui"``."""
    alerts = AlertStore(registry.db, clock=registry.clock)
    router = APIRouter(route_class=DashboardRoute, include_in_schema=False)

    def signed_in(
        request: Request, roles: tuple[Any, ...] = auth.VIEW_ROLES, what: str = "use the dashboard"
    ) -> auth.Session:
        s = auth.session(registry, request)
        request.state.session = s
        auth.require(s, roles, what)
        return s

    async def signed_in_async(request: Request, form: Mapping[str, str]) -> auth.Session:
        s = await run_in_threadpool(signed_in, request)
        auth.check_csrf(request, s, dict(form))
        return s

    # -- static and sign-in ---------------------------------------------------------------
    @router.get("/static/dashboard.css")
    def stylesheet() -> Response:
        return Response(
            _static("dashboard.css"),
            media_type="text/css",
            headers={"Cache-Control": "public, max-age=300"},
        )

    def login_form(
        request: Request, *, status: int = 200, error: str | None = None, target: str | None = None
    ) -> Response:
        csrf = auth.new_login_csrf()
        response = render(
            request,
            "login.html.j2",
            session=None,
            status=status,
            csrf=csrf,
            error=error,
            next=auth.safe_next(target or request.query_params.get("next")),
        )
        response.set_cookie(
            auth.LOGIN_CSRF_COOKIE,
            csrf,
            max_age=3600,
            path=auth.COOKIE_PATH,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return response

    @router.get("/login")
    def login_page(request: Request) -> Response:
        token = request.cookies.get(auth.SESSION_COOKIE)
        if token:
            try:
                auth.authenticate(registry, token)
                return RedirectResponse(
                    auth.safe_next(request.query_params.get("next")), status_code=303
                )
            except AuthenticationFailed:
                pass
        return login_form(request)

    @router.post("/login")
    async def login(request: Request) -> Response:
        form = await read_form(request)
        target = form.get("next")
        auth.check_origin(request)
        if not auth.same(form.get("csrf"), request.cookies.get(auth.LOGIN_CSRF_COOKIE)):
            return login_form(
                request,
                status=403,
                target=target,
                error="The sign-in form expired or came from elsewhere; please try again.",
            )
        token = (form.get("token") or "").strip()
        try:
            actor = await run_in_threadpool(auth.authenticate, registry, token)
        except AuthenticationFailed as e:
            return login_form(request, status=401, error=e.message, target=target)
        if not any(actor.has(r) for r in auth.VIEW_ROLES):
            return login_form(
                request,
                status=403,
                target=target,
                error=f"{actor.username} holds no role that may use the dashboard (it is for "
                "developers, validators, approvers, auditors and admins; a service token is "
                "for systems)",
            )
        response = RedirectResponse(auth.safe_next(target), status_code=303)
        response.set_cookie(
            auth.SESSION_COOKIE,
            token,
            max_age=auth.SESSION_SECONDS,
            path=auth.COOKIE_PATH,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        response.delete_cookie(auth.LOGIN_CSRF_COOKIE, path=auth.COOKIE_PATH)
        return response

    @router.post("/logout")
    async def logout(request: Request) -> Response:
        form = await read_form(request)
        await signed_in_async(request, form)
        response = RedirectResponse("/ui/login?done=signed_out", status_code=303)
        response.delete_cookie(auth.SESSION_COOKIE, path=auth.COOKIE_PATH)
        return response

    # -- inventory ------------------------------------------------------------------------
    @router.get("")
    def root() -> Response:
        return RedirectResponse("/ui/", status_code=307)

    @router.get("/")
    def inventory_view(request: Request) -> Response:
        s = signed_in(request)
        qp = request.query_params
        data = views.inventory_page(
            registry,
            alerts,
            q=qp.get("q"),
            tier=qp.get("tier"),
            status=qp.get("status"),
            monitoring=qp.get("monitoring"),
            overdue=qp.get("overdue"),
            page=qp.get("page"),
        )
        return render(
            request,
            "inventory.html.j2",
            session=s,
            nav="inventory",
            inv=data,
            filters_qs=urlencode({k: v for k, v in data.filters.items() if v}),
        )

    # -- a model --------------------------------------------------------------------------
    @router.get("/models/{name}")
    def model_view(request: Request, name: str) -> Response:
        s = signed_in(request)
        data = views.model_page(registry, alerts, name)
        return render(request, "model.html.j2", session=s, nav="inventory", m=data)

    @router.get("/models/{name}/versions/{version}")
    def version_view(request: Request, name: str, version: str) -> Response:
        s = signed_in(request)
        data = views.version_page(registry, name, version)
        return render(request, "version.html.j2", session=s, nav="inventory", v=data)

    @router.post("/models/{name}/versions/{version}/decide")
    async def decide(request: Request, name: str, version: str) -> Response:
        form = await read_form(request)
        s = await signed_in_async(request, form)
        model = views.model_arg(name)
        number = views.int_arg(version, "version", maximum=10**6)
        decision = (
            views.choice_arg(
                form.get("decision"),
                "decision",
                ("approved", "approved_with_conditions", "rejected"),
            )
            or "approved"
        )
        comment = views.text_arg(form.get("comment"), "comment", limit=2000, multiline=True)
        conditions = [c.strip() for c in form.get("conditions", "").splitlines() if c.strip()]
        await run_in_threadpool(
            registry.decide,
            s.actor,
            model,
            int(number or 0),
            decision,
            comment=comment,
            conditions=conditions,
        )
        return RedirectResponse(
            f"/ui/models/{quote(model)}/versions/{number}?done=decided", status_code=303
        )

    @router.get("/models/{name}/versions/{version}/documents/{kind}")
    def document(request: Request, name: str, version: str, kind: str) -> Response:
        signed_in(request)
        from charter.reports import documents
        from charter.reports import render as render_doc

        model = views.model_arg(name)
        number = views.int_arg(version, "version", maximum=10**6)
        kind = views.choice_arg(kind, "kind", ("model-card", "validation")) or "model-card"
        doc = documents.build_document(registry, kind, model, number)
        return _headers(HTMLResponse(render_doc.render_html(doc)), DOCUMENT_CSP)

    @router.get("/documents/mrm")
    def mrm_document(request: Request) -> Response:
        signed_in(request)
        from charter.reports import documents
        from charter.reports import render as render_doc

        doc = documents.build_document(registry, "mrm")
        return _headers(HTMLResponse(render_doc.render_html(doc)), DOCUMENT_CSP)

    # -- monitoring and alerts ------------------------------------------------------------
    @router.get("/models/{name}/monitoring")
    def monitoring_view(request: Request, name: str) -> Response:
        s = signed_in(request)
        data = views.monitoring_page(
            registry, alerts, name, range_=request.query_params.get("range")
        )
        return render(
            request,
            "monitoring.html.j2",
            session=s,
            nav="inventory",
            mon=data,
            ranges=list(views.RANGES),
        )

    @router.get("/alerts")
    def alerts_view(request: Request) -> Response:
        s = signed_in(request)
        qp = request.query_params
        data = views.alerts_page(
            alerts, model=qp.get("model"), status=qp.get("status"), severity=qp.get("severity")
        )
        return render(request, "alerts.html.j2", session=s, nav="alerts", **data)

    @router.get("/alerts/{alert_id}")
    def alert_view(request: Request, alert_id: str) -> Response:
        s = signed_in(request)
        data = views.alert_page(registry, alerts, alert_id)
        return render(request, "alert.html.j2", session=s, nav="alerts", **data)

    async def alert_action(request: Request, alert_id: str, action: str) -> Response:
        form = await read_form(request)
        s = await signed_in_async(request, form)
        n = views.int_arg(alert_id, "alert_id", maximum=2**62) or 0
        note = form.get("note", "")
        if action == "acknowledge":
            await run_in_threadpool(alerts.acknowledge, s.actor, n, note)
            done = "acknowledged"
        else:
            await run_in_threadpool(alerts.resolve, s.actor, n, note)
            done = "resolved"
        back = auth.safe_next(form.get("next") or f"/ui/alerts/{n}")
        back = back.split("?")[0] + "?" + urlencode({"done": done, "alert": n})
        return RedirectResponse(back, status_code=303)

    @router.post("/alerts/{alert_id}/acknowledge")
    async def acknowledge(request: Request, alert_id: str) -> Response:
        return await alert_action(request, alert_id, "acknowledge")

    @router.post("/alerts/{alert_id}/resolve")
    async def resolve(request: Request, alert_id: str) -> Response:
        return await alert_action(request, alert_id, "resolve")

    # -- champion and challenger -----------------------------------------------------------
    @router.get("/models/{name}/experiments")
    def experiments_view(request: Request, name: str) -> Response:
        s = signed_in(request)
        service = getattr(request.app.state, "service", None)
        served = None
        runtime = getattr(service, "runtime", None)
        if runtime is not None:
            rt = runtime.models.get(name)
            served = None if rt is None else rt.policy.to_dict()
        data = views.experiments_page(registry, name, served)
        return render(request, "experiments.html.j2", session=s, nav="inventory", **data)

    @router.get("/models/{name}/experiments/{experiment}/analysis")
    def experiment_analysis(request: Request, name: str, experiment: str) -> Response:
        """The experiment's analysis computed now from the decision log, as the comparison
        report `charter experiment analyze` writes (score distributions, approval rates, the
        shadow's disagreement matrix, segments). Nothing is recorded."""
        signed_in(request)
        from charter.experiment.report import render_report_html

        data, filename = views.experiment_analysis(registry, name, experiment)
        notice = (
            f"Computed on view from the decision log, {_when(registry.clock())} UTC; not recorded. "
            f"The decision record is made with: charter experiment analyze {experiment} --record"
        )
        response = HTMLResponse(render_report_html(data, notice=notice))
        if request.query_params.get("download"):
            response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
        return _headers(response, DOCUMENT_CSP)

    # -- decisions and audit ---------------------------------------------------------------
    @router.get("/decisions")
    def decision_view(request: Request) -> Response:
        s = signed_in(request, auth.DECISION_ROLES, "look up decisions (they hold applicant data)")
        qp = request.query_params
        page: dict[str, Any] = {"id": "", "explanation": None, "error": None, "listing": None}
        try:
            if qp.get("id"):
                page.update(views.decision_page(registry, qp.get("id")))
            else:
                page["listing"] = views.decision_list(
                    registry,
                    model=qp.get("model"),
                    version=qp.get("version"),
                    decision=qp.get("decision"),
                    variant=qp.get("variant"),
                    entity=qp.get("entity"),
                    since=qp.get("since"),
                    until=qp.get("until"),
                    before=qp.get("before"),
                )
        except CharterError as e:
            if e.http_status not in (404, 422):
                raise
            page.update(error=e, status=e.http_status, id=qp.get("id", "")[:36])
        return render(request, "decision.html.j2", session=s, nav="decisions", **page)

    @router.get("/audit")
    def audit_view(request: Request) -> Response:
        s = signed_in(request)
        qp = request.query_params
        data = views.audit_page(
            registry,
            model=qp.get("model"),
            actor=qp.get("actor"),
            action=qp.get("action"),
            since=qp.get("since"),
            until=qp.get("until"),
            verify=qp.get("verify"),
            at_model=qp.get("at_model"),
            at_time=qp.get("at_time"),
            at_alias=qp.get("at_alias"),
            before=qp.get("before"),
        )
        return render(request, "audit.html.j2", session=s, nav="audit", **data)

    return router


__all__ = ["DashboardRoute", "create_router", "render"]
