"""Cost of sharding: a survey of the baseline matrix whole, and in N shards run side by side then merged.

Each variant runs as real ``sandboxcheck`` processes; wall time is measured
around the variant. CPU time is that of every process the variant started,
counted by a cgroup (v1 ``cpuacct``) this script makes and joins, so that
processes no ``wait`` reaps (an agent's helpers, a daemon a sandbox leaves)
count too; without such a cgroup, the user + system time of the reaped
children (``RUSAGE_CHILDREN``). Either way the shards' own set-up (interpreter,
preflight, launch server, seeded roots) counts. The goal: the sharded total
CPU (shards + merge) within 1.1x of the whole survey's. The merged cells
are compared with the whole survey's too (a difference is printed).

With ``--apart`` the shards run one after another, each with the whole
machine, as N hosts of a fleet would run them; the fleet's wall time is then
the slowest shard's plus the merge's.

Usage: python3 bench/shard.py [--shards N] [--rounds R] [--shard-jobs J] [--apart] [--all | --target PRESET ...]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sandboxcheck.targets.registry import load_target

DEFAULT_TARGETS = ("landlock", "bwrap-strict", "firejail")


_CGROUP_ROOT = Path("/sys/fs/cgroup/cpuacct")
_cgroup: Path | None = None


def _join_cgroup() -> Path | None:
    """A cpuacct cgroup of this script's own, joined (None where none can be made)."""
    if not (_CGROUP_ROOT / "cpuacct.usage").exists():
        return None
    path = _CGROUP_ROOT / f"sandboxcheck-bench-{os.getpid()}"
    try:
        path.mkdir()
        (path / "cgroup.procs").write_text(str(os.getpid()))
    except OSError:
        return None
    return path


def _leave_cgroup(path: Path) -> None:
    try:
        (path.parent / "cgroup.procs").write_text(str(os.getpid()))
        path.rmdir()
    except OSError as exc:
        print(f"note: cgroup {path} not removed: {exc}", file=sys.stderr)


def _cpu() -> float:
    if _cgroup is not None:
        return int((_cgroup / "cpuacct.usage").read_text()) / 1e9
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _sandboxcheck(*args: str) -> list[str]:
    return [sys.executable, "-m", "sandboxcheck", *args]


def measure(commands: list[list[list[str]]], cwd: str) -> tuple[float, float]:
    """(wall, CPU) of running each group of commands side by side, one group after another.

    With more than one group the wall time is the slowest group's (groups
    stand for hosts running at the same time)."""
    cpu0, walls = _cpu(), []
    for group in commands:
        t0 = time.monotonic()
        procs = [subprocess.Popen(c, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for c in group]
        for p in procs:
            p.wait()
        walls.append(time.monotonic() - t0)
    return max(walls), _cpu() - cpu0


def cells(path: Path) -> dict[tuple[str, str], tuple[str, str]]:
    """(check, target) -> (status, observed) of a survey or of a merged fleet view."""
    data = json.loads(path.read_text())
    return {(c["id"], t.rpartition("@")[0] if "@" in t else t): (v["status"], v["observed"])
            for c in data["checks"] for t, v in c["cells"].items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shards", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--target", action="append", dest="targets")
    ap.add_argument("--all", action="store_true", help="every preset available here")
    ap.add_argument("--apart", action="store_true", help="run the shards one after another, each with the "
                    "whole machine, as separate hosts would (wall time: the slowest shard's)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="--jobs of the whole survey (and of "
                    "each shard unless --shard-jobs)")
    ap.add_argument("--shard-jobs", type=int, default=None,
                    help="--jobs of each shard (default --jobs; --jobs divided by --shards runs the shards "
                         "side by side with as many checks at once as the whole survey, as on one machine)")
    args = ap.parse_args()
    if args.all:
        from sandboxcheck.targets.registry import preset_names
        args.targets = list(preset_names())
    targets = [t for t in (args.targets or DEFAULT_TARGETS) if not load_target(t).unavailable()]
    refs = [x for t in targets for x in ("-t", t)]
    global _cgroup
    _cgroup = _join_cgroup()
    try:
        with tempfile.TemporaryDirectory(prefix="sandboxcheck-bench-shard-") as work:
            return _bench(args, refs, targets, work)
    finally:
        if _cgroup is not None:
            _leave_cgroup(_cgroup)


def _bench(args: argparse.Namespace, refs: list[str], targets: list[str], work: str) -> int:
    """Run the rounds in ``work`` and print the figures; 0 when the goal is met and the cells agree."""
    whole = _sandboxcheck("survey", "baseline", *refs, "-j", str(args.jobs), "-f", "json", "-o", "whole.json")
    shard_jobs = args.shard_jobs or args.jobs
    parts = [_sandboxcheck("survey", "baseline", *refs, "-j", str(shard_jobs), "--shard", f"{k}/{args.shards}",
                           "-f", "json", "-o", f"part{k}.json") for k in range(1, args.shards + 1)]
    merge = _sandboxcheck("merge", *(f"part{k}.json" for k in range(1, args.shards + 1)),
                          "-f", "json", "-o", "merged.json")
    rows: dict[str, list[tuple[float, float]]] = {"whole": [], "sharded": [], "merge": []}
    for _ in range(args.rounds):  # alternate, so machine noise hits both alike
        rows["whole"].append(measure([[whole]], work))
        rows["sharded"].append(measure([[p] for p in parts] if args.apart else [parts], work))
        rows["merge"].append(measure([[merge]], work))
    med = {k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v)) for k, v in rows.items()}
    total_wall = med["sharded"][0] + med["merge"][0]
    total_cpu = med["sharded"][1] + med["merge"][1]
    print(f"survey of baseline against {len(targets)} targets: {', '.join(targets)} (median of {args.rounds} rounds, --jobs {args.jobs}, "
          f"each shard --jobs {shard_jobs}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f} at the end; "
          f"CPU counted by {'a cpuacct cgroup' if _cgroup else 'RUSAGE_CHILDREN (no cgroup)'})")
    print(f"  whole:                wall {med['whole'][0]:6.2f}s  CPU {med['whole'][1]:6.2f}s")
    how = "apart (slowest)" if args.apart else "side by side"
    print(f"  {args.shards} shards {how}: wall {med['sharded'][0]:6.2f}s  CPU {med['sharded'][1]:6.2f}s")
    print(f"  merge:                wall {med['merge'][0]:6.2f}s  CPU {med['merge'][1]:6.2f}s")
    ratio = total_cpu / med["whole"][1]
    print(f"  sharded + merge:      wall {total_wall:6.2f}s  CPU {total_cpu:6.2f}s  "
          f"= {ratio:.2f}x the whole survey's CPU (goal <= 1.10x)")
    print("  CPU per round (whole / sharded + merge): " + ", ".join(
        f"{w[1]:.2f} / {s[1] + m[1]:.2f} = {(s[1] + m[1]) / w[1]:.2f}x"
        for w, s, m in zip(rows["whole"], rows["sharded"], rows["merge"])))
    a, b = cells(Path(work, "whole.json")), cells(Path(work, "merged.json"))
    differ = sorted(k for k in a if a[k] != b.get(k))
    print(f"  merged cells equal to the whole survey's: {not differ and len(a) == len(b)} "
          f"({len(a)} cells{', differ: ' + ', '.join(map(str, differ)) if differ else ''})")
    return 0 if ratio <= 1.10 and not differ else 1


if __name__ == "__main__":
    sys.exit(main())
