"""The survey HTML of a real run, loaded in a real headless browser (Debian's chromium-headless-shell).

The browser is driven over the DevTools protocol on a pipe: it loads the
page, reports every console message, exception and log entry, returns the
page's visible text (``innerText``, which leaves out hover titles and hidden
elements) and a full-page screenshot. CI installs the browser (.ci/run), so
there a missing browser fails; elsewhere the test skips.
"""
from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from marks import requires_landlock
from sandboxcheck.matrix.load import parse_matrix
from sandboxcheck.run.options import RunOptions
from sandboxcheck.report.registry import render
from sandboxcheck.survey import load_targets, run_survey

pytestmark = pytest.mark.integration

BROWSERS = ("chromium-headless-shell", "chromium", "chrome-headless-shell")
INLINE = "firejail --quiet --noprofile -- {cmd}"


def browser() -> str:
    """The headless browser on PATH; fails in CI (which installs it), skips elsewhere."""
    found = next((p for p in map(shutil.which, BROWSERS) if p), None)
    if found is None:
        why = f"no headless browser on PATH ({', '.join(BROWSERS)}): apt-get install chromium-headless-shell"
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)
    return found


class Page:
    """One page in a headless browser, driven over the DevTools protocol on a pipe."""

    def __init__(self, proc: subprocess.Popen[bytes], send: int, recv: int) -> None:
        self.proc, self._send, self._recv = proc, send, recv
        self._buf = b""
        self._id = 0
        self.session = ""
        self.problems: list[str] = []

    def call(self, method: str, timeout: float = 30.0, **params: Any) -> dict[str, Any]:
        """Send one command and wait for its answer, collecting console problems meanwhile."""
        self._id += 1
        msg: dict[str, Any] = {"id": self._id, "method": method, "params": params}
        if self.session:
            msg["sessionId"] = self.session
        os.write(self._send, json.dumps(msg).encode() + b"\0")
        want = self._id
        return self._until(lambda m: m.get("id") == want, timeout)

    def wait_event(self, method: str, timeout: float = 30.0) -> dict[str, Any]:
        """Wait for one event of ``method``."""
        return self._until(lambda m: m.get("method") == method, timeout)

    def _until(self, match: Any, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            while b"\0" in self._buf:
                raw, self._buf = self._buf.split(b"\0", 1)
                msg = json.loads(raw)
                self._note(msg)
                if match(msg):
                    if "error" in msg:
                        raise AssertionError(f"DevTools error: {msg['error']}")
                    return msg
            if time.monotonic() > deadline:
                raise AssertionError(f"the browser did not answer within {timeout:.0f}s")
            chunk = os.read(self._recv, 1 << 20)
            if not chunk:
                raise AssertionError(f"the browser closed the pipe (exit {self.proc.poll()})")
            self._buf += chunk

    def _note(self, msg: dict[str, Any]) -> None:
        method, params = msg.get("method"), msg.get("params", {})
        if method == "Runtime.consoleAPICalled":
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
            self.problems.append(f"console.{params.get('type')}: {text}")
        elif method == "Runtime.exceptionThrown":
            d = params.get("exceptionDetails", {})
            self.problems.append(f"exception: {d.get('exception', {}).get('description') or d.get('text')}")
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") in ("error", "warning"):
            self.problems.append(f"log {params['entry']['level']}: {params['entry'].get('text')}")

    def open(self, url: str) -> None:
        """Load ``url`` with console, exceptions and log entries watched from the start."""
        target = self.call("Target.createTarget", url="about:blank")["result"]["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["result"]["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            self.call(f"{domain}.enable")
        self.call("Page.navigate", url=url)
        self.wait_event("Page.loadEventFired")

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page."""
        return self.call("Runtime.evaluate", expression=expression, returnByValue=True)["result"]["result"]["value"]

    def screenshot(self, path: Path) -> None:
        """A PNG of the whole page, not only the viewport."""
        size = self.call("Page.getLayoutMetrics")["result"]["cssContentSize"]
        width, height = int(size["width"]) + 1, min(int(size["height"]) + 1, 16000)
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
                  mobile=False)
        data = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)["result"]["data"]
        path.write_bytes(base64.b64decode(data))


def _pipe_fds(commands: int, messages: int) -> None:
    # Through spare copies first: either end may already sit on fd 3 or 4.
    spare = os.dup(commands), os.dup(messages)
    os.dup2(spare[0], 3)
    os.dup2(spare[1], 4)


@contextmanager
def headless_page(tmp: Path) -> Iterator[Page]:
    """A headless browser with its own profile folder, ended (by its pid) on exit."""
    to_browser, send = os.pipe()
    recv, from_browser = os.pipe()
    # The DevTools pipe is fds 3 (commands in) and 4 (messages out) of the browser.
    proc = subprocess.Popen(
        [browser(), "--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe",
         f"--user-data-dir={tmp / 'profile'}", "--window-size=1400,900", "about:blank"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        pass_fds=(3, 4), preexec_fn=lambda: _pipe_fds(to_browser, from_browser))
    os.close(to_browser)
    os.close(from_browser)
    try:
        yield Page(proc, send, recv)
    finally:
        os.close(send)
        os.close(recv)
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def artifact(path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """Copy ``path`` under $SANDBOXCHECK_ARTIFACTS when set, and print where it is."""
    where = path
    folder = os.environ.get("SANDBOXCHECK_ARTIFACTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        where = Path(folder) / path.name
        shutil.copyfile(path, where)
    with capsys.disabled():
        print(f"\nscreenshot: {where}")
    return where


def test_browser_sees_console_errors_and_hidden_text(tmp_path: Path) -> None:
    """The checks below can fail: a throwing page and hover-only text are caught."""
    page_file = tmp_path / "bad.html"
    page_file.write_text('<!DOCTYPE html><html><body><p title="hover only">shown</p>'
                         '<details><summary>sum</summary>folded</details>'
                         '<script>console.error("boom"); missingFunction();</script></body></html>')
    with headless_page(tmp_path) as page:
        page.open(page_file.as_uri())
        text = page.evaluate("document.body.innerText")
        problems = page.problems
    assert "shown" in text and "hover only" not in text and "folded" not in text
    assert any("boom" in p for p in problems), problems
    assert any("missingFunction" in p for p in problems), problems


@requires_landlock
def test_survey_html_in_a_headless_browser(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                           baseline_subset: Any) -> None:
    matrix = parse_matrix(baseline_subset("two", "fs.read.absolute", "env.own"), str(tmp_path / "two.yaml"))
    result = run_survey(matrix, load_targets(["none", "landlock", INLINE]), RunOptions(jobs=2),
                        command=f"sandboxcheck survey two.yaml -t none -t landlock -t '{INLINE}' -f html")
    assert result.exit_code() == 1  # env.own leaks through all three
    html_file = tmp_path / "survey.html"
    with html_file.open("w", encoding="utf-8") as fh:
        render("survey", "html", result, fh)
    survey = result.to_dict()
    names = [t["name"] for t in survey["targets"]]
    assert names == ["none", "landlock", "firejail --quiet --noprofile"]
    shot = tmp_path / "survey.png"
    with headless_page(tmp_path) as page:
        page.open(html_file.as_uri())
        text = page.evaluate("document.body.innerText")
        rows = page.evaluate("[...document.querySelectorAll('table.grid tr')].map(r => r.innerText)")
        page.screenshot(shot)
        problems = page.problems
    artifact(shot, capsys)
    assert not problems, problems
    assert shot.stat().st_size > 10_000 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # Every cell's reason and evidence is on the page as visible text, not only in a title.
    env = next(c for c in survey["checks"] if c["id"] == "env.own")
    for name in names:
        cell = env["cells"][name]
        assert cell["status"] == "fail" and cell["reason"]
        assert cell["reason"] in text
        assert all(ev in text for ev in cell["evidence"])
    # One preflight row across the grid, with each target's isolation in its own cell.
    preflight = [r for r in rows if r.startswith("preflight")]
    assert len(preflight) == 1, rows
    cells = preflight[0].split("\t")
    assert len(cells) == 2 + len(names)
    for target, seen in zip(survey["targets"], cells[2:]):
        layers = target["preflight"]["layers"]
        assert seen.strip() == ("; ".join(layers) if target["preflight"]["isolated"] else "NO ISOLATION SEEN")
    assert cells[2].strip() == "NO ISOLATION SEEN" and cells[3].strip() not in ("", "NO ISOLATION SEEN")
    # The inline target is named by its command, and the full command is shown.
    assert "inline#" not in text and INLINE in text
