"""Shadow scoring off the response path: after the response, on the event loop or on one
background thread per worker process.

The champion's response never waits for a shadow. Each scored request hands its shadow work over
after the response has been sent. Work whose scorers are cheap (linear, scorecard, native trees:
microseconds to a fraction of a millisecond) runs at once on the event loop (``inline``): handing
it to a thread cost more than the scoring, a thread wake-up and the interpreter lock changing
hands, and the shadow's row then joins the loop's own frame to the decision-log writer. Slow work
(a generic model, milliseconds) goes to this thread, which scores and logs it in arrival order.
Handing work to one long-lived thread costs a queue put, where a thread pool per request cost a
pool future, a thread wake-up and a wake-up of the event loop when the pool finished.

The queue is bounded: a shadow that cannot keep up (a slow model under a burst) must not grow the
process without limit. When ``max_pending`` jobs are waiting, new ones are dropped and counted
(``charter_shadow_dropped``): a shadow comparison is a sample of the traffic, and the count says
how large a sample it was.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass

from charter.serving.decision_log import PerTurn

log = logging.getLogger("charter.serving")


@dataclass(frozen=True, slots=True)
class ShadowJob:
    """Shadow work for after a response; ``inline`` when its scorers are cheap enough to run on
    the event loop."""

    run: Callable[[], None]
    inline: bool


class ShadowWorker:
    def __init__(
        self, *, max_pending: int = 10_000, on_drop: Callable[[], None] | None = None
    ) -> None:
        if max_pending < 1:
            raise ValueError("max_pending must be at least 1")
        self.max_pending = max_pending
        self.on_drop = on_drop
        self.dropped = 0
        self._q: queue.SimpleQueue[list[Callable[[], None]] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._per_turn: PerTurn[Callable[[], None]] = PerTurn(self._q.put)
        self._pending = 0  # submitted and not yet run
        self._count = threading.Lock()

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="charter-shadow", daemon=True)
            self._thread.start()

    def submit(self, job: ShadowJob) -> bool:
        """Run an inline ``job`` now, or queue it for the thread; False (and counted) when the
        queue is full."""
        if job.inline:
            _run(job.run)
            return True
        with self._count:
            full = self._pending >= self.max_pending
            if full:
                self.dropped += 1
            else:
                self._pending += 1
        if full:
            if self.on_drop is not None:
                self.on_drop()
            return False
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not on an event loop: hand it over now
            self._q.put([job.run])
            return True
        self._per_turn.add(loop, job.run)
        return True

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the jobs already queued, then end the thread."""
        if self._thread is not None:
            self._q.put(None)  # the end
            self._thread.join(timeout=timeout)
            self._thread = None

    def _run(self) -> None:
        while True:
            jobs = self._q.get()
            if jobs is None:
                return
            with self._count:
                self._pending -= len(jobs)
            for job in jobs:
                _run(job)


def _run(job: Callable[[], None]) -> None:
    try:
        job()
    except Exception:  # a shadow's fault must never end shadow scoring, nor fail a request
        log.exception("a shadow job failed")
