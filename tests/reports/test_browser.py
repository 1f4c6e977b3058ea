"""The tear sheet in a real headless browser (Debian's ``chromium``; skipped when it is absent).

Chromium runs with ``--enable-logging=stderr``, which prints every console message (script errors,
Content-Security-Policy refusals, failed loads) as an ``INFO:CONSOLE`` line; name resolution is
disabled so nothing could load from the network. A control page proves the detector sees a
refused inline script, so "no console line" on the report means something.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from html.parser import HTMLParser

import numpy as np
import pytest
from matplotlib.image import imread

from tickguard.reports.cli import main as tg_main
from tickguard.reports.html import write_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium/chromium-browser on PATH: install Debian's chromium "
    "(apt-get install -y chromium) to open the report in a headless browser")
PAYLOAD = '<script>alert(1)</script>"&<>'
ACTIVE = ("<img src=x onerror=\"document.body.setAttribute('data-pwned','img')\">"
          "<script>document.body.setAttribute('data-pwned','script')</script>")


def chromium(tmp_path, page, *args):
    """Open ``page`` headless; returns (stdout, console lines from stderr)."""
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
           "--disable-extensions", f"--user-data-dir={tmp_path / 'profile'}",
           "--host-resolver-rules=MAP * ~NOTFOUND", "--enable-logging=stderr", "--v=0",
           *args, page.as_uri()]
    proc = subprocess.run(cmd, capture_output=True, timeout=120)
    console = [ln for ln in proc.stderr.decode(errors="replace").splitlines() if ":CONSOLE" in ln]
    return proc.stdout.decode(errors="replace"), console


class Dom(HTMLParser):
    """What the browser built: figures and their svg children, all tags, body attributes, text."""

    def __init__(self, text):
        super().__init__(convert_charrefs=True)
        self.tags, self.figures, self.body, self.title, self.h1 = [], [], {}, "", ""
        self._fig, self._in = None, None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append(tag)
        if tag == "figure":
            self._fig = [a.get("id"), 0]
        elif tag == "svg" and self._fig is not None:
            self._fig[1] += 1
        elif tag == "body":
            self.body = a
        elif tag in ("title", "h1"):
            self._in = tag

    def handle_endtag(self, tag):
        if tag == "figure":
            self.figures.append(tuple(self._fig))
            self._fig = None
        elif tag in ("title", "h1"):
            self._in = None

    def handle_data(self, data):
        if self._in == "title":
            self.title += data
        elif self._in == "h1":
            self.h1 += data


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "run"
    assert tg_main(["run", "--out", str(out), "--quiet"]) == 0
    return out


def test_detector_sees_a_refused_inline_script(tmp_path):
    page = tmp_path / "control.html"
    page.write_text("<!DOCTYPE html><html><head><meta http-equiv=\"Content-Security-Policy\" "
                    "content=\"default-src 'none'\"><title>c</title></head>"
                    f"<body>{ACTIVE}</body></html>")
    dom, console = chromium(tmp_path, page, "--dump-dom")
    assert any("Content Security Policy" in ln for ln in console)
    assert "data-pwned" not in Dom(dom).body


def test_report_loads_without_console_messages_and_shows_every_figure(demo_dir, tmp_path):
    page = write_report(demo_dir, tmp_path / "report.html")
    dom, console = chromium(tmp_path, page, "--dump-dom")
    assert console == []
    d = Dom(dom)
    assert d.figures == [("fig-equity", 1), ("fig-exposure", 1), ("fig-pnl-dist", 1),
                         ("fig-rolling-var", 1), ("fig-fills", 1)]
    assert "script" not in d.tags and "img" not in d.tags


def test_report_screenshot_is_not_blank(demo_dir, tmp_path):
    page = write_report(demo_dir, tmp_path / "report.html")
    shot = tmp_path / "shot.png"
    _, console = chromium(tmp_path, page, f"--screenshot={shot}", "--window-size=1200,2400",
                          "--hide-scrollbars")
    assert console == []
    px = imread(shot)[..., :3]
    ink = (px < 0.9).any(axis=-1)  # pixels clearly darker than the white page
    assert px.shape[:2] == (2400, 1200) and 0.02 < ink.mean() < 0.9
    # the figures are drawn, not only text: some coloured (not grey) pixels, e.g. the equity line
    assert (np.ptp(px, axis=-1) > 0.2).mean() > 0.001


def test_html_in_the_strategy_name_is_shown_as_text_and_never_runs(demo_dir, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(demo_dir, run_dir)
    summary = json.loads((run_dir / "summary.json").read_text())
    name = PAYLOAD + ACTIVE
    summary["strategy"] = name
    (run_dir / "summary.json").write_text(json.dumps(summary))
    page = write_report(run_dir, tmp_path / "report.html")
    dom, console = chromium(tmp_path, page, "--dump-dom")
    assert console == []  # a script that got through would at least trip the CSP
    d = Dom(dom)
    assert "data-pwned" not in d.body
    assert "script" not in d.tags and "img" not in d.tags
    assert d.title == d.h1 == f"tickguard report: {name}"
