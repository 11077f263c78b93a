"""The report in a real browser: Debian's headless chromium renders, dumps and screenshots it.

Screenshots and PDFs are kept under test-artifacts/ (gitignored) so a person can
look at what the admins will see.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import jsonschema
import pytest

from tests import report_fixtures as rf
from tests.test_formats_html import DomInspector, flat
from xenaudit.formats import write_formats
from xenaudit.formats.html import visible
from xenaudit.formats.json import report_schema
from xenaudit.report import AuditReport

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
WINDOW = (1366, 900)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium is not installed"),
]


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    """Run headless chromium with a fresh profile and no network side traffic."""
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-quic",
        f"--user-data-dir={profile}",
        *args,
    ]
    done = subprocess.run(command, capture_output=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    return done


def write_report(report: AuditReport, outdir: Path) -> Path:
    write_formats(report, outdir, ["all"])
    return outdir / "report.html"


def dump_dom(tmp_path: Path, page: Path) -> DomInspector:
    done = chromium(tmp_path, "--dump-dom", page.as_uri())
    dom = DomInspector()
    dom.feed(done.stdout.decode("utf-8"))
    dom.close()
    return dom


def png_size_and_pixels(data: bytes) -> tuple[int, int, bytes]:
    """Width, height and the inflated image data of a PNG (enough to see it is not blank)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    offset, idat = 8, b""
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        if kind == b"IDAT":
            idat += data[offset + 8 : offset + 8 + length]
        offset += 12 + length
    return width, height, zlib.decompress(idat)


def test_screenshot_of_the_rich_report(tmp_path: Path) -> None:
    page = write_report(rf.rich_report(demo=True), tmp_path / "report")
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report-rich.png"
    shot.unlink(missing_ok=True)
    chromium(
        tmp_path,
        f"--screenshot={shot}",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
        "--hide-scrollbars",
        page.as_uri(),
    )
    width, height, pixels = png_size_and_pixels(shot.read_bytes())
    assert (width, height) == WINDOW
    # A blank or failed page compresses to a handful of distinct byte values.
    assert len(set(pixels)) > 64


def test_prints_to_pdf(tmp_path: Path) -> None:
    page = write_report(rf.rich_report(), tmp_path / "report")
    ARTIFACTS.mkdir(exist_ok=True)
    pdf = ARTIFACTS / "report-rich.pdf"
    pdf.unlink(missing_ok=True)
    chromium(tmp_path, f"--print-to-pdf={pdf}", "--no-pdf-header-footer", page.as_uri())
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF-")
    # The page tree's root holds the largest /Count: the number of pages.
    pages = max(int(n) for n in re.findall(rb"/Count (\d+)", data))
    assert pages >= 3


def test_dom_shows_every_domain_and_chart(tmp_path: Path) -> None:
    report = rf.rich_report()
    dom = dump_dom(tmp_path, write_report(report, tmp_path / "report"))
    sections = dom.with_class("section", "domain")
    assert len(sections) == len(report.domains)
    with_meminfo = sum(1 for d in report.domains if d.facts and d.facts.meminfo)
    with_trend = sum(1 for d in report.domains if len(d.assessment.need_history_mib) >= 2)
    with_plan = sum(1 for h in report.hosts if h.plan)
    # Each bar chart is drawn twice: for a desktop ("wide") and for a phone ("narrow").
    for layout in ("wide", "narrow"):
        drawn = [(a["class"] or "").split() for a in dom.with_class("svg", layout)]
        assert sum("mem" in c for c in drawn) == with_meminfo
        assert sum("plan" in c for c in drawn) == with_plan
    assert len(dom.with_class("svg", "spark")) == with_trend
    rects = dom.tags("rect")
    assert len(rects) > 50
    for i, domain in enumerate(report.domains):
        assert domain.name in flat(" ".join(dom.section_text[f"d{i}"]))
    assert dom.injected() == []


def test_hostile_fleet_renders_payloads_as_text(tmp_path: Path) -> None:
    report = rf.hostile_report()
    dom = dump_dom(tmp_path, write_report(report, tmp_path / "report"))
    assert dom.injected() == []
    assert dom.tags("script") == [] and dom.tags("img") == [] and dom.tags("iframe") == []
    for _, attrs in dom.elements:
        assert not [name for name in attrs if name.startswith("on")]
        assert not any("javascript:" in (value or "").lower() for value in attrs.values())
    text = dom.text
    for payload in rf.HOSTILE_PAYLOADS:
        assert flat(visible(payload)) in text, payload
    assert len(dom.with_class("section", "domain")) == len(report.domains)


DEMO = """
import sys
from xenaudit.cli import main
sys.exit(main(["audit", "--demo", "-o", sys.argv[1]]))
"""


def test_demo_report_in_the_browser(tmp_path: Path) -> None:
    pytest.importorskip("xenaudit.audit", reason="the pipeline with its demo has not landed")
    outdir = tmp_path / "demo"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", DEMO, str(outdir)],
        capture_output=True,
        timeout=600,
        cwd=tmp_path,
        env=env,
        check=False,
    )
    page = outdir / "report.html"
    assert page.is_file(), done.stderr.decode(errors="replace")[-3000:]
    doc = json.loads((outdir / "report.json").read_text())
    assert doc["demo"] is True
    # The real pipeline's report.json keeps the contract other tools read.
    assert list(jsonschema.Draft202012Validator(report_schema()).iter_errors(doc)) == []
    dom = dump_dom(tmp_path, page)
    assert dom.injected() == []
    assert len(dom.with_class("section", "domain")) == len(doc["domains"])
    text = dom.text
    assert "Demo data." in text
    for domain in doc["domains"]:
        assert flat(visible(domain["name"])) in text
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report-demo.png"
    chromium(tmp_path, f"--screenshot={shot}", "--window-size=1366,900", page.as_uri())
    width, height, _ = png_size_and_pixels(shot.read_bytes())
    assert (width, height) == (1366, 900)


# --- layout at a desktop's and a phone's size ------------------------------------

from tests.cdp import Browser  # noqa: E402

DESKTOP = (1366, 768)
PHONE = (375, 812)

#: Elements that stick out of the page to the right, outside any box that scrolls.
OVERFLOW_JS = """
(() => {
  const width = document.documentElement.clientWidth;
  const out = [];
  for (const el of document.querySelectorAll('body *')) {
    const box = el.getBoundingClientRect();
    if (box.width === 0 || box.right <= width + 0.5) continue;
    let boxed = false;
    for (let p = el.parentElement; p; p = p.parentElement) {
      const o = getComputedStyle(p).overflowX;
      if (o === 'auto' || o === 'scroll' || o === 'hidden') { boxed = true; break; }
    }
    if (!boxed) out.push(el.tagName + ' ' + (el.textContent || '').trim().slice(0, 60));
  }
  return {scroll: document.documentElement.scrollWidth, width: width, out: out.slice(0, 10)};
})()
"""

#: Boxes of every visible chart label and marker line, per chart.
CHART_JS = """
(() => Array.from(document.querySelectorAll('svg.chart')).filter(
    svg => svg.getBoundingClientRect().width > 0).map(svg => ({
  texts: Array.from(svg.querySelectorAll('text')).map(t => {
    const b = t.getBoundingClientRect();
    return {text: t.textContent, x1: b.left, y1: b.top, x2: b.right, y2: b.bottom,
            size: parseFloat(getComputedStyle(t).fontSize) * b.height / (t.getBBox().height || 1)};
  }),
  lines: Array.from(svg.querySelectorAll('line.marker')).map(l => {
    const b = l.getBoundingClientRect();
    return {x: (b.left + b.right) / 2, y1: b.top, y2: b.bottom};
  }),
})))()
"""


def _overlap(a: dict[str, float], b: dict[str, float], pad: float = 0.5) -> bool:
    return not (
        a["x2"] - pad <= b["x1"]
        or b["x2"] - pad <= a["x1"]
        or a["y2"] - pad <= b["y1"]
        or b["y2"] - pad <= a["y1"]
    )


def _check_layout(browser: Browser, size: tuple[int, int], name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / f"{name}-{size[0]}x{size[1]}.png"
    browser.screenshot(shot)
    width, height, pixels = png_size_and_pixels(shot.read_bytes())
    assert (width, height) == size and len(set(pixels)) > 64
    browser.screenshot(ARTIFACTS / f"{name}-{size[0]}-full.png", full_page=True)

    # Tonight's actions start in the first screen, with at least one row visible.
    table = browser.evaluate(
        "(() => { const s = document.querySelector('section.actions');"
        " const r = document.querySelector('table.actions tbody tr') || s;"
        " return [s.getBoundingClientRect().top, r.getBoundingClientRect().top,"
        " r.getBoundingClientRect().bottom]; })()"
    )
    assert table[0] < size[1] / 2, table
    assert table[2] <= size[1], table

    # Nothing makes the page scroll sideways.
    overflow = browser.evaluate(OVERFLOW_JS)
    assert overflow["scroll"] <= size[0], overflow
    assert overflow["out"] == [], overflow

    # Chart labels: legible, never on top of each other or of a marker line.
    charts = browser.evaluate(CHART_JS)
    assert charts
    for chart in charts:
        texts = [t for t in chart["texts"] if t["x2"] > t["x1"]]
        for t in texts:
            assert t["y2"] - t["y1"] >= 10, t  # at least 10 px tall on screen
        for i, a in enumerate(texts):
            for b in texts[i + 1 :]:
                assert not _overlap(a, b), (a, b)
            for line in chart["lines"]:
                crosses = a["x1"] + 0.5 < line["x"] < a["x2"] - 0.5 and (
                    line["y1"] < a["y2"] - 0.5 and a["y1"] + 0.5 < line["y2"]
                )
                assert not crosses, (a, line)


def _demo_outdir(tmp_path: Path) -> Path:
    outdir = tmp_path / "demo"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    subprocess.run(
        [sys.executable, "-c", DEMO, str(outdir)],
        capture_output=True,
        timeout=600,
        cwd=tmp_path,
        env=env,
        check=False,
    )
    assert (outdir / "report.html").is_file()
    return outdir


@pytest.mark.parametrize("which", ["demo", "rich"])
def test_layout_on_a_laptop_and_a_phone(tmp_path: Path, which: str) -> None:
    if which == "demo":
        page = _demo_outdir(tmp_path) / "report.html"
    else:
        page = write_report(rf.rich_report(demo=True), tmp_path / "report")
    with Browser(CHROMIUM, tmp_path / "cdp-profile") as browser:
        browser.open(page.as_uri(), *DESKTOP)
        _check_layout(browser, DESKTOP, f"layout-{which}")
        browser.open(page.as_uri(), *PHONE, mobile=True)
        # A phone must not widen its layout viewport to fit the page.
        assert browser.evaluate("window.innerWidth") == PHONE[0]
        _check_layout(browser, PHONE, f"layout-{which}")
        # On the phone the charts drawn for its width are the ones shown.
        shown = browser.evaluate(
            "Array.from(document.querySelectorAll('svg.chart')).filter("
            "s => s.getBoundingClientRect().width > 0).map(s => s.classList.contains('narrow'))"
        )
        assert shown and all(shown)
