"""The service over real HTTP: concurrency without lost or duplicated decisions, and kill -9."""

from __future__ import annotations

import http.client
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from charter import audit
from charter.serving.local import free_port
from charter.storage.schema import decisions

from .conftest import MODEL, Served


class Client:
    """One keep-alive connection per thread."""

    def __init__(self, port: int, token: str) -> None:
        self.port, self.token = port, token
        self.local = threading.local()
        self.opened: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def close(self) -> None:
        for c in self.opened:
            c.close()

    def post(self, path: str, body: Any) -> tuple[int, Any]:
        conn = getattr(self.local, "conn", None)
        if conn is None:
            conn = self.local.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            with self._lock:
                self.opened.append(conn)
        payload = json.dumps(body).encode()
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}
        try:
            conn.request("POST", path, payload, headers)
            r = conn.getresponse()
            data = r.read()
        except (ConnectionError, http.client.HTTPException, OSError):
            self.local.conn = None
            raise
        return r.status, json.loads(data)


def test_5000_requests_at_concurrency_16_lose_and_duplicate_nothing(
    served: Served, live: int
) -> None:
    client = Client(live, served.token)
    n = 5000

    def one(i: int) -> tuple[int, Any]:
        body = {"request_id": f"req-{i}", "entity_key": f"app-{i % 700}",
                "features": served.rows[i % 1000]}  # fmt: skip
        return client.post(f"/v1/models/{MODEL}/score", body)

    try:
        with ThreadPoolExecutor(16) as pool:
            results = list(pool.map(one, range(n)))
        # Send 500 of them again, concurrently: every repeat gets the original decision back.
        with ThreadPoolExecutor(16) as pool:
            repeats = list(pool.map(one, range(0, n, 10)))
    finally:
        client.close()
    assert all(status == 200 for status, _ in results)
    ids = [r["decision_id"] for _, r in results]
    assert len(set(ids)) == n
    assert all(s == 200 and r["duplicate"] for s, r in repeats)
    assert [r["decision_id"] for _, r in repeats] == ids[::10]
    with served.registry.db.read() as conn:
        rows = conn.execute(
            select(func.count(), func.count(decisions.c.request_id.distinct())).select_from(
                decisions
            )
        ).one()
    assert tuple(rows) == (n, n)


def _serve(home: Path, url: str, port: int, log: Path, workers: int = 1) -> subprocess.Popen[bytes]:
    env = dict(os.environ, CHARTER_HOME=str(home), CHARTER_DATABASE_URL=url)
    with open(log, "ab") as err:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "charter.cli",
                "serve",
                "--port",
                str(port),
                "--workers",
                str(workers),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )


def _wait_ready(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            c.request("GET", "/readyz")
            r = c.getresponse()
            r.read()
            if r.status == 200:
                return
        except OSError:
            pass
        finally:
            c.close()
        time.sleep(0.05)
    raise AssertionError("server did not become ready")


def _workers_serving(port: int) -> tuple[int, int]:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        c.request("GET", "/readyz")
        w = json.loads(c.getresponse().read())["workers"]
        return int(w["serving"]), int(w["configured"])
    finally:
        c.close()


def _wait_all_serving(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()
        serving, configured = _workers_serving(port)
        if serving == configured:
            return
        time.sleep(0.05)
    raise AssertionError(f"not every worker is serving: {_workers_serving(port)}")


@pytest.mark.parametrize(
    ("workers", "trials"),
    [(1, 20), (2, 6)],  # with 2 workers on SQLite, decisions go through the shared writer
)
def test_kill_9_under_load_loses_no_acknowledged_decision(
    served: Served, database_url: str, tmp_path: Path, workers: int, trials: int
) -> None:
    home = Path(str(served.registry.artifacts.root)).parent
    rng = random.Random(20261122 + workers)
    acknowledged: dict[str, str] = {}
    for trial in range(trials):
        port = free_port()
        log = tmp_path / "serve.log"
        proc = _serve(home, database_url, port, log, workers=workers)
        client = None
        try:
            _wait_ready(port, proc, log)
            client = Client(port, served.token)
            stop = threading.Event()
            lock = threading.Lock()

            def load(worker: int, client: Client = client, stop: threading.Event = stop,
                     lock: threading.Lock = lock, trial: int = trial) -> None:  # fmt: skip
                i = 0
                while not stop.is_set():
                    rid = f"t{workers}.{trial}-w{worker}-{i}"
                    i += 1
                    body = {"request_id": rid, "features": served.rows[i % 1000]}
                    try:
                        status, r = client.post(f"/v1/models/{MODEL}/score", body)
                    except (OSError, http.client.HTTPException, ValueError):
                        return
                    if status == 200:
                        with lock:
                            acknowledged[rid] = r["decision_id"]

            threads = [threading.Thread(target=load, args=(w,)) for w in range(8)]
            for t in threads:
                t.start()
            time.sleep(rng.uniform(0.05, 0.6))
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
            stop.set()
            for t in threads:
                t.join(timeout=30)
        finally:
            if client is not None:
                client.close()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert len(acknowledged) > trials  # load did reach the server
    with served.registry.db.read() as conn:
        logged = dict(conn.execute(select(decisions.c.request_id, decisions.c.id)).all())
        assert audit.verify(conn).ok
    missing = {rid for rid in acknowledged if logged.get(rid) != acknowledged[rid]}
    assert not missing, f"{len(missing)} acknowledged decisions were lost"
    # And the database is consistent: one row per request id, every row complete.
    with served.registry.db.read() as conn:
        n, distinct = conn.execute(
            select(func.count(), func.count(decisions.c.request_id.distinct())).select_from(
                decisions
            )
        ).one()
    assert n == distinct


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(c) for c in f.read().split()]


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"  # a zombie has ended
    except FileNotFoundError:
        return True


def test_two_workers_share_the_port_and_end_with_a_killed_parent(
    served: Served, database_url: str, tmp_path: Path
) -> None:
    home = Path(str(served.registry.artifacts.root)).parent
    port = free_port()
    log = tmp_path / "serve.log"
    proc = _serve(home, database_url, port, log, workers=2)
    client = Client(port, served.token)
    try:
        _wait_ready(port, proc, log)
        children = _children(proc.pid)  # and multiprocessing's resource tracker
        spawned = sorted(
            c for c in children if "spawn_main" in Path(f"/proc/{c}/cmdline").read_text()
        )
        shared = database_url.startswith("sqlite")  # then one writer process, started first
        assert len(spawned) == (3 if shared else 2), children

        def one(i: int, c: Client = client) -> tuple[int, Any]:
            body = {"request_id": f"two-{i}", "features": served.rows[i % 1000]}
            return c.post(f"/v1/models/{MODEL}/score", body)

        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(one, range(400)))
        assert all(status == 200 for status, _ in results)
        with served.registry.db.read() as conn:
            logged = conn.execute(
                select(func.count()).where(decisions.c.request_id.like("two-%"))
            ).scalar()
        assert logged == 400
        # A worker dies: the parent starts another, which takes connections once it has loaded
        # (until then the kernel gives them all to the other worker), and no request fails.
        _wait_all_serving(port, proc, log)
        os.kill(spawned[-1], signal.SIGKILL)
        deadline = time.monotonic() + 30
        while spawned[-1] in _children(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        meanwhile = Client(port, served.token)  # its own connection: an idle one is closed
        try:
            assert all(one(1100 + i, meanwhile)[0] == 200 for i in range(40))
        finally:
            meanwhile.close()
        _wait_all_serving(port, proc, log)
        assert _workers_serving(port) == (2, 2)
        with ThreadPoolExecutor(8) as pool:
            assert all(status == 200 for status, _ in pool.map(one, range(1200, 1400)))
        if shared:
            # The writer dies: requests get 503 (nothing unrecorded is answered) until the
            # parent has started another, and then they are logged again.
            os.kill(spawned[0], signal.SIGKILL)
            statuses = []
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                status, _ = one(1000 + len(statuses))
                statuses.append(status)
                if status == 200 and statuses.count(200) >= 20:
                    break
            assert set(statuses) <= {200, 503} and statuses.count(200) >= 20, statuses
            ok = [f"two-{1000 + i}" for i, st in enumerate(statuses) if st == 200]
            with served.registry.db.read() as conn:
                found = conn.execute(
                    select(func.count()).where(decisions.c.request_id.in_(ok))
                ).scalar()
            assert found == len(ok)
            children = _children(proc.pid)
        os.kill(proc.pid, signal.SIGKILL)  # the workers are told by the kernel, and end
        proc.wait(timeout=30)
        deadline = time.monotonic() + 30
        while not all(_gone(c) for c in children) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert all(_gone(c) for c in children), "a child outlived its parent"
    finally:
        client.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_port_in_use_is_refused_with_its_name(served: Served, database_url: str) -> None:
    import socket

    home = Path(str(served.registry.artifacts.root)).parent
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        env = dict(os.environ, CHARTER_HOME=str(home), CHARTER_DATABASE_URL=database_url)
        r = subprocess.run(
            [sys.executable, "-m", "charter.cli", "serve", "--port", str(port), "--workers", "2"],
            env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert r.returncode == 2, r.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in r.stderr + r.stdout
