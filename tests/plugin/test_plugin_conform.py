"""A suite whose matrix has ``conform: FILE``: the plugin runs srt with the settings the file names, as `run` does."""
from __future__ import annotations

import json

import pytest
from plugin_helpers import run

from sandboxcheck.targets.registry import load_target

#: srt's built-in defaults allow writes nowhere and reads everywhere: both rules
#: below fail unless srt enforces this file.
SETTINGS = {"network": {"allowedDomains": [], "deniedDomains": []},
            "filesystem": {"denyRead": ["~/.ssh"], "allowRead": [], "allowWrite": ["."], "denyWrite": ["~/.bashrc"]}}


@pytest.mark.integration
def test_suite_runs_srt_with_the_settings_its_matrix_names(pytester: pytest.Pytester) -> None:
    why = load_target("srt").unavailable()
    if why:
        pytest.skip(f"srt is not installed here: {why}")
    pytester.path.joinpath("policy.json").write_text(json.dumps(SETTINGS))
    pytester.path.joinpath("mine.yaml").write_text("version: 1\nname: mine\nconform: policy.json\n")
    pytester.path.joinpath("agent.sandboxcheck.yaml").write_text("matrices: [mine.yaml]\ntargets: [srt]\n")
    result = run(pytester, "-v", "-p", "no:randomly")
    ids = [line.split("::")[-1].split(" ")[0] for line in result.outlines if "::" in line and "PASSED" in line]
    assert "conform.deny-read.home-ssh[srt]" in ids and "conform.allow-write.workspace[srt]" in ids, result.outlines
    assert "conform.deny-write.home-bashrc[srt]" in ids, result.outlines
    result.assert_outcomes(passed=len(ids))
