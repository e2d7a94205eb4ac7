"""``charter serve``: uvicorn, one process or several worker processes on one port.

With several workers, each worker opens its own listening socket on the same port with
``SO_REUSEPORT``, and the kernel spreads new connections across them by a hash of the
connection. uvicorn's own multi-worker mode shares one listening socket instead; a burst of new
connections (a client pool opening 32 keep-alive connections at once) is then accepted by
whichever worker wakes first, in one accept loop, and stays there: on this project's benchmark
one worker held most connections at 88% CPU while the other idled at 29%.

The parent only supervises: it starts the workers, restarts one that dies, and on SIGINT or
SIGTERM stops them all. Each worker asks the kernel to send it SIGTERM when the parent dies, so a
killed server leaves no orphan answering requests.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import multiprocessing
import signal
import socket
import sys
import time
from multiprocessing.process import BaseProcess
from types import FrameType

log = logging.getLogger("charter.serving")

APP = "charter.serving.app:from_env"
BACKLOG = 2048  # uvicorn's default
_PR_SET_PDEATHSIG = 1


def run(host: str, port: int, workers: int, log_level: str = "warning") -> None:
    """Serve until interrupted."""
    import uvicorn

    if workers == 1:
        uvicorn.run(APP, factory=True, host=host, port=port, log_level=log_level)
        return
    _check_free(host, port)
    ctx = multiprocessing.get_context("spawn")
    procs: list[BaseProcess] = []
    stopping = False

    def start() -> BaseProcess:
        p = ctx.Process(target=_worker, args=(host, port, log_level), name="charter-worker")
        p.start()
        return p

    def stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        procs = [start() for _ in range(workers)]
        while not stopping:
            time.sleep(0.2)
            for i, p in enumerate(procs):
                if not p.is_alive() and not stopping:
                    log.warning("worker %s exited with %s; starting another", p.pid, p.exitcode)
                    procs[i] = start()
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()  # SIGTERM: uvicorn finishes the requests in flight
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
        for s, h in previous.items():
            signal.signal(s, h)


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


def _worker(host: str, port: int, log_level: str) -> None:
    import uvicorn

    if sys.platform == "linux":  # end with the parent, even when it is killed with -9
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    sock = socket.socket(_family(host), socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(BACKLOG)
    sock.set_inheritable(True)
    config = uvicorn.Config(APP, factory=True, log_level=log_level)
    uvicorn.Server(config).run(sockets=[sock])
