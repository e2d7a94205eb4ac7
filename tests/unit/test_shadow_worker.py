from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from charter.serving.shadow import ShadowJob, ShadowWorker


def queued(job: Callable[[], None]) -> ShadowJob:
    return ShadowJob(job, inline=False)


def test_jobs_run_in_order_and_stop_finishes_the_queue() -> None:
    done: list[int] = []
    worker = ShadowWorker(max_pending=100)
    gate = threading.Event()
    worker.start()
    worker.submit(queued(gate.wait))  # hold the thread so that the rest queue up
    for i in range(50):
        assert worker.submit(queued(lambda i=i: done.append(i)))
    gate.set()
    worker.stop()
    assert done == list(range(50)) and worker.dropped == 0


def test_a_full_queue_drops_and_counts_and_a_failing_job_is_survived() -> None:
    dropped: list[int] = []
    done: list[int] = []
    worker = ShadowWorker(max_pending=3, on_drop=lambda: dropped.append(1))
    gate = threading.Event()
    worker.start()
    worker.submit(queued(gate.wait))

    def broken() -> None:
        raise ValueError("a shadow model failed")

    # The thread may or may not have taken the gate job yet: fill the queue either way.
    results = [worker.submit(queued(broken))] + [
        worker.submit(queued(lambda i=i: done.append(i))) for i in range(5)
    ]
    gate.set()
    worker.stop()
    assert results.count(False) == worker.dropped == len(dropped) >= 2
    assert done == [i for i, ok in enumerate(results[1:]) if ok]  # the rest ran, after broken


def test_max_pending_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_pending"):
        ShadowWorker(max_pending=0)


def test_inline_jobs_run_at_once_in_the_caller_and_a_failure_stays_there() -> None:
    worker = ShadowWorker(max_pending=1)  # not started: an inline job needs no thread
    ran: list[str] = []

    def broken() -> None:
        raise ValueError("a shadow model failed")

    assert worker.submit(ShadowJob(lambda: ran.append(threading.current_thread().name), True))
    assert worker.submit(ShadowJob(broken, inline=True))  # logged, not raised
    assert worker.submit(ShadowJob(lambda: ran.append("again"), inline=True))
    assert ran == [threading.current_thread().name, "again"] and worker.dropped == 0
