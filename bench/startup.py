"""Start-up time of the command line: how long ``sandboxcheck --help`` and ``--version`` take.

Prints, for each command, the median wall time of ``--runs`` runs (default 10),
next to the floor of this machine (``python -c pass``: an interpreter that
imports nothing), and the modules that cost the most to import when the CLI
starts (``python -X importtime``, cumulative microseconds). The goal: under
0.1 s for ``--help`` and ``--version``.

Usage: python3 bench/startup.py [--runs N] [--top N]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path


def command() -> list[str]:
    """The installed console script beside this interpreter, else ``python -m sandboxcheck``."""
    script = Path(sys.executable).parent / "sandboxcheck"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "sandboxcheck"]


def median_wall(argv: list[str], runs: int) -> float:
    """Median wall time of ``runs`` runs of ``argv``, in seconds (output discarded)."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def import_costs(top: int) -> list[tuple[int, str]]:
    """The ``top`` costliest imports (cumulative microseconds, module) when ``--help`` runs."""
    env = {**os.environ, "SANDBOXCHECK_NO_REEXEC": "1"}
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "sandboxcheck", "--help"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env, check=True)
    rows = []
    for line in proc.stderr.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            rows.append((int(parts[1]), parts[2].strip()))
    return sorted(rows, reverse=True)[:top]


def main() -> None:
    """Print the medians and the costliest imports."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--top", type=int, default=8)
    args = parser.parse_args()
    cmd = command()
    floor = median_wall([sys.executable, "-c", "pass"], args.runs)
    print(f"median of {args.runs} runs, {' '.join(cmd)}")
    print(f"  python -c pass          {floor * 1000:7.1f} ms  (this machine's floor)")
    for extra in (["--help"], ["--version"]):
        wall = median_wall(cmd + extra, args.runs)
        print(f"  sandboxcheck {extra[0]:<10} {wall * 1000:7.1f} ms  ({(wall - floor) * 1000:+.1f} ms over the floor)")
    print("costliest imports of 'sandboxcheck --help' (cumulative):")
    for micros, name in import_costs(args.top):
        print(f"  {micros / 1000:7.1f} ms  {name}")


if __name__ == "__main__":
    main()
