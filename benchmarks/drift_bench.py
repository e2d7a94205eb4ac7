"""Drift detection at scale: Charter against the straightforward numpy + scipy version.

One reference and one current set of N rows x 25 features (20 numeric of five distribution
families, 5 categoricals with 10-30 levels; 7 planted drifts, see
``charter.datasets.PLANTED_DRIFTS``), all features tested, measured in this run:

* the straightforward version: quantile PSI (10 bins), ``scipy.stats.ks_2samp`` and
  ``scipy.stats.chi2_contingency``, flagging PSI >= 0.10 (three statistics, not five);
* Charter: PSI, KS, chi-square, Wasserstein and Jensen-Shannon (and KL) on every feature, with
  the default policy (significance after Bonferroni and an effect-size band). Reported as the
  check against a stored reference profile (what monitoring runs every window) and as profile
  plus check (what a one-off comparison costs);
* the floor: one numpy pass (``sum``) over the numeric data.

Then the stream: ``--stream-rows`` rows (default 100,000,000) fed in chunks through the
accumulators in a fresh process, with its peak memory and rows per second.

    python benchmarks/drift_bench.py                 # 100k and 1M rows, then the 100M stream
    python benchmarks/drift_bench.py --stream-rows 0 # skip the stream
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps

from charter.datasets import PLANTED_DRIFTS, drift_benchmark_frame
from charter.stats.compare import compare
from charter.stats.sketches import ReferenceProfile, build_profile

PLANTED = sorted(d.column for d in PLANTED_DRIFTS)


def straightforward(ref: pd.DataFrame, cur: pd.DataFrame) -> list[str]:
    """What a team writes first: quantile PSI, ks_2samp and a chi-square per feature."""
    flagged = []
    for col in ref.columns:
        r, c = ref[col], cur[col]
        if pd.api.types.is_numeric_dtype(r) and not isinstance(r.dtype, pd.CategoricalDtype):
            rv, cv = r.to_numpy(), c.to_numpy()
            edges = np.quantile(rv, np.linspace(0, 1, 11)[1:-1])
            e = np.bincount(np.searchsorted(edges, rv, "right"), minlength=10) / rv.size
            a = np.bincount(np.searchsorted(edges, cv, "right"), minlength=10) / cv.size
            e, a = np.maximum(e, 1e-4), np.maximum(a, 1e-4)
            psi = float(np.sum((a - e) * np.log(a / e)))
            sps.ks_2samp(rv, cv)
        else:
            table = pd.concat(
                [r.value_counts(), c.value_counts()], axis=1, keys=["ref", "cur"]
            ).fillna(0)
            sps.chi2_contingency(table.to_numpy().T)
            e = (table["ref"] / table["ref"].sum()).clip(lower=1e-4).to_numpy()
            a = (table["cur"] / table["cur"].sum()).clip(lower=1e-4).to_numpy()
            psi = float(np.sum((a - e) * np.log(a / e)))
        if psi >= 0.10:
            flagged.append(str(col))
    return sorted(flagged)


def timed(fn: Callable[[], Any], repeat: int = 3) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def peak_mib(fn: Callable[[], Any]) -> float:
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def run_size(n: int) -> None:
    print(f"\n== {n:,} rows x 25 features (reference and current)")
    ref = drift_benchmark_frame(n, seed=1, drifted=False)
    cur = drift_benchmark_frame(n, seed=2, drifted=True)
    numeric = np.ascontiguousarray(ref.select_dtypes("number").to_numpy())

    t_floor, _ = timed(lambda: numeric.sum(axis=0), 5)
    t_base, base_flags = timed(lambda: straightforward(ref, cur), 1)
    t_prof, profile = timed(lambda: build_profile(ref))
    t_check, report = timed(lambda: compare(profile, profile.accumulator().update(cur)))
    mem = peak_mib(lambda: compare(profile, profile.accumulator().update(cur)))
    mem_total = peak_mib(lambda: compare(build_profile(ref), build_profile(ref).accumulator()))
    flags = sorted(f.feature for f in report.flagged)

    print(f"  one numpy pass (sum over the numeric data)  {t_floor * 1000:9.1f} ms")
    print(f"  straightforward numpy + scipy (3 stats)     {t_base * 1000:9.1f} ms")
    print(f"  charter check against a stored profile      {t_check * 1000:9.1f} ms")
    print(f"  charter reference profile (once per model)  {t_prof * 1000:9.1f} ms")
    print(f"  charter profile + check                     {(t_prof + t_check) * 1000:9.1f} ms")
    print(
        f"  ratios: straightforward / charter check = {t_base / t_check:.1f}x "
        f"(profile + check: {t_base / (t_prof + t_check):.1f}x; goal >= 10x); "
        f"charter check / numpy pass = {t_check / t_floor:.1f}x (goal <= 20x)"
    )
    print(
        f"  peak memory allocated by charter: check {mem:.1f} MiB, profile {mem_total:.1f} MiB "
        f"(the two data sets themselves: {(ref.memory_usage().sum() * 2) / 2**20:.0f} MiB)"
    )
    print(f"  planted:               {PLANTED}")
    print(f"  charter flagged:       {flags}  exact match: {flags == PLANTED}")
    print(f"  straightforward flags: {base_flags}  ({len(base_flags)} of 7)")
    tiers = {f.feature: f.tier for f in report.flagged}
    print(f"  tiers: {tiers}")


def peak_rss_mib() -> float:
    """Peak resident memory of this process image (VmHWM; ru_maxrss survives exec on Linux
    and would report the parent's peak)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def stream(rows: int, chunk: int, profile_path: str) -> None:
    """Runs in its own process so that its peak memory is its own. The reference profile comes
    from JSON, as in production, where it is stored next to the model version."""
    with open(profile_path) as fh:
        profile = ReferenceProfile.from_json(fh.read())
    acc = profile.accumulator()
    fed = 0
    spent = 0.0
    i = 0
    while fed < rows:
        n = min(chunk, rows - fed)
        data = drift_benchmark_frame(n, seed=1000 + i, drifted=True)
        t = time.perf_counter()
        acc.update(data)
        spent += time.perf_counter() - t
        fed += n
        i += 1
        del data
    t = time.perf_counter()
    report = compare(profile, acc)
    spent += time.perf_counter() - t
    peak = peak_rss_mib()
    flags = sorted(f.feature for f in report.flagged)
    print(f"  streamed {fed:,} rows x 25 features in chunks of {chunk:,}")
    print(f"  charter time {spent:.1f} s ({fed / spent / 1e6:.1f} million rows/s, generation "
          f"of the synthetic chunks not counted)")  # fmt: skip
    print(f"  peak resident memory of the process {peak:.0f} MiB (goal < 500 MiB)")
    print(f"  flagged: {flags}  exact match: {flags == PLANTED}")


def main() -> None:
    ap = argparse.ArgumentParser(description="Charter drift benchmark")
    ap.add_argument("--sizes", default="100000,1000000")
    ap.add_argument("--stream-rows", type=int, default=100_000_000)
    ap.add_argument("--chunk", type=int, default=250_000)
    ap.add_argument("--stream-only", metavar="PROFILE_JSON", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.stream_only:
        stream(args.stream_rows, args.chunk, args.stream_only)
        return
    print(f"numpy {np.__version__}, {os.cpu_count()} cores")
    for n in (int(x) for x in args.sizes.split(",") if x):
        run_size(n)
    if args.stream_rows:
        print(f"\n== stream of {args.stream_rows:,} rows")
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "profile.json")
            ref = drift_benchmark_frame(1_000_000, seed=1, drifted=False)
            with open(path, "w") as fh:
                fh.write(build_profile(ref).to_json())
            del ref
            subprocess.run(
                [sys.executable, __file__, "--stream-only", path,
                 "--stream-rows", str(args.stream_rows), "--chunk", str(args.chunk)],
                check=True,
            )  # fmt: skip


if __name__ == "__main__":
    main()
