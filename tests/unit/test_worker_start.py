"""A worker of ``charter serve --workers N`` accepts connections only once its app has started,
and says so in the parent's table of workers."""

from __future__ import annotations

import asyncio
import os
import socket
from typing import Any

import pytest
import uvicorn

from charter.serving import server
from charter.serving.server import OneWriteProtocol, WorkerServer, _bound


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_no_connection_waits_on_a_worker_that_is_still_starting() -> None:
    loaded = asyncio.Event()  # the app's start (loading models) ends when this is set

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await receive()
            await loaded.wait()
            await send({"type": "lifespan.startup.complete"})
            await receive()
            await send({"type": "lifespan.shutdown.complete"})
            return
        await receive()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"2")]})  # fmt: skip
        await send({"type": "http.response.body", "body": b"ok"})

    async def main() -> tuple[list[int], list[int], bytes, list[int]]:
        port = _free_port()
        slots = [0, 0]
        config = uvicorn.Config(app, http=OneWriteProtocol, log_level="warning", lifespan="on")
        srv = WorkerServer(config, slots, 1)
        task = asyncio.create_task(srv.serve(sockets=[_bound("127.0.0.1", port)]))
        await asyncio.sleep(0.2)
        # Starting: the port is bound but not listening, so a client is refused at once (the
        # kernel sends it to another worker when there is one) instead of waiting in a backlog.
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection("127.0.0.1", port)
        starting = list(slots)
        loaded.set()
        while not srv.started:
            await asyncio.sleep(0.01)
        serving = list(slots)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        answer = await reader.read(1000)
        writer.close()
        srv.should_exit = True
        await task
        return starting, serving, answer, list(slots)

    starting, serving, answer, stopped = asyncio.run(main())
    assert starting == [0, 0]
    assert serving == [0, os.getpid()]
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"ok")
    assert stopped == [0, 0]  # a stopping worker leaves the table first


def test_workers_serving_counts_the_filled_slots(monkeypatch: pytest.MonkeyPatch) -> None:
    assert server.workers_serving() == (1, 1)  # one process: itself
    monkeypatch.setattr(server, "_SLOTS", [4711, 0, 4712])
    assert server.workers_serving() == (2, 3)
