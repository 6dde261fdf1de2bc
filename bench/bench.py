"""Speed and memory of a baseline run against bwrap-strict, compared with a floor.

The floor is the same number of bare bwrap-strict launches around
``python3 -c pass`` as the run makes (one per check plus one per control run),
with the same parallelism. The per-check floor (one launch per check) is
printed too. The goal: the whole baseline
run, controls included, within 1.5x of the floor with --jobs equal to the
core count, and the harness under 100 MB peak memory.

Usage: python3 bench/bench.py [--jobs N] [--rounds R]
"""
from __future__ import annotations

import argparse
import concurrent.futures as cf
import os
import resource
import statistics
import subprocess
import tempfile
import time

from sandboxcheck.matrix.load import load_matrix
from sandboxcheck.resources import resolve_matrix
from sandboxcheck.run.harness import Harness
from sandboxcheck.run.options import RunOptions
from sandboxcheck.run.schedule import run_matrix
from sandboxcheck.targets.registry import load_target


def floor(n: int, jobs: int) -> float:
    """Wall time of n bare bwrap-strict launches of python3 -c pass, jobs at a time."""
    target = load_target("bwrap-strict")
    root = tempfile.mkdtemp(prefix="sandboxcheck-bench-")
    for d in ("workspace/.git", "workspace/.claude", "workspace/.codex", "probes"):
        os.makedirs(os.path.join(root, d))
    values = {"workspace": f"{root}/workspace", "home": f"{root}/home", "root": root,
              "probes": f"{root}/probes", "run": f"{root}/run", "outside": f"{root}/outside"}
    argv = target.argv(values, ["/usr/bin/python3", "-c", "pass"])
    env = {"PATH": "/usr/bin:/bin"}

    def once(_: int) -> None:
        subprocess.run(argv, env=env, cwd=values["workspace"], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    try:
        t0 = time.monotonic()
        with cf.ThreadPoolExecutor(jobs) as pool:
            list(pool.map(once, range(n)))
        return time.monotonic() - t0
    finally:
        subprocess.run(["rm", "-rf", root], check=False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    matrix = load_matrix(resolve_matrix("baseline"))
    target = load_target("bwrap-strict")
    n = len(matrix.checks)
    launches = n + sum(1 for c in matrix.checks if c.control and not c.skip)
    runs, floors, check_floors, ratios = [], [], [], []
    # Floors are measured right before and after each run and the ratio taken
    # per round: this machine's namespace creation cost drifts over minutes.
    for _ in range(args.rounds):
        before = floor(launches, args.jobs)
        # Timed like `sandboxcheck run`: the harness's start and its clean-up included.
        t0 = time.monotonic()
        with Harness(RunOptions(jobs=args.jobs)) as h:
            report = run_matrix(matrix, target, RunOptions(jobs=args.jobs), harness=h)
        runs.append(time.monotonic() - t0)
        assert report.exit_code() == 0, report.summary()
        after = floor(launches, args.jobs)
        floors.append((before + after) / 2)
        ratios.append(runs[-1] / floors[-1])
        check_floors.append(floor(n, args.jobs))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    run_s, floor_s = statistics.median(runs), statistics.median(floors)
    check_floor_s = statistics.median(check_floors)
    print(f"checks: {n}, launches: {launches} (checks plus control runs), jobs: {args.jobs}, "
          f"rounds: {args.rounds}")
    print(f"baseline run against bwrap-strict: {run_s:.3f}s (median; all: {', '.join(f'{r:.3f}' for r in runs)})")
    print(f"floor, {launches} bare bwrap-strict launches of python3 -c pass: {floor_s:.3f}s")
    print(f"ratio: {statistics.median(ratios):.2f}x (median of per-round ratios: "
          f"{', '.join(f'{r:.2f}' for r in ratios)}; goal <= 1.5x)")
    print(f"per-check floor, {n} launches: {check_floor_s:.3f}s, ratio {run_s / check_floor_s:.2f}x")
    print(f"harness peak memory (max RSS): {peak_mb:.1f} MB (goal < 100 MB)")


if __name__ == "__main__":
    main()
