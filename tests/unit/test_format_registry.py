"""One registry of report formats for every command; the exit codes follow one rule."""
from __future__ import annotations

import io
import sys
import types
from importlib import metadata

import pytest
from click.testing import CliRunner

from sandboxcheck.model import status_exit
from sandboxcheck.report import registry
from sandboxcheck.report.registry import KINDS, Format, formats, render


def test_every_kind_has_formats_and_each_renderer_resolves() -> None:
    for kind in KINDS:
        assert formats(kind), kind
        for name in formats(kind):
            assert callable(registry.renderer(kind, name))


def test_the_one_exit_rule() -> None:
    assert status_exit(["pass", "skip"]) == 0
    assert status_exit(["pass", "inconclusive"]) == 3
    assert status_exit(["inconclusive", "fail"]) == 1
    assert status_exit(["n/a"]) == 0 and status_exit(["n/a"], unsure=("n/a",)) == 3


def test_a_format_from_another_package_is_offered_and_rendered(monkeypatch: pytest.MonkeyPatch) -> None:
    # A third-party package registers a run format through the entry point group.
    module = types.ModuleType("sc_third_party_format")

    def render_ids(report, out) -> None:  # noqa: ANN001
        out.write(" ".join(r.id for r in report.results) + "\n")

    module.render_ids = render_ids
    module.IDS = Format("run", "ids", "sc_third_party_format:render_ids")
    monkeypatch.setitem(sys.modules, "sc_third_party_format", module)
    ep = metadata.EntryPoint(name="ids", value="sc_third_party_format:IDS", group="sandboxcheck.formats")
    real = metadata.entry_points

    def entry_points(**kw):  # noqa: ANN001, ANN202
        return [ep] if kw.get("group") == "sandboxcheck.formats" else real(**kw)

    monkeypatch.setattr(metadata, "entry_points", entry_points)
    monkeypatch.setattr(registry, "_formats", None)
    assert formats("run")[-1] == "ids"

    from sandboxcheck.cli import main

    result = CliRunner().invoke(main, ["run", "--help"])
    assert "ids" in result.output
    result = CliRunner().invoke(main, ["run", "baseline", "--target", "none", "--only", "fs.read.absolute",
                                       "--format", "ids", "--no-preflight", "--no-control"])
    # stdout has the format's text; the summary line goes to stderr (mixed in here).
    assert "fs.read.absolute" in result.output.splitlines(), result.output
    assert result.exit_code == 1  # none lets the read through: the exit code is the run's, whatever the format
    monkeypatch.setattr(registry, "_formats", None)


def test_options_a_renderer_does_not_take_are_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = {}

    def fake(result, out, color=None):  # noqa: ANN001, ANN202
        seen["color"] = color

    monkeypatch.setitem(registry._registry(), ("run", "fake-test"), Format("run", "fake-test", "x:y"))
    monkeypatch.setattr(registry, "renderer", lambda kind, name: fake)
    render("run", "fake-test", object(), io.StringIO(), color=False, verbose=True)
    assert seen == {"color": False}
