"""Serving throughput and latency with wrk: Charter against a bare ASGI floor, same run.

Charter runs as ``charter serve --workers 2`` with everything on: schema validation, the German
Credit champion (a logistic-regression scorecard), one shadow, reason codes and the durable
decision log (group commit, SQLite in WAL mode under a temporary CHARTER_HOME). The floor is a
bare ASGI app returning a constant, run by uvicorn with 1 and 2 workers. The second baseline is
the issue's plain stack (``fastapi_app.py``: FastAPI, a pydantic request model and scikit-learn's
``predict_proba`` on the request as a one-row DataFrame, the call the issue timed at about 440 µs;
2 workers, nothing logged); the goal of 5,000 req/s was set as 2.5 times it, so the ratio in the
same run is printed too, which this machine's changing speed moves less than the absolute
figures. A leaner stand-in (``predict_proba`` on a numpy row) runs as well. Neither lands where
the issue's stack did (0.084x the floor): the DataFrame call costs more here than the issue's
440 µs, the numpy call less. So the goal is also printed as the share of the floor it stands for
at the issue's table, 2.5 x 2,040 / 24,200 = 0.211x, against the floor of the same run.
wrk drives each at 32 connections; every Charter request carries a unique request id, so every
200 is a new decision, and at the end the decision-log row count must equal the number of 200
responses.

    python benchmarks/serving_bench.py [--duration 10] [--connections 32]

Installs wrk from Debian if it is missing (needs root and apt).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import func, select

BENCH = Path(__file__).resolve().parent
GOAL_SHARE = 2.5 * 2040 / 24200  # the goal as a share of the floor, at the issue's table
PLAIN_STACKS = {
    "plain FastAPI + predict_proba (2 workers)": "fastapi_app:app",
    "  lean: predict_proba on a numpy row": "fastapi_app:lean_app",
}
LUA = r"""
local counter = 0
local thread_id = 0
local threads = {}
function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end
function init(args)
  thread_id = tid
end
function request()
  counter = counter + 1
  local key = "app-" .. (counter %% 5000)
  local body = string.format(BODY_TEMPLATE, thread_id .. "-" .. counter, key)
  return wrk.format("POST", PATH, {["Content-Type"] = "application/json",
                                   ["Authorization"] = "Bearer " .. TOKEN}, body)
end
"""


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    print("installing wrk from Debian ...")
    subprocess.run(["apt-get", "update", "-qq"], check=False, capture_output=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True, capture_output=True)
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("wrk could not be installed")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, ready: Callable[[bytes], bool] = lambda _: True) -> None:
    """Wait (a minute at most) until ``url`` answers 200 with a body that is ``ready``."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200 and ready(r.read()):
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url} did not come up")


def all_workers_serving(readyz: bytes) -> bool:
    """Whether ``/readyz`` says every worker accepts connections: one that is still loading
    takes none, and wrk's connections, opened at once, would all go to the others."""
    workers = json.loads(readyz)["workers"]
    return bool(workers["serving"] == workers["configured"])


def parse_wrk(out: str) -> dict[str, float]:
    def ms(v: str) -> float:
        m = re.match(r"([\d.]+)(us|ms|s)", v)
        if not m:
            return float("nan")
        x, unit = float(m.group(1)), m.group(2)
        return x / 1000 if unit == "us" else (x * 1000 if unit == "s" else x)

    res: dict[str, float] = {}
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    if rps is None or total is None:
        raise SystemExit(f"cannot read wrk's output:\n{out}")
    res["rps"] = float(rps.group(1))
    res["requests"] = float(total.group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    res["non2xx"] = float(non2xx.group(1)) if non2xx else 0.0
    errors = re.search(r"Socket errors: (.*)", out)
    res["socket_errors"] = (
        float(sum(int(x) for x in re.findall(r"\d+", errors.group(1)))) if errors else 0.0
    )
    for p in ("50", "99"):
        m = re.search(rf"^\s+{p}%\s+(\S+)", out, re.M)
        res[f"p{p}"] = ms(m.group(1)) if m else float("nan")
    return res


def run_wrk(wrk: str, url: str, duration: int, conns: int, script: str | None) -> dict[str, float]:
    cmd = [wrk, "-t", "2", "-c", str(conns), "-d", f"{duration}s", "--latency", url]
    if script:
        cmd[1:1] = ["-s", script]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return parse_wrk(out)


BENCH_POLICY = """name = "serving-bench"
[data]
label = "creditability"
positive = "bad"
[gates.performance]
datasets = ["holdout"]
min_auc = 0.5
min_ks = 0.0
"""


def setup_store(home: Path) -> tuple[str, dict[str, object]]:
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from charter import datasets
    from charter.config import Settings
    from charter.registry.service import Registry
    from charter.storage.artifacts import ArtifactStore
    from charter.storage.db import Database
    from charter.validation.runner import validate

    s = Settings.for_home(home)
    db = Database(s.database_url)
    db.upgrade()
    reg = Registry(db, ArtifactStore(s.artifact_root))
    reg.identity.bootstrap_admin("ada")
    admin = reg.identity.actor("ada")
    for u, r in (("dana", "developer"), ("victor", "validator"), ("petra", "approver"),
                 ("los", "service")):  # fmt: skip
        reg.identity.create_user(admin, u, [r])
    dev, val, app = (reg.identity.actor(u) for u in ("dana", "victor", "petra"))
    reg.create_model(dev, name="gc", purpose="PD", business_use="credit", decision_type="credit",
                     owner="risk", team="analytics", risk_tier="high")  # fmt: skip
    X, y = datasets.german_credit_xy()
    for c, alias in ((0.5, "champion"), (0.05, "shadow")):
        pre = ColumnTransformer([
            ("num", StandardScaler(), list(datasets.GERMAN_CREDIT_NUMERIC)),
            ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False),
             list(datasets.GERMAN_CREDIT_CATEGORICAL)),
        ])  # fmt: skip
        model = Pipeline([("prep", pre), ("lr", LogisticRegression(C=c, max_iter=1000))])
        v = reg.log_model(dev, "gc", model, X=X, y=y, dataset_id="gc", fit=True)
        # The gates of a small policy on the applicants themselves: a benchmark needs a
        # deployable version, not a validation.
        validate(
            reg, val, "gc", v.version, BENCH_POLICY, {"holdout": datasets.load_german_credit()}
        )
        reg.transition(dev, "gc", v.version, "validation")
        reg.record_validation(val, "gc", v.version, outcome="pass", summary="ok")
        reg.transition(app, "gc", v.version, "approved")
        reg.set_alias(app, "gc", v.version, alias)
    token = reg.identity.issue_token(admin, "los")
    row = {k: (v.item() if hasattr(v, "item") else v) for k, v in X.iloc[0].to_dict().items()}
    db.dispose()
    return token, row


def count_decisions(home: Path) -> int:
    from charter.config import Settings
    from charter.storage.db import Database
    from charter.storage.schema import decisions

    db = Database(Settings.for_home(home).database_url)
    with db.read() as conn:
        n = int(conn.execute(select(func.count()).select_from(decisions)).scalar())
    db.dispose()
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description="Charter serving benchmark")
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    wrk = ensure_wrk()
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "charter"
        token, row = setup_store(home)
        template = (
            json.dumps({"request_id": "RID", "entity_key": "KEY", "features": row})
            .replace("%", "%%")
            .replace('"RID"', '"%s"')
            .replace('"KEY"', '"%s"')
        )
        script = Path(tmp) / "score.lua"
        script.write_text(
            f"BODY_TEMPLATE = [[{template}]]\nPATH = '/v1/models/gc/score'\n"
            f"TOKEN = '{token}'\n" + LUA.replace("%%", "%")
        )
        for workers in (1, 2):
            port = free_port()
            proc = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "floor_app:app", "--port", str(port),
                 "--workers", str(workers), "--log-level", "warning", "--app-dir", str(BENCH)],
                env=env,
            )  # fmt: skip
            try:
                wait_http(f"http://127.0.0.1:{port}/")
                results[f"floor ({workers} worker{'s' if workers > 1 else ''})"] = run_wrk(
                    wrk, f"http://127.0.0.1:{port}/", args.duration, args.connections, None
                )
            finally:
                proc.terminate()
                proc.wait()
        # The issue's plain stack: FastAPI + pydantic + predict_proba, 2 workers, nothing logged;
        # and its lean stand-in (predict_proba on a numpy row).
        for label, target in PLAIN_STACKS.items():
            port = free_port()
            proc = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", target, "--port", str(port),
                 "--workers", "2", "--log-level", "warning", "--app-dir", str(BENCH)],
                env=env,
            )  # fmt: skip
            try:
                wait_http(f"http://127.0.0.1:{port}/openapi.json")
                results[label] = run_wrk(
                    wrk, f"http://127.0.0.1:{port}/v1/models/gc/score", args.duration,
                    args.connections, str(script),
                )  # fmt: skip
            finally:
                proc.terminate()
                proc.wait()
        port = free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "charter.cli", "serve", "--port", str(port),
             "--workers", str(args.workers)],
            env=dict(env, CHARTER_HOME=str(home)), stdout=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            wait_http(f"http://127.0.0.1:{port}/readyz", all_workers_serving)
            before = count_decisions(home)
            res = run_wrk(wrk, f"http://127.0.0.1:{port}/v1/models/gc/score", args.duration,
                          args.connections, str(script))  # fmt: skip
            time.sleep(1.0)  # let the last group commits land before counting
            res["logged"] = count_decisions(home) - before
            results[f"charter ({args.workers} workers, everything on)"] = res
        finally:
            proc.terminate()
            proc.wait()
    costs = predict_costs(row)
    floor = results["floor (2 workers)"]
    print(f"wrk, {args.connections} connections, {args.duration} s each, this machine "
          f"({os.cpu_count()} cores)")  # fmt: skip
    print(f"{'stack':42s} {'req/s':>9s} {'p50 ms':>8s} {'p99 ms':>8s} {'vs floor':>9s}")
    for name, r in results.items():
        print(f"{name:42s} {r['rps']:9.0f} {r['p50']:8.2f} {r['p99']:8.2f} "
              f"{r['rps'] / floor['rps']:8.2f}x")  # fmt: skip
    ch = results[f"charter ({args.workers} workers, everything on)"]
    ok = ch["requests"] - ch["non2xx"]
    in_flight = ch["logged"] - ok
    print(
        f"charter: {ch['requests']:.0f} responses, {ch['non2xx']:.0f} non-2xx, "
        f"{ch['socket_errors']:.0f} socket errors; decision-log rows {ch['logged']:.0f}"
    )
    print(f"  rows - 200 responses = {in_flight:.0f}: requests still in flight when wrk stopped "
          f"counting (at most one per connection, {args.connections}); every 200 is logged: "
          f"{0 <= in_flight <= args.connections}")  # fmt: skip
    print(
        f"goal: >= 5,000 req/s and p99 < 20 ms: "
        f"{'met' if ch['rps'] >= 5000 and ch['p99'] < 20 else 'NOT met'}"
    )
    # The goal's 5,000 is 2.5 times the issue's plain stack, measured at a floor of 24,200:
    # 2.5 x 2,040 / 24,200 of the floor. That share of the floor measured in this run is the
    # goal on this machine's speed of the moment.
    share = ch["rps"] / floor["rps"]
    print(
        f"goal against the floor (2.5 x the issue's plain stack = 2.5 x 2,040 / 24,200 = "
        f"{GOAL_SHARE:.3f}x): {share:.3f}x: {'met' if share >= GOAL_SHARE else 'NOT met'}"
    )
    print(f"predict_proba on one row, in this process: on a DataFrame {costs['frame']:.0f} µs, "
          f"on a numpy row {costs['lean']:.0f} µs (the issue: about 440 µs)")  # fmt: skip
    for label, r in ((label, results[label]) for label in PLAIN_STACKS):
        print(
            f"{label.strip()}: {r['rps'] / floor['rps']:.3f}x the floor (the issue's plain "
            f"stack: 0.084x); Charter answers {ch['rps'] / r['rps']:.2f}x its requests per "
            f"second; its non-2xx: {r['non2xx']:.0f}"
        )


def predict_costs(row: dict[str, object]) -> dict[str, float]:
    """Microseconds per ``predict_proba`` on ``row``, as each plain stack calls it."""
    sys.path.insert(0, str(BENCH))
    import fastapi_app

    costs = {}
    for name, fn in (("frame", fastapi_app.frame_score), ("lean", fastapi_app.lean_score)):
        fn(row)
        t = time.perf_counter()
        for _ in range(200):
            fn(row)
        costs[name] = (time.perf_counter() - t) / 200 * 1e6
    return costs


if __name__ == "__main__":
    main()
