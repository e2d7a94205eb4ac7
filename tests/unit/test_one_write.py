"""The serving transport that sends one turn's writes of a connection as one write."""

from __future__ import annotations

import asyncio
from typing import Any

from charter.serving.server import OneWriteProtocol, _OneWrite

from helpers import FakeTransport


def test_the_writes_of_one_turn_go_as_one_and_in_order() -> None:
    async def main() -> list[bytes]:
        t = FakeTransport()
        w = _OneWrite(t)
        w.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
        w.writelines([memoryview(b"{"), bytearray(b"}")])
        assert t.writes == []  # nothing is sent before the turn ends
        await asyncio.sleep(0)
        w.write(b"next")  # a later turn is a later write
        await asyncio.sleep(0)
        return t.writes

    assert asyncio.run(main()) == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}", b"next"]


def test_close_sends_what_was_written_first_and_a_closed_transport_gets_nothing() -> None:
    async def main() -> FakeTransport:
        t = FakeTransport()
        w = _OneWrite(t)
        w.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")
        w.close()
        assert t.writes == [b"HTTP/1.1 400 Bad Request\r\n\r\n"] and t.closed
        w.write(b"late")
        await asyncio.sleep(0)
        return t

    t = asyncio.run(main())
    assert t.writes == [b"HTTP/1.1 400 Bad Request\r\n\r\n"]


def test_uvicorns_protocol_answers_through_it() -> None:
    """A whole request through uvicorn's httptools protocol: one write for head and body."""
    import uvicorn
    from uvicorn.server import ServerState

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", b"11")]})  # fmt: skip
        await send({"type": "http.response.body", "body": b'{"ok":true}'})

    async def main() -> FakeTransport:
        config = uvicorn.Config(app, http=OneWriteProtocol, log_level="warning")
        config.load()
        protocol = OneWriteProtocol(config=config, server_state=ServerState(), app_state={})
        t = FakeTransport()
        protocol.connection_made(t)
        protocol.data_received(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        for _ in range(5):
            await asyncio.sleep(0)
        return t

    t = asyncio.run(main())
    assert len(t.writes) == 1
    assert t.writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert t.writes[0].endswith(b'\r\n\r\n{"ok":true}')
