"""Waivers and accepted baselines: which deviations a team has already accepted."""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .model import Result, Status, Waiver
from .safeyaml import InputError, read_text


#: Largest JSON report read (agent transcripts make reports far larger than matrices).
REPORT_MAX_BYTES = 64 * 1024 * 1024


class BaselineError(Exception):
    """An accepted-baseline file cannot be used (bad input)."""


def apply_waivers(results: Iterable[Result], waivers: Iterable[Waiver], target: str,
                  today: dt.date | None = None) -> list[Result]:
    """Mark fails and inconclusives covered by an active waiver; say so when one expired."""
    today = today or dt.date.today()
    by_id: dict[str, list[Waiver]] = {}
    for w in waivers:
        if w.target in (None, target):
            by_id.setdefault(w.id, []).append(w)
    out = []
    for r in results:
        ws = by_id.get(r.id, [])
        if not ws or r.status not in (Status.FAIL, Status.INCONCLUSIVE):
            out.append(r)
            continue
        active = [w for w in ws if dt.date.fromisoformat(w.expires) >= today]
        if active:
            w = active[0]
            out.append(dataclasses.replace(r, waived=f"waived until {w.expires}: {w.reason}"))
        else:
            w = max(ws, key=lambda w: w.expires)
            out.append(dataclasses.replace(
                r, reason=f"{r.reason} [waiver expired on {w.expires}, no longer waived: {w.reason}]"))
    return out


def load_baseline(path: str | Path) -> dict[str, Mapping[str, Any]]:
    """Results of an accepted JSON report, by check id."""
    return load_accepted(path)[1]


def load_accepted(path: str | Path) -> tuple[str | None, dict[str, Mapping[str, Any]]]:
    """The target name of an accepted JSON report (None when it names none), and its results by check id."""
    try:
        data = json.loads(read_text(path, "JSON report", limit=REPORT_MAX_BYTES))
    except InputError as exc:
        raise BaselineError(str(exc)) from None
    except RecursionError:
        raise BaselineError(f"{path}: not a JSON report: nested too deeply") from None
    except ValueError as exc:
        raise BaselineError(f"{path}: not a JSON report: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("results"), list):
        raise BaselineError(f"{path}: not a sandboxcheck JSON report (no 'results')")
    if data.get("schema_version") != 1:
        raise BaselineError(f"{path}: unsupported schema_version {data.get('schema_version')!r}")
    target = data.get("target")
    name = target.get("name") if isinstance(target, dict) else None
    return (name if isinstance(name, str) else None,
            {r["id"]: r for r in data["results"] if isinstance(r, dict) and "id" in r})


def apply_baseline(results: Iterable[Result], accepted: Mapping[str, Mapping[str, Any]]) -> list[Result]:
    """Mark deviations that the accepted report already had (same status and observation)."""
    out = []
    for r in results:
        prior = accepted.get(r.id)
        same = (prior is not None and prior.get("status") == r.status.value
                and prior.get("observed") == r.observed.value)
        out.append(dataclasses.replace(r, accepted=True) if same and r.status in
                   (Status.FAIL, Status.INCONCLUSIVE) else r)
    return out
