"""Run a matrix through one or more targets: the scheduler and its options."""
from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import datetime as dt
import time
from collections.abc import Sequence
from typing import Any

from ..hostfacts import host_facts
from ..model import Check, Execution, Matrix, Result
from ..model import RunReport
from ..policy import apply_waivers
from ..targets.base import Target
from ..targets.registry import load_target
from ..evidence.verdict import judge
from .harness import Harness
from .launch import _server_python
from .options import Progress
from .options import RunOptions






def run_matrix(matrix: Matrix, target: Target, options: RunOptions | None = None,
               progress: Progress | None = None, harness: Harness | None = None) -> RunReport:
    """Run every check of ``matrix`` against ``target`` (and its control), in parallel."""
    return run_targets(matrix, [target], options, progress, harness)[0]


def run_targets(matrix: Matrix, targets: Sequence[Target], options: RunOptions | None = None,
                progress: Progress | None = None, harness: Harness | None = None) -> list[RunReport]:
    """Run ``matrix`` against several targets, interleaved check by check.

    Each check runs against every target in turn, so machine noise hits all
    alike; its unsandboxed control runs once and serves every target.
    """
    options = options or RunOptions()
    progress = progress or Progress()
    control_target = load_target("none")
    unavailable = {t.name: t.unavailable() for t in targets}
    started = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    t0 = time.monotonic()
    own = harness is None
    h = harness or Harness(options)
    results: list[dict[str, Result]] = [{} for _ in targets]
    first_argv: list[list[str]] = [[] for _ in targets]
    preflights: list[dict[str, Any] | None] = [None for _ in targets]
    if any(not why for why in unavailable.values()):
        # Started now, they get ready side by side: the roots are seeded by a thread of
        # their own while the launch server's interpreter starts.
        h.roots  # noqa: B018 - the property starts the seeding
        h.forkserver(_server_python())
    if options.preflight:
        from .preflight import run_preflight

        for i, target in enumerate(targets):
            if not unavailable[target.name]:
                try:
                    preflights[i] = run_preflight(h, target).to_dict()
                except KeyboardInterrupt:
                    if own:
                        h.close()
                    raise
                except Exception as exc:  # noqa: BLE001 - a preflight never stops the checks
                    preflights[i] = {"ran": False, "isolated": False, "layers": [],
                                     "reason": f"{type(exc).__name__}: {exc}"}
    progress.start(len(matrix.checks) * len(targets))

    def one(check: Check) -> list[Result]:
        out: list[Result] = []
        control: Execution | None = None
        for i, target in enumerate(targets):
            why = unavailable[target.name]
            na = None if why or check.skip else target.supports(check)
            if check.skip or why or na:
                out.append(judge(check, None, None, why, not_applicable=na))
                continue
            ex = h.execute(check, target)
            if not first_argv[i]:
                first_argv[i] = list(ex.argv)  # one assignment: workers race here
            this_control = None
            if check.control:
                if target.name == "none":
                    this_control = ex
                elif options.control:
                    if control is None:
                        control = h.execute(check, control_target, control=True)
                    this_control = control
            result = judge(check, ex, this_control)
            out.append(result if ex.transcript is None else dataclasses.replace(result, transcript=ex.transcript))
        return out

    try:
        with cf.ThreadPoolExecutor(max_workers=max(1, options.jobs)) as pool:
            futures = [pool.submit(one, c) for c in matrix.checks]
            try:
                for fut in cf.as_completed(futures):
                    for i, res in enumerate(fut.result()):
                        results[i][res.id] = res
                        progress.advance(res)
            except BaseException:
                # Stop everything, then let the workers finish (their processes are
                # dead, new executions refuse) before the folders are removed.
                for f in futures:
                    f.cancel()
                h.abort()
                pool.shutdown(wait=True, cancel_futures=True)
                h.close()
                raise
    finally:
        progress.finish()
        if own:
            h.close()
    duration = time.monotonic() - t0
    reports = []
    for i, target in enumerate(targets):
        ordered = apply_waivers([results[i][c.id] for c in matrix.checks], matrix.waivers, target.name)
        desc = target.describe()
        desc["unavailable"] = unavailable[target.name]
        if first_argv[i]:
            desc["expanded_command"] = first_argv[i]
        reports.append(RunReport(matrix=matrix, target=desc, started=started, duration_s=duration,
                                 results=ordered, kept=list(h.kept), preflight=preflights[i],
                                 leftovers=list(h.leftovers), removed_stale=list(h.removed_stale),
                                 host=host_facts([target])))
    return reports
