"""fleet.html in headless Chromium: a hostile fleet stays text, links stay inside the fleet."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from tests import report_fixtures as rf
from tests.fleet_fixtures import Dom0Folders, edit_report, recent, write_report
from tests.test_browser import ARTIFACTS, CHROMIUM, chromium, dump_dom, png_size_and_pixels
from tests.test_formats_html import DomInspector, flat
from xenaudit.cli import main
from xenaudit.formats.html import CONTENT_SECURITY_POLICY, visible

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium is not installed"),
]

PAYLOADS = rf.HOSTILE_PAYLOADS
#: The only links fleet.html may hold: into a Dom0 folder the merge named, or on the page.
RELATIVE_LINK = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*/report\.html(#d[0-9]+)?")


def hostile_fleet(root: Path) -> tuple[Path, list[Path]]:
    """Dom0 folders whose every string is an attack, plus inputs that are left out."""
    evil = write_report(root / "evil", rf.hostile_report())
    edit_report(evil, lambda d: d.update(generated_at=recent()))
    dom0s = Dom0Folders(root / "more")
    inputs = [evil]
    for i, payload in enumerate(PAYLOADS):

        def poison(doc: dict[str, Any], payload: str = payload) -> None:
            doc["tool_version"] = payload
            doc["errors"] = [payload]
            doc["incomplete"] = True
            for domain in doc["domains"]:
                domain["name"] = f"{domain['name']} {payload}"
                domain["diagnosis"] = [payload]
                if domain["recommendation"]:
                    domain["recommendation"]["not_fitting_reason"] = payload
                    domain["recommendation"]["fits"] = False
            for row in doc["actions"]:
                row["domain"] = f"{row['domain']} {payload}"
                row["change"] = f"{row['change']} {payload}"
                row["why"] = payload
            if payload == PAYLOADS[0]:
                # One Dom0 from before report.json had actions: rows from its domains.
                del doc["actions"]

        inputs.append(dom0s.make(f"p{i}", payload, change=poison, generated_at=recent(50)))
    bad = root / "<img src=x onerror=alert(1)>"
    bad.mkdir()
    inputs.append(bad)
    return root / "fleet", inputs


def test_hostile_fleet_renders_as_text(tmp_path: Path) -> None:
    out, inputs = hostile_fleet(tmp_path)
    expect = ["--expect", "<script>alert('missing')</script>", "--expect", PAYLOADS[7]]
    assert main(["merge", *map(str, inputs), "-o", str(out), "-q", *expect]) == 3
    page = out / "fleet.html"
    dom = dump_dom(tmp_path, page)
    (meta,) = [m for m in dom.tags("meta") if m.get("http-equiv") == "Content-Security-Policy"]
    assert meta["content"] == CONTENT_SECURITY_POLICY

    assert dom.tags("script") == [] and dom.tags("img") == [] and dom.tags("iframe") == []
    links = []
    for tag, attrs in dom.elements:
        assert not [name for name in attrs if name.startswith("on")], (tag, attrs)
        assert not any("javascript:" in (value or "").lower() for value in attrs.values())
        if tag == "a":
            links.append(attrs.get("href") or "")
    problems = [p for p in injected_outside_links(dom) if p]
    assert problems == []
    # Every link is one the merge made, and lands on a file inside the fleet folder.
    assert links
    for href in links:
        if href.startswith("#"):
            continue
        assert RELATIVE_LINK.fullmatch(href), href
        target = (out / unquote(href.split("#")[0])).resolve()
        assert target.is_file() and out.resolve() in target.parents

    text = dom.text
    for payload in PAYLOADS:
        assert flat(visible(payload)) in text, payload
    assert flat(visible("<script>alert('missing')</script>")) in text
    assert "<img src=x onerror=alert(1)>" in text  # the left-out folder, named as text
    rows = dom.with_class("table", "actions")
    assert rows, "no actions table"

    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "fleet-hostile.png"
    shot.unlink(missing_ok=True)
    chromium(tmp_path, f"--screenshot={shot}", "--window-size=1366,900", page.as_uri())
    width, height, pixels = png_size_and_pixels(shot.read_bytes())
    assert (width, height) == (1366, 900) and len(set(pixels)) > 64


def injected_outside_links(dom: DomInspector) -> list[str]:
    """`DomInspector.injected` minus the relative links into Dom0 folders fleet.html makes."""
    return [
        found
        for found in dom.injected()
        if not re.fullmatch(r"<a href=" + RELATIVE_LINK.pattern + ">", found)
    ]
