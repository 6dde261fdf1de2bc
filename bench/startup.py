"""Start-up time of the command line: how long ``sandboxcheck --help`` and ``--version`` take.

Prints, for each command, the median wall time of ``--runs`` runs (default 10)
and the median CPU time (user + system: steadier than wall time on a busy
machine), next to the floor of this machine (``python -c pass``: an interpreter that
imports nothing), and the modules that cost the most to import when the CLI
starts (``python -X importtime``, cumulative microseconds). The goal: under
0.1 s for ``--help`` and ``--version``.

The commands run as an installed package runs: with bytecode caches (an
install compiles them; ``PYTHONDONTWRITEBYTECODE`` is dropped for the
children, and one warm-up run writes them), so what is measured is import
work, not compiling the source on every start.

Usage: python3 bench/startup.py [--runs N] [--top N]
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path


def command() -> list[str]:
    """The installed console script beside this interpreter, else ``python -m sandboxcheck``."""
    script = Path(sys.executable).parent / "sandboxcheck"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "sandboxcheck"]


#: The children's environment: bytecode caches written and used, as after an install.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def median_times(argv: list[str], runs: int) -> tuple[float, float]:
    """Median wall and CPU time of ``runs`` runs of ``argv``, in seconds (output discarded)."""
    wall, cpu = [], []
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV, check=True)  # warm-up
    for _ in range(runs):
        start, start_cpu = time.perf_counter(), _children_cpu()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV, check=True)
        wall.append(time.perf_counter() - start)
        cpu.append(_children_cpu() - start_cpu)
    return statistics.median(wall), statistics.median(cpu)


def import_costs(top: int) -> list[tuple[int, str]]:
    """The ``top`` costliest imports (cumulative microseconds, module) when ``--help`` runs."""
    env = {**ENV, "SANDBOXCHECK_NO_REEXEC": "1"}
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
    floor, floor_cpu = median_times([sys.executable, "-c", "pass"], args.runs)
    print(f"median of {args.runs} runs, {' '.join(cmd)}; load average {os.getloadavg()[0]:.1f}")
    print(f"  {'':23} {'wall':>9}  {'cpu':>9}")
    print(f"  {'python -c pass':23} {floor * 1000:6.1f} ms  {floor_cpu * 1000:6.1f} ms  (this machine's floor)")
    for extra in ("--help", "--version"):
        wall, cpu = median_times(cmd + [extra], args.runs)
        print(f"  {'sandboxcheck ' + extra:23} {wall * 1000:6.1f} ms  {cpu * 1000:6.1f} ms  "
              f"({(wall - floor) * 1000:+.1f} ms wall over the floor)")
    print("costliest imports of 'sandboxcheck --help' (cumulative):")
    for micros, name in import_costs(args.top):
        print(f"  {micros / 1000:7.1f} ms  {name}")


if __name__ == "__main__":
    main()
