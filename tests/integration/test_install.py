"""Installation as the README says it: a non-editable install into a virtual environment.

The README's first command runs as written (minus its apt-get step) with the
system python3 in a copy of the project; the installed copy, which has no
checkout of its own, must still find the npm sandboxes under the working
directory's ``.tools/npm``. The CI workflow example installs the same way.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from marks import requires_landlock

pytestmark = [pytest.mark.integration]
PROJECT = Path(__file__).resolve().parents[2]
README = (PROJECT / "README.md").read_text()
#: Debian's and Ubuntu's own interpreter, the one that refuses ``pip install .``.
SYSTEM_PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
GIT_SOURCE = "git+https://github.com/OWNER/sandboxcheck@REF"


def quick_start() -> list[str]:
    """The command lines of the README's quick start block, comments dropped."""
    section = README[README.index("## Quick start"):]
    block = section[section.index("```sh\n") + 6:]
    block = block[:block.index("```")]
    return [ln for ln in block.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]


def clean_env() -> dict[str, str]:
    """A login-like environment: no virtual environment, no PYTHONPATH pointing at a checkout."""
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": os.environ.get("HOME", "/root"),
            "LANG": "C.UTF-8", "TMPDIR": os.environ.get("TMPDIR", "/tmp")}


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """A copy of the project where the README's first command ran; (copy, its run)."""
    copy = tmp_path_factory.mktemp("install") / "sandboxcheck"
    shutil.copytree(PROJECT, copy, ignore=shutil.ignore_patterns(
        ".git", ".venv", ".tools", "__pycache__", "*.egg-info", "build", "dist", "reports"))
    install_line = quick_start()[0]
    steps = [s.strip() for s in install_line.split("&&")]
    # apt-get is the machine's set-up, done once (python3-venv is installed here).
    steps = [s for s in steps if not s.startswith("sudo apt-get")]
    steps = [re.sub(r"^python3 ", f"{SYSTEM_PYTHON} ", s) for s in steps]
    proc = subprocess.run(["bash", "-c", " && ".join(steps)], cwd=copy, env=clean_env(),
                          capture_output=True, text=True, timeout=600)
    return copy, proc


def test_readme_quick_start_is_two_commands_and_the_second_is_ci() -> None:
    lines = quick_start()
    assert len(lines) == 2, lines
    assert lines[1] == "bash .ci/run"
    ci = (PROJECT / ".ci" / "run").read_text()
    # The README's test command is the one .ci/run calls, in the venv it creates.
    assert "\npython3 -m pytest\n" in ci and "`python3 -m pytest`" in README
    assert "python3 -m venv .venv" in ci and ". .venv/bin/activate" in ci
    assert "python3-venv" in ci and "python3-venv" in lines[0]


def test_system_python_refuses_a_plain_pip_install() -> None:
    """Why the README installs into a venv (skipped where the system Python is not externally managed)."""
    marker = subprocess.run([SYSTEM_PYTHON, "-c", "import sysconfig; print(sysconfig.get_path('stdlib'))"],
                            capture_output=True, text=True, check=True).stdout.strip()
    if not (Path(marker) / "EXTERNALLY-MANAGED").exists():
        pytest.skip(f"{SYSTEM_PYTHON} is not externally managed here")
    proc = subprocess.run([SYSTEM_PYTHON, "-m", "pip", "install", "--dry-run", str(PROJECT)],
                          env=clean_env(), capture_output=True, text=True, timeout=120)
    if "No module named pip" in proc.stderr:
        pytest.skip(f"{SYSTEM_PYTHON} has no pip (python3-pip not installed)")
    assert proc.returncode != 0 and "externally-managed-environment" in proc.stderr


@requires_landlock
def test_readme_install_line_works_with_the_system_python(
        installed: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    copy, proc = installed
    # exit 1: the default Landlock target lets some checks through; 2 would be an error.
    assert proc.returncode in (0, 1), proc.stdout[-2000:] + proc.stderr[-2000:]
    lines = proc.stdout.strip().splitlines()
    assert any(re.fullmatch(r"\d+ passed, \d+ failed, 0 inconclusive, 0 skipped in [\d.]+s", line)
               for line in lines[-3:]), lines[-3:]
    where = subprocess.run([str(copy / ".venv" / "bin" / "python"), "-c",
                            "import sandboxcheck; print(sandboxcheck.__file__)"],
                           env=clean_env(), cwd="/", capture_output=True, text=True, check=True).stdout
    assert "/site-packages/sandboxcheck/" in where and where.startswith(str(copy / ".venv"))


@requires_landlock
def test_an_installed_copy_finds_npm_tools_under_the_working_directory(
        installed: tuple[Path, subprocess.CompletedProcess[str]], tmp_path: Path) -> None:
    copy, proc = installed
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    python = str(copy / ".venv" / "bin" / "python")
    code = ("from sandboxcheck.targets.tools import Requirement; from sandboxcheck.targets.tools import find_tool, project_dir; "
            "print(project_dir()); print(find_tool('srt')); "
            "print(Requirement('srt', 'npm install --prefix .tools/npm x').hint())")
    before = subprocess.run([python, "-c", code], cwd=tmp_path, env=clean_env(),
                            capture_output=True, text=True, check=True).stdout.splitlines()
    npm_bin = tmp_path / ".tools" / "npm" / "node_modules" / ".bin"
    assert before[:2] == ["None", "None"]
    assert before[2].startswith("srt not found on PATH: npm install --prefix .tools/npm x [also searched: ")
    assert str(npm_bin) in before[2] and "/.cache/sandboxcheck/npm/node_modules/.bin" in before[2]
    # What `npm install --prefix .tools/npm ...` leaves behind: an executable in .bin.
    npm_bin.mkdir(parents=True)
    (npm_bin / "srt").write_text("#!/bin/sh\necho 0.0.78\n")
    (npm_bin / "srt").chmod(0o755)
    after = subprocess.run([python, "-c", code], cwd=tmp_path, env=clean_env(),
                           capture_output=True, text=True, check=True).stdout.splitlines()
    assert after[1] == str(npm_bin / "srt")


def test_ci_workflow_installs_the_way_the_readme_says() -> None:
    workflow = yaml.safe_load((PROJECT / "examples" / "github-actions-sandboxcheck.yml").read_text())
    assert workflow["env"]["SANDBOXCHECK_SOURCE"] == GIT_SOURCE
    assert f'.venv/bin/pip install "{GIT_SOURCE}"' in README
    steps = workflow["jobs"]["sandbox"]["steps"]
    script = next(s["run"] for s in steps if s.get("name") == "Install the sandbox under test and sandboxcheck")
    assert 'python3 -m venv "$RUNNER_TEMP/sandboxcheck"' in script
    assert '"$RUNNER_TEMP/sandboxcheck/bin/pip" install "$SANDBOXCHECK_SOURCE"' in script
    assert 'echo "$RUNNER_TEMP/sandboxcheck/bin" >> "$GITHUB_PATH"' in script
    assert "pip install sandboxcheck" not in script  # no such distribution on PyPI
