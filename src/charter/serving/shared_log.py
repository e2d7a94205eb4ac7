"""One decision-log writer for several worker processes (SQLite).

SQLite takes one writer at a time. With a writer thread in every worker, the workers' group
commits took turns through a file lock, and each writer shared its worker's interpreter lock with
the request path: under load a group of 16 decisions took about 4 ms to write that took 1 ms
alone. Here one writer process owns the database's writes; the workers send it their decisions
over a Unix socket and wait for its acknowledgement. Both workers' decisions go into one group
commit, and the inserts run off the workers' interpreter locks. The writer is one thread around a
selector (``serve``): it reads what every ready worker sent, commits it as one group, answers, and
waits again; while a group commits, the next one gathers in the sockets' buffers. (It had a
reader thread per worker that queued every message to a writer thread.)

A worker's event loop keeps its own connection to the writer (``_Channel``): the decisions of
one turn of the loop go out as one frame at the end of the turn, and the acknowledgements are
read and resolved on the loop. No thread is woken on the way out or back, which matters more than
it seems: with a sender and a receiver thread (still used off the loop, and for the first
decisions while the loop's connection opens) each turn cost two thread wake-ups and a wake-up of
the loop, and the worker's interpreter lock changed hands for each.

The promise is unchanged: a worker answers a request only once the writer has acknowledged its
decision, and the writer acknowledges only after the commit. If the writer is away, or cannot
write, the requests waiting on it get 503; the worker reconnects for the next request, and
``charter serve`` restarts a writer that died.

Wire format, both ways: frames of a 4-byte big-endian length and a JSON array of messages.
Worker to writer: ``[seq, "d", row]`` (a decision, its row in ``COLUMNS`` order), ``[0, "s",
row]`` (a shadow score), ``[0, "e", row]`` (a scoring failure). Writer to worker, one frame per
group commit: ``[seq, "ok"]``, ``[seq, "dup", row]`` (the decision logged before under the same
request id), or ``[seq, "err", message]``. The socket lives in a private directory (mode 0700),
and JSON carries no code.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import selectors
import socket
import struct
import threading
from collections.abc import Iterator
from typing import Any, cast

import orjson

from charter.errors import StoreUnavailable
from charter.serving.decision_log import (
    ERROR_COLUMNS,
    SHADOW_COLUMNS,
    DecisionLog,
    DecisionQueue,
    DecisionRecord,
    EncodedRow,
    Logged,
    Remote,
    Result,
    Waiter,
    _outcome,
    _resolve_on_loop,
    settle,
)

log = logging.getLogger("charter.serving")

SOCKET_ENV = "CHARTER_DECISION_LOG_SOCKET"
MAX_FRAME = 64 * 1024 * 1024
_LEN = struct.Struct(">I")
CHUNK = 1 << 16
READS_PER_TURN = 16  # reads of CHUNK bytes from one worker per turn of the writer's loop, at most
SEND_TIMEOUT = 10.0  # seconds a worker that does not read its acknowledgements is waited for


def _frame(messages: list[Any]) -> bytes:
    body = orjson.dumps(messages)
    return _LEN.pack(len(body)) + body


def _complete(buf: bytearray) -> Iterator[list[Any]]:
    """The messages of each whole frame at the start of ``buf``, taken out of it as they go."""
    while len(buf) >= 4:
        (n,) = _LEN.unpack_from(buf)
        if n > MAX_FRAME:
            raise ValueError(f"a frame of {n} bytes is larger than allowed")
        if len(buf) < 4 + n:
            return
        body = bytes(buf[4 : 4 + n])
        del buf[: 4 + n]
        messages = orjson.loads(body)
        if not isinstance(messages, list):
            raise ValueError("a frame must hold a list of messages")
        yield messages


def _result(message: list[Any]) -> Result:
    """What the writer said of one decision: ``[seq, "ok"]``, ``[seq, "dup", row]``, or
    ``[seq, "err", message]``."""
    if message[1] == "ok":
        return None
    if message[1] == "dup":
        return DecisionRecord.from_values(message[2])
    return StoreUnavailable(
        str(message[2]), remedy="retry later; the writer recovers when the database does"
    )


def _unreachable(e: BaseException) -> StoreUnavailable:
    return StoreUnavailable(
        f"the decision-log writer cannot be reached: {e}",
        remedy="retry; the service reconnects when the writer is back",
    )


def _frames(sock: socket.socket) -> Iterator[list[Any]]:
    """The messages of each frame read from ``sock``, until it closes."""
    buf = bytearray()
    while True:
        yield from _complete(buf)
        chunk = sock.recv(1 << 16)
        if not chunk:
            return
        buf += chunk


# ------------------------------------------------------------------------------ the writer side
class _Peer:
    """One connected worker: its socket, and the bytes read from it that do not yet make a
    whole frame."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    def read(self, into: list[tuple[str, Any, Waiter | None]]) -> bool:
        """Add what the worker sent to ``into``; False when it has gone (or sent garbage)."""
        alive = True
        try:
            for _ in range(READS_PER_TURN):
                try:
                    chunk = self.sock.recv(CHUNK)
                except BlockingIOError:
                    break
                if not chunk:
                    alive = False  # what it sent before it went is still written
                    break
                self.buf += chunk
                if len(chunk) < CHUNK:
                    break
            for messages in _complete(self.buf):
                for seq, kind, row in messages:
                    if kind == "d":
                        into.append(("decision", EncodedRow(tuple(row)), Remote(self, int(seq))))
                    elif kind == "s":
                        into.append(("shadow", tuple(row), None))
                    elif kind == "e":
                        into.append(("error", tuple(row), None))
                    else:
                        raise ValueError(f"unknown message kind {kind!r}")
        except (OSError, ValueError, TypeError, orjson.JSONDecodeError) as e:
            log.warning("a worker's decision-log connection failed: %s", e)
            return False
        return alive

    def acknowledge(self, results: list[tuple[int, Result]]) -> None:
        messages: list[Any] = []
        for seq, result in results:
            if result is None:
                messages.append([seq, "ok"])
            elif isinstance(result, DecisionRecord):
                messages.append([seq, "dup", list(result.values())])
            else:
                messages.append([seq, "err", str(result)])
        data = _frame(messages)
        try:
            try:
                sent = self.sock.send(data)
            except BlockingIOError:
                sent = 0
            if sent < len(data):  # the worker is slow to read: wait for room, a while
                self.sock.settimeout(SEND_TIMEOUT)
                self.sock.sendall(data[sent:])
                self.sock.setblocking(False)
        except OSError:
            # The worker went away, or stopped reading: it waits no more. The loop sees the
            # socket end, and closes it.
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_RDWR)


def serve(writer: DecisionLog, path: str, stop: threading.Event) -> None:
    """Accept workers on the Unix socket ``path`` and write what they send until ``stop`` is
    set. One thread does it all: it waits for any worker's socket to be readable, reads what
    every ready worker sent, writes that as one group commit and acknowledges it, and waits
    again. While a group commits, the next one gathers in the sockets' buffers."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)  # a socket left by a writer that died
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    os.chmod(path, 0o600)
    listener.listen(128)
    listener.setblocking(False)
    writer.start(thread=False)
    sel = selectors.DefaultSelector()
    sel.register(listener, selectors.EVENT_READ, None)
    try:
        while not stop.is_set():
            group: list[tuple[str, Any, Waiter | None]] = []
            for key, _ in sel.select(timeout=0.2):
                if key.data is None:
                    _accept(listener, sel)
                elif not key.data.read(group):
                    sel.unregister(key.fileobj)
                    key.data.close()
            # What was read is written before the stop is looked at: a worker never waits for
            # a decision the writer read and dropped. Then it hangs up, and a worker still
            # waiting hears that the writer has gone, and answers 503.
            for i in range(0, len(group), writer.max_batch):
                writer.write_group(group[i : i + writer.max_batch])
    finally:
        peers = [key.data for key in sel.get_map().values() if key.data is not None]
        sel.close()
        listener.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        writer.stop()
        for p in peers:
            p.close()


def _accept(listener: socket.socket, sel: selectors.BaseSelector) -> None:
    while True:
        try:
            sock, _ = listener.accept()
        except BlockingIOError:
            return
        sock.setblocking(False)
        sel.register(sock, selectors.EVENT_READ, _Peer(sock))


# ------------------------------------------------------------------------------ the worker side
class _Connection:
    """One connection to the writer and the decisions waiting on it."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.lock = threading.Lock()
        self.pending: dict[int, tuple[Waiter, DecisionRecord]] = {}
        self.closed = False


class _Channel(asyncio.Protocol):
    """A worker event loop's own connection to the writer. What the loop submits during one
    turn goes out as one frame at the end of the turn, and the writer's acknowledgements
    resolve the waiting futures on the loop itself: no thread is woken either way."""

    def __init__(self, owner: RemoteDecisionLog, loop: asyncio.AbstractEventLoop) -> None:
        self.owner = owner
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self._seq = 0
        self._pending: dict[int, tuple[asyncio.Future[Logged], DecisionRecord]] = {}
        self._outgoing: list[Any] = []
        self._buf = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # (uvloop's is not a subclass)

    def submit(self, record: DecisionRecord) -> asyncio.Future[Logged]:
        fut: asyncio.Future[Logged] = self.loop.create_future()
        self._seq += 1
        self._pending[self._seq] = (fut, record)
        self.send([self._seq, "d", record.values()])
        return fut

    def send(self, message: list[Any]) -> None:
        if not self._outgoing:
            self.loop.call_soon(self._flush)
        self._outgoing.append(message)

    def _flush(self) -> None:
        messages, self._outgoing = self._outgoing, []
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(_frame(messages))
        # (else connection_lost has failed, or is about to fail, the decisions among them)

    def data_received(self, data: bytes) -> None:
        self._buf += data
        try:
            for messages in _complete(self._buf):
                self._settle(messages)
        except (ValueError, orjson.JSONDecodeError, IndexError, TypeError) as e:
            log.warning("the decision-log writer sent a bad frame: %s", e)
            self.close()

    def _settle(self, messages: list[Any]) -> None:
        resolved: list[tuple[asyncio.Future[Logged], Logged | BaseException]] = []
        for message in messages:
            waiting = self._pending.pop(int(message[0]), None)
            if waiting is not None:
                result = _result(message)
                self.owner.rows += result is None
                resolved.append((waiting[0], _outcome(waiting[1], result)))
        self.owner.batches += 1
        _resolve_on_loop(resolved)

    def close(self) -> None:
        """Send what this turn gathered, then close (the transport writes out its buffer)."""
        if self._outgoing:
            self._flush()
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.owner._channel is self:
            self.owner._channel = None
        pending, self._pending = self._pending, {}
        err = _unreachable(exc or ConnectionError("the writer closed the connection"))
        _resolve_on_loop([(fut, err) for fut, _ in pending.values()])


class RemoteDecisionLog(DecisionQueue):
    """The worker's side. On the event loop that started it (the server's), decisions go
    through the loop's own connection to the writer (:class:`_Channel`, opened by the first
    decision and again after the writer comes back); it is closed by ``stop`` on that loop.
    Elsewhere, and while that connection opens, a sender thread forwards queued decisions and a
    receiver thread settles them as the writer acknowledges."""

    def __init__(self, path: str, *, max_batch: int = 512) -> None:
        super().__init__(max_batch)
        self.path = path
        self._seq = 0
        self._conn: _Connection | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # the loop that started it
        self._channel: _Channel | None = None  # that loop's connection, when open
        self._opener: asyncio.Task[None] | None = None  # opening that connection

    def submit_async(self, record: DecisionRecord) -> asyncio.Future[Logged]:
        loop = asyncio.get_running_loop()
        if loop is self._loop:
            if self._channel is not None:
                return self._channel.submit(record)
            self._open_channel(loop)
        return super().submit_async(record)

    def submit_shadow(self, row: dict[str, Any]) -> None:
        if not self._send_here("s", SHADOW_COLUMNS, row):
            super().submit_shadow(row)

    def submit_error(self, row: dict[str, Any]) -> None:
        if not self._send_here("e", ERROR_COLUMNS, row):
            super().submit_error(row)

    def _send_here(self, kind: str, columns: tuple[str, ...], row: dict[str, Any]) -> bool:
        """Send an unacknowledged row on the loop's connection, if called on that loop."""
        channel = self._channel_here()
        if channel is not None:
            channel.send([0, kind, [row[c] for c in columns]])
        return channel is not None

    def _channel_here(self) -> _Channel | None:
        """The open connection, when called on its event loop."""
        if self._channel is None:
            return None
        try:
            here = asyncio.get_running_loop()
        except RuntimeError:  # no event loop in this thread
            return None
        return self._channel if here is self._loop else None

    def _open_channel(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._opener is not None and not self._opener.done():
            return

        async def opening() -> None:
            try:
                _, channel = await loop.create_unix_connection(
                    lambda: _Channel(self, loop), self.path
                )
                if loop is self._loop:
                    self._channel = channel
                else:  # stopped meanwhile
                    channel.close()
            except OSError as e:  # the writer is away: the thread path answers 503 meanwhile
                log.debug("cannot open the decision-log connection: %s", e)

        self._opener = loop.create_task(opening())

    def start(self) -> None:
        with contextlib.suppress(RuntimeError):  # started off an event loop: threads only
            self._loop = asyncio.get_running_loop()
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="charter-decision-log-sender", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._request_stop()
            self._thread.join(timeout=30)
            self._thread = None
        conn, self._conn = self._conn, None
        if conn is not None:
            self._close(conn)
        channel, here = self._channel, self._channel_here()
        self._loop = self._channel = None
        if channel is not None:
            if channel is here:
                channel.close()
            else:
                with contextlib.suppress(RuntimeError):  # that loop has closed
                    channel.loop.call_soon_threadsafe(channel.close)

    # -- sender -------------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            batch, stop = self._next_batch()
            if batch:
                self._forward(batch)
            if stop:
                return

    def _connect(self) -> _Connection:
        if self._conn is not None and not self._conn.closed:
            return self._conn
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(self.path)
        except OSError:
            sock.close()
            raise
        conn = _Connection(sock)
        threading.Thread(
            target=self._receive, args=(conn,), name="charter-decision-log-receiver", daemon=True
        ).start()
        self._conn = conn
        return conn

    def _forward(self, batch: list[tuple[str, Any, Waiter | None]]) -> None:
        decisions = [(rec, w) for kind, rec, w in batch if kind == "decision" and w is not None]
        try:
            conn = self._connect()
        except OSError as e:
            self._fail([(w, rec) for rec, w in decisions], e)
            return
        messages: list[Any] = []
        with conn.lock:
            if conn.closed:  # the receiver found it broken since we took it
                gone: list[tuple[Waiter, DecisionRecord]] = [(w, rec) for rec, w in decisions]
                self._fail(gone, ConnectionError("the connection to the writer closed"))
                return
            for kind, rec, w in batch:
                if kind == "decision" and w is not None:
                    self._seq += 1
                    conn.pending[self._seq] = (w, rec)
                    messages.append([self._seq, "d", rec.values()])
                elif kind == "shadow":
                    messages.append([0, "s", rec])
                elif kind == "error":
                    messages.append([0, "e", rec])
        try:
            conn.sock.sendall(_frame(messages))
        except OSError:
            # The receiver sees the connection end and fails everything pending on it.
            with contextlib.suppress(OSError):
                conn.sock.shutdown(socket.SHUT_RDWR)

    @staticmethod
    def _fail(waiting: list[tuple[Waiter, DecisionRecord]], e: BaseException) -> None:
        err = _unreachable(e)
        settle([(w, rec, err) for w, rec in waiting])

    # -- receiver -----------------------------------------------------------------------------
    def _receive(self, conn: _Connection) -> None:
        why: BaseException = ConnectionError("the writer closed the connection")
        try:
            for messages in _frames(conn.sock):
                settled: list[tuple[Waiter, DecisionRecord, Result]] = []
                written = 0
                with conn.lock:
                    for message in messages:
                        waiting = conn.pending.pop(int(message[0]), None)
                        if waiting is None:
                            continue
                        result = _result(message)
                        written += result is None
                        settled.append((waiting[0], waiting[1], result))
                self.batches += 1
                self.rows += written
                settle(settled)
        except (OSError, ValueError, orjson.JSONDecodeError, IndexError, TypeError) as e:
            why = e
        self._close(conn, why)

    def _close(self, conn: _Connection, why: BaseException | None = None) -> None:
        with conn.lock:
            conn.closed = True
            waiting = list(conn.pending.values())
            conn.pending.clear()
        with contextlib.suppress(OSError):
            conn.sock.close()
        if waiting:
            self._fail(waiting, why or ConnectionError("the worker is stopping"))
