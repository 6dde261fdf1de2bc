"""Sandbox policy as Python tests, with the ``sandboxcheck`` fixture.

``python3 -m pytest examples/`` runs these and the suite file next to them
(``sandbox-policy.sandboxcheck.yaml``). The fixture runs matrices or single
checks through a target, shares one harness for the whole session and skips
a test whose target is not installed here.
"""
from __future__ import annotations

from sandboxcheck.model import Observed, Status
from sandboxcheck.pytest_plugin import Sandboxcheck


def test_outside_files_stay_hidden(sandboxcheck: Sandboxcheck) -> None:
    """One check of the bundled baseline matrix, by its stable id."""
    result = sandboxcheck.check("fs.read.absolute", target="bwrap-strict")
    assert result.status is Status.PASS, sandboxcheck.explain(result)


def test_the_harness_sees_an_escape(sandboxcheck: Sandboxcheck) -> None:
    """Without a sandbox the outside canary must cross: the check above can fail."""
    result = sandboxcheck.check("fs.read.absolute", target="none")
    assert result.observed is Observed.ALLOWED, sandboxcheck.explain(result)
    assert result.evidence, "an escape is proven by evidence seen outside"


def test_no_credential_reaches_the_agent(sandboxcheck: Sandboxcheck) -> None:
    """A whole category at once: the report has a result per check."""
    report = sandboxcheck.run("baseline", target="bwrap-strict", only=["credentials"])
    assert report.results, "the baseline has credential checks"
    failed = [sandboxcheck.explain(r) for r in report.results if r.status is not Status.PASS]
    assert not failed, "\n".join(failed)
