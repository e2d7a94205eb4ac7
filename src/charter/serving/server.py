"""``charter serve``: uvicorn, one process or several worker processes on one port.

With several workers, each worker opens its own listening socket on the same port with
``SO_REUSEPORT``, and the kernel spreads new connections across them by a hash of the
connection. uvicorn's own multi-worker mode shares one listening socket instead; a burst of new
connections (a client pool opening 32 keep-alive connections at once) is then accepted by
whichever worker wakes first, in one accept loop, and stays there: on this project's benchmark
one worker held most connections at 88% CPU while the other idled at 29%.

On SQLite the parent also starts one decision-log writer process that all workers send their
decisions to (``shared_log``): one stream of group commits instead of workers taking turns.
PostgreSQL runs concurrent commits itself, so there each worker keeps its own writer thread.

The parent only supervises: it starts the writer and the workers, restarts one that dies, and on
SIGINT or SIGTERM stops the workers (which finish the requests in flight) and then the writer.
Each child asks the kernel to send it SIGTERM when the parent dies, so a killed server leaves no
orphan answering requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import multiprocessing
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import MutableSequence
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import TYPE_CHECKING, Any, cast

import uvicorn
from uvicorn.protocols.http.httptools_impl import (
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)
from uvicorn.protocols.utils import get_client_addr, get_path_with_query_string

if TYPE_CHECKING:  # app.py imports this module (workers_serving)
    from charter.serving.app import FastScorePath

log = logging.getLogger("charter.serving")

APP = "charter.serving.app:from_env"
BACKLOG = 2048  # uvicorn's default
_PR_SET_PDEATHSIG = 1
# In a worker process: the parent's table of workers (a slot each, the pid of the worker that
# serves from it, 0 while none does).
_SLOTS: MutableSequence[int] | None = None


def workers_serving() -> tuple[int, int]:
    """(workers accepting connections, workers configured) of this ``charter serve``; (1, 1)
    in one process. A worker killed with -9 still counts until the parent notices (0.2 s)."""
    if _SLOTS is None:
        return 1, 1
    return sum(1 for pid in _SLOTS if pid), len(_SLOTS)


def run(host: str, port: int, workers: int, log_level: str = "warning") -> None:
    """Serve until interrupted."""
    if workers == 1:
        uvicorn.run(
            APP, factory=True, host=host, port=port, log_level=log_level, http=OneWriteProtocol
        )
        return
    _check_free(host, port)
    ctx = multiprocessing.get_context("spawn")
    procs: list[BaseProcess] = []
    stopping = False
    writer: BaseProcess | None = None
    socket_dir: str | None = None
    if _shared_writer():
        from charter.serving.shared_log import SOCKET_ENV

        socket_dir = tempfile.mkdtemp(prefix="charter-log-")  # mode 0700: ours alone
        path = os.path.join(socket_dir, "decision-log.sock")
        os.environ[SOCKET_ENV] = path  # the workers, spawned below, inherit it

    def start_writer() -> BaseProcess:
        p = ctx.Process(target=_log_writer, args=(os.environ[SOCKET_ENV],), name="charter-log")
        p.start()
        _wait_for_socket(os.environ[SOCKET_ENV], p)
        return p

    slots = ctx.RawArray("i", workers)  # which workers accept connections (workers_serving)

    def start(i: int) -> BaseProcess:
        slots[i] = 0
        p = ctx.Process(
            target=_worker, args=(host, port, log_level, slots, i), name="charter-worker"
        )
        p.start()
        return p

    def stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        if socket_dir is not None:
            writer = start_writer()
        procs = [start(i) for i in range(workers)]
        while not stopping:
            time.sleep(0.2)
            if writer is not None and not writer.is_alive() and not stopping:
                log.warning("the decision-log writer exited with %s; starting another",
                            writer.exitcode)  # fmt: skip
                writer = start_writer()
            for i, p in enumerate(procs):
                if not p.is_alive() and not stopping:
                    log.warning("worker %s exited with %s; starting another", p.pid, p.exitcode)
                    procs[i] = start(i)
    finally:
        _stop(procs)  # SIGTERM: uvicorn finishes the requests in flight, which need the writer
        if writer is not None:
            _stop([writer])  # then the writer commits what it has received and ends
        if socket_dir is not None:
            shutil.rmtree(socket_dir, ignore_errors=True)
        for s, h in previous.items():
            signal.signal(s, h)


def _stop(procs: list[BaseProcess]) -> None:
    for p in procs:
        if p.is_alive():
            p.terminate()
    for p in procs:
        p.join(timeout=30)
        if p.is_alive():
            p.kill()
            p.join()


def _shared_writer() -> bool:
    """One writer process for all workers: on SQLite (one writer at a time anyway)."""
    from sqlalchemy.engine import make_url

    from charter.config import Settings

    return make_url(Settings.from_env().database_url).get_backend_name() == "sqlite"


def _wait_for_socket(path: str, proc: BaseProcess, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.is_alive():
            raise RuntimeError(f"the decision-log writer exited with {proc.exitcode}")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            try:
                s.connect(path)
                return
            except OSError:
                time.sleep(0.05)
    raise RuntimeError("the decision-log writer did not start listening")


def _die_with_parent() -> None:
    if sys.platform == "linux":  # end with the parent, even when it is killed with -9
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _log_writer(path: str) -> None:
    """The shared decision-log writer process: until SIGTERM (the parent sends it after the
    workers have stopped; SIGINT from a terminal is left to the parent)."""
    from charter.config import Settings
    from charter.serving.decision_log import DecisionLog
    from charter.serving.shared_log import serve
    from charter.storage.db import Database

    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda _s, _f: stop.set())
    db = Database(Settings.from_env().database_url)
    try:
        serve(DecisionLog(db), path, stop)
    finally:
        db.dispose()


class _OneWrite:
    """A connection's transport that sends what is written to it in one turn of the event loop
    as one write. uvicorn writes a response's head and its body separately, and each write is
    a send on the socket at once: two system calls and two TCP segments per response, which
    the client's side also wakes for. Here they go as one, at the end of the turn."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._pending: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self._pending:
            asyncio.get_running_loop().call_soon(self._flush)
        self._pending.append(bytes(data))

    def _flush(self) -> None:
        if self._pending:
            data = b"".join(self._pending)
            self._pending.clear()
            if not self._transport.is_closing():
                self._transport.write(data)

    def write_whole(self, data: bytes) -> None:
        """A whole response, sent now after what this turn already holds: nothing is left to
        join it, so it need not wait for the end of the turn."""
        if self._pending:
            self._pending.append(data)
            self._flush()
        elif not self._transport.is_closing():
            self._transport.write(data)

    def writelines(self, list_of_data: Any) -> None:
        for data in list_of_data:
            self.write(data)

    def write_eof(self) -> None:
        self._flush()
        self._transport.write_eof()

    def is_closing(self) -> bool:  # asked once a request (the rest goes by __getattr__)
        return self._transport.is_closing()

    def close(self) -> None:
        self._flush()  # what was written goes out before the connection ends
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def _scoring_path(app: Any) -> FastScorePath | None:
    """The scoring path of the Charter app inside uvicorn's wrappers (proxy headers, logging)."""
    for _ in range(8):
        fast = getattr(app, "fast_score", None)
        if fast is not None:
            return cast("FastScorePath", fast)
        app = getattr(app, "app", None)
        if app is None:
            return None
    return None


def _respond(out: _OneWrite, cycle: RequestResponseCycle, status: int, body: bytes) -> None:
    """A JSON response, as uvicorn's cycle writes the ASGI app's: its status line, its default
    headers, ``connection: close`` when the connection is to end; then the next request."""
    cycle.response_started = True
    cycle.waiting_for_100_continue = False
    if cycle.access_log and cycle.access_logger.isEnabledFor(logging.INFO):  # not at warning
        scope = cycle.scope
        cycle.access_logger.info(
            '%s - "%s %s HTTP/%s" %d', get_client_addr(scope), scope["method"],
            get_path_with_query_string(scope), scope["http_version"], status,
        )  # fmt: skip
    head = [STATUS_LINE[status]]
    for key, value in cycle.default_headers:
        head += (key, b": ", value, b"\r\n")
    head.append(b"content-type: application/json\r\ncontent-length: %d\r\n" % len(body))
    if not cycle.keep_alive:
        head.append(b"connection: close\r\n")
    head += (b"\r\n", body)
    out.write_whole(b"".join(head))
    cycle.response_complete = True
    cycle.message_event.set()
    if not cycle.keep_alive:
        cycle.transport.close()
    cycle.on_response()


class OneWriteProtocol(HttpToolsProtocol):
    """uvicorn's HTTP protocol (httptools), on a transport that writes once per turn, which
    answers scoring requests itself.

    uvicorn parses the request, keeps the connection alive, queues pipelined requests and
    applies flow control as always; where it would start the ASGI app on a request
    (``_start_asgi_task``), a scoring request goes to the app's scoring path instead: no ASGI
    scope walk through uvicorn's proxy-headers middleware and the app, no ASGI messages, and the
    response written as one piece. Everything else goes to the ASGI app. On uvicorn's floor app
    this cost 12 µs less CPU a request (42-52 against 28-38 µs)."""

    _scoring: FastScorePath | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:  # a Transport here
        self._out = _OneWrite(cast("Any", transport))
        super().connection_made(cast("asyncio.Transport", self._out))
        self._scoring = _scoring_path(self.app)

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        scoring = self._scoring
        if scoring is not None and app is self.app:  # (not uvicorn's over-the-limit 503 app)
            name = scoring.model_of(cycle.scope["method"], cycle.scope["path"])
            if name is not None:
                task = self.loop.create_task(self._score(scoring, cycle, name))
                task.add_done_callback(self.tasks.discard)
                self.tasks.add(task)
                return
        super()._start_asgi_task(cycle, app)

    async def _score(self, scoring: FastScorePath, cycle: RequestResponseCycle, name: str) -> None:
        """A scoring request, answered, and then its shadow work."""
        try:
            # uvicorn's receive answers Expect: 100-continue, resumes reading, says when the
            # client has gone
            status, body, shadow = await scoring.answer(name, cycle.scope["headers"], cycle.receive)
            if cycle.flow.write_paused and not cycle.disconnected:
                await cycle.flow.drain()
            if not cycle.disconnected:  # one that has gone gets nothing; its decision is logged
                _respond(self._out, cycle, status, body)
        except BaseException as exc:  # as uvicorn's run_asgi: log, and a 500 if nothing was sent
            self.logger.error("Exception in the scoring path", exc_info=exc)
            if not cycle.response_started:
                await cycle.send_500_response()
            else:
                cycle.transport.close()
            return
        finally:
            cycle.on_response = lambda: None
        scoring.after(shadow)


def _check_free(host: str, port: int) -> None:
    """Fail at once, with the port named, when another program holds it."""
    with socket.socket(_family(host), socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError as e:
            from charter.errors import InvalidArgument

            raise InvalidArgument(
                f"cannot listen on {host}:{port}: {e.strerror}",
                field="port",
                remedy="stop the program that holds the port, or pass another --port",
            ) from None


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _bound(host: str, port: int) -> socket.socket:
    """A worker's socket on the shared port: bound, and not yet listening. The kernel hands
    connections only to listening sockets, so none waits in this one's backlog while the worker
    loads its models; uvicorn listens (``create_server``) once the app has started."""
    sock = socket.socket(_family(host), socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


class WorkerServer(uvicorn.Server):
    """uvicorn's server in one worker: its slot in the parent's table holds the worker's pid
    while it accepts connections, from the end of its start to the beginning of its stop."""

    def __init__(self, config: uvicorn.Config, slots: MutableSequence[int], index: int) -> None:
        super().__init__(config)
        self.slots = slots
        self.index = index

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            self.slots[self.index] = os.getpid()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.slots[self.index] = 0
        await super().shutdown(sockets=sockets)


def _worker(host: str, port: int, log_level: str, slots: MutableSequence[int], index: int) -> None:
    global _SLOTS
    _die_with_parent()
    _SLOTS = slots
    sock = _bound(host, port)
    config = uvicorn.Config(
        APP, factory=True, log_level=log_level, http=OneWriteProtocol, backlog=BACKLOG
    )
    WorkerServer(config, slots, index).run(sockets=[sock])
