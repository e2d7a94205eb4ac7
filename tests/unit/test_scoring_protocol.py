"""``charter serve``'s HTTP protocol answers scoring requests itself, without the ASGI call, and
must answer them as uvicorn answers the app's responses: in order when pipelined, with
``Expect: 100-continue``, ``Connection: close``, a client that has gone, and a failure."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any, cast

import orjson
import uvicorn
from uvicorn.server import ServerState

from charter.serving.app import FastScorePath
from charter.serving.server import OneWriteProtocol

from helpers import FakeTransport


class App:
    """An ASGI app (for every other request) carrying a scoring path over a fake core."""

    def __init__(self, core: Any) -> None:
        self.shadows: list[Any] = []
        svc = SimpleNamespace(shadows=SimpleNamespace(submit=self.shadows.append))
        self.fast_score = FastScorePath(core, cast("Any", svc))
        self.asgi_calls: list[str] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.asgi_calls.append(scope["path"])
        await receive()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"5")]})  # fmt: skip
        await send({"type": "http.response.body", "body": b"other"})


async def echo(name: str, auth: str, chunks: AsyncIterator[bytes]) -> tuple[int, Any, Any]:
    body = b"".join([c async for c in chunks])
    return 200, {"model": name, "auth": auth, "body": body.decode()}, f"shadow of {body.decode()}"


def _protocol(app: App, transport: FakeTransport) -> OneWriteProtocol:
    config = uvicorn.Config(app, http=OneWriteProtocol, log_level="warning")
    config.load()  # wraps the app in uvicorn's proxy-headers middleware
    state = ServerState()
    state.default_headers = [(b"server", b"uvicorn")]
    protocol = OneWriteProtocol(config=config, server_state=state, app_state={})
    protocol.connection_made(transport)
    return protocol


async def _turns(n: int = 10) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


def _exchange(core: Any, data: bytes, turns: int = 10) -> tuple[App, FakeTransport]:
    """``data`` received on a new connection, and what was written back in ``turns`` turns."""
    app, t = App(core), FakeTransport()

    async def main() -> None:
        _protocol(app, t).data_received(data)
        await _turns(turns)

    asyncio.run(main())
    return app, t


def _post(path: bytes, body: bytes, *extra: bytes) -> bytes:
    head = [b"POST " + path + b" HTTP/1.1", b"host: x", b"authorization: Bearer t",
            b"content-length: %d" % len(body), *extra]  # fmt: skip
    return b"\r\n".join(head) + b"\r\n\r\n" + body


def _responses(writes: list[bytes]) -> list[tuple[bytes, bytes]]:
    """(head, body) of each response in the bytes written, by content-length."""
    data, out = b"".join(writes), []
    while data:
        head, _, rest = data.partition(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        out.append((head, rest[:length]))
        data = rest[length:]
    return out


def test_a_scoring_request_is_answered_by_the_scoring_path_in_one_write() -> None:
    app, t = _exchange(echo, _post(b"/v1/models/gc/score", b'{"a":1}'))
    assert len(t.writes) == 1 and app.asgi_calls == []
    [(head, body)] = _responses(t.writes)
    assert head.split(b"\r\n") == [b"HTTP/1.1 200 OK", b"server: uvicorn",
                                   b"content-type: application/json",
                                   b"content-length: %d" % len(body)]  # fmt: skip
    assert orjson.loads(body) == {"model": "gc", "auth": "Bearer t", "body": '{"a":1}'}
    assert app.shadows == ['shadow of {"a":1}']  # after the response
    assert not t.closed


def test_pipelined_requests_are_answered_in_order_and_others_go_to_the_app() -> None:
    app, t = _exchange(
        echo,
        _post(b"/v1/models/a/score", b"1")
        + b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n"
        + _post(b"/v1/models/b/score", b"2")
        + _post(b"/v1/models/a/b/score", b"3"),  # not a model's name: the app's
        turns=30,
    )
    bodies = [body for _, body in _responses(t.writes)]
    assert [orjson.loads(bodies[0])["model"], bodies[1], orjson.loads(bodies[2])["model"],
            bodies[3]] == ["a", b"other", "b", b"other"]  # fmt: skip
    assert app.asgi_calls == ["/healthz", "/v1/models/a/b/score"]
    assert not t.paused  # reading resumed once the pipeline had drained


def test_expect_100_continue_and_connection_close() -> None:
    app, t = App(echo), FakeTransport()

    async def main() -> None:
        p = _protocol(app, t)
        request = _post(
            b"/v1/models/gc/score", b"{}", b"expect: 100-continue", b"connection: close"
        )
        head, _, body = request.partition(b"\r\n\r\n")
        p.data_received(head + b"\r\n\r\n")  # the client waits for 100 Continue to send the body
        await _turns()
        assert b"".join(t.writes) == b"HTTP/1.1 100 Continue\r\n\r\n"
        p.data_received(body)
        await _turns()

    asyncio.run(main())
    [(head, body)] = _responses(t.writes[1:])
    assert b"\r\nconnection: close" in head and orjson.loads(body)["body"] == "{}"
    assert t.closed


def test_a_client_that_has_gone_gets_nothing_and_its_shadow_work_still_runs() -> None:
    gates: list[asyncio.Event] = []

    async def slow(name: str, auth: str, chunks: AsyncIterator[bytes]) -> tuple[int, Any, Any]:
        await gates[0].wait()
        return await echo(name, auth, chunks)

    app, t = App(slow), FakeTransport()

    async def main() -> None:
        gates.append(gate := asyncio.Event())
        p = _protocol(app, t)
        p.data_received(_post(b"/v1/models/gc/score", b"{}"))
        await _turns()
        p.connection_lost(None)
        gate.set()
        await _turns()

    asyncio.run(main())
    assert t.writes == [] and app.shadows == ["shadow of "]  # the body was never read


def test_a_failing_scoring_path_answers_500_as_uvicorn_does() -> None:
    async def broken(name: str, auth: str, chunks: AsyncIterator[bytes]) -> tuple[int, Any, Any]:
        raise RuntimeError("a bug")

    app, t = _exchange(broken, _post(b"/v1/models/gc/score", b"{}"))
    # FastScorePath.answer turns a bug into the JSON 500 the route documents
    [(head, body)] = _responses(t.writes)
    assert head.startswith(b"HTTP/1.1 500 ") and orjson.loads(body)["error"]["code"] == (
        "internal_error"
    )
    assert app.shadows == []


def test_the_access_log_has_scoring_requests_when_it_is_on() -> None:
    lines: list[str] = []

    class Lines(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    async def main(level: int) -> None:
        p = _protocol(App(echo), FakeTransport())  # uvicorn's config sets up its loggers here
        access = logging.getLogger("uvicorn.access")
        access.setLevel(level)
        access.addHandler(handler)
        try:
            p.data_received(_post(b"/v1/models/gc/score?x=1", b"{}"))
            await _turns()
        finally:
            access.removeHandler(handler)

    handler = Lines()
    asyncio.run(main(logging.INFO))
    assert lines == ['127.0.0.1:5000 - "POST /v1/models/gc/score?x=1 HTTP/1.1" 200']
    asyncio.run(main(logging.WARNING))  # charter serve's default level: not logged
    assert len(lines) == 1
