"""``validate`` tells each file's kind and checks it with that kind's loader, problems with file and line."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sandboxcheck.matrix.load import MatrixError
from sandboxcheck.resources import matrices_dir, presets_dir
from sandboxcheck.validate import detect_kind, validate_file

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(p for p in (ROOT / "examples").iterdir() if p.suffix in (".yaml", ".yml", ".json"))
SHIPPED = [*EXAMPLES, *sorted(matrices_dir().glob("*.yaml")), *sorted(presets_dir().glob("*.yaml"))]
KIND_OF = {"sandbox-policy.sandboxcheck.yaml": "suite", "github-actions-sandboxcheck.yml": "workflow",
           "github-actions-fleet.yml": "workflow"}


def test_there_are_examples_of_each_kind() -> None:
    kinds = {validate_file(str(p)).kind for p in SHIPPED}
    assert kinds == {"suite", "workflow", "matrix", "target"}
    assert len(EXAMPLES) >= 2


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_shipped_file_validates(path: Path) -> None:
    done = validate_file(str(path))
    want = KIND_OF.get(path.name, "matrix" if path.parent == matrices_dir() else "target")
    assert done.kind == want


def test_the_command_line_validates_them_all_at_once() -> None:
    proc = subprocess.run([sys.executable, "-m", "sandboxcheck.cli", "validate", *map(str, SHIPPED)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert f"{ROOT / 'examples/sandbox-policy.sandboxcheck.yaml'}: ok (suite, 1 matrix, 1 target)" in proc.stdout
    assert len(proc.stdout.splitlines()) == len(SHIPPED)


def broken(tmp_path: Path, source: Path, name: str, old: str, new: str) -> str:
    """A copy of ``source`` with one edit, written as ``name``."""
    text = source.read_text()
    assert old in text, old
    out = tmp_path / name
    out.write_text(text.replace(old, new, 1))
    return str(out)


def problems(path: str, kind: str | None = None) -> list[str]:
    with pytest.raises(MatrixError) as info:
        validate_file(path, kind)
    return [str(p).replace(path, "{file}") for p in info.value.problems]


def line_of(path: str, text: str) -> int:
    return next(i for i, line in enumerate(Path(path).read_text().splitlines(), 1) if text in line)


def test_broken_suite(tmp_path: Path) -> None:
    path = broken(tmp_path, ROOT / "examples/sandbox-policy.sandboxcheck.yaml", "policy.sandboxcheck.yaml",
                  "  - baseline\n", "  - baselin\n")
    n = line_of(path, "- baselin")
    assert problems(path) == [f"{{file}}:{n}: matrices[0]: no matrix file 'baselin', and not a bundled matrix "
                              f"(advisories, agent, agent-gemini, baseline, network, network-ports, preexisting, repo-trust) (paths are relative to the suite file)"]


def test_broken_workflow(tmp_path: Path) -> None:
    path = broken(tmp_path, ROOT / "examples/github-actions-sandboxcheck.yml", "wf.yml",
                  "sandboxcheck run baseline --target bwrap-strict", "sandboxcheck run baselin --target bwrap-strict")
    n = line_of(path, "- name: Run the baseline matrix") + 1
    assert problems(path) == [f"{{file}}:{n}: jobs.sandbox.steps[3].run: sandboxcheck run: no matrix file "
                              "'baselin', and not a bundled matrix (advisories, agent, agent-gemini, baseline, network, network-ports, preexisting, repo-trust)"]


def test_broken_target_files(tmp_path: Path) -> None:
    path = broken(tmp_path, presets_dir() / "srt-settings.yaml", "t.yaml", "command:", "comand:")
    n = line_of(path, "comand:")
    assert problems(path) == [
        "{file}:1: 'command' must be a non-empty list of strings (an argv template)",
        f"{{file}}:{n}: unknown key 'comand' (did you mean 'command'?)",
    ]
    path = broken(tmp_path, presets_dir() / "bwrap-loose.yaml", "t2.yaml", '"{cmd}"]', '"{cmnd}"]')
    n = line_of(path, "command:")
    assert problems(path) == [
        f"{{file}}:{n}: command: unknown placeholder {{cmnd}}",
        f"{{file}}:{n}: command: must contain {{cmd}} (as its own element) or {{cmd_shell}}, or a file must hold {{cmd_json}}",
    ]


def test_broken_matrix_and_report(tmp_path: Path) -> None:
    path = broken(tmp_path, matrices_dir() / "preexisting.yaml", "m.yaml", "access: read", "access: raed")
    n = line_of(path, "access: raed")
    assert problems(path) == [f"{{file}}:{n}: checks[1].setup[0].access: 'raed' is not one of: "
                              "read, write, read-write"]
    report = tmp_path / "r.json"
    report.write_text('{\n  "results": [],\n  "schema_version": 7\n}\n')
    assert problems(str(report)) == ["{file}:3: unsupported schema_version 7"]


def test_a_file_of_no_known_kind_is_read_as_a_matrix(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text("hello: world\n")
    assert problems(str(path)) == ["{file}:1: missing required key 'checks'", "{file}:1: hello: unknown key"]
    # Told the kind, the file gets that kind's messages.
    assert problems(str(path), "suite") == ["{file}:1: missing required key 'matrices'",
                                            "{file}:1: missing required key 'targets'",
                                            "{file}:1: hello: unknown key"]


@pytest.mark.parametrize("keys, kind", [
    ({"chekcs": []}, "matrix"), ({"matrices": [], "targets": []}, "suite"),
    ({"name": "x", "comand": []}, "target"), ({"results": []}, "report"), ({"name": "x"}, None),
])
def test_kind_from_keys_even_misspelt(keys: dict, kind: str | None) -> None:
    assert detect_kind("f.yaml", keys) == kind
