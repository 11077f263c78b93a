"""report.html: self-contained, script-free, and every guest string shown as text."""

from __future__ import annotations

import dataclasses
import html
import re
import shlex
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests import report_fixtures as rf
from xenaudit.analysis.interface import SEVERITY_ORDER, Evidence, Finding
from xenaudit.formats.html import (
    CONTENT_SECURITY_POLICY,
    MAX_EVIDENCE,
    FormatError,
    HtmlFormat,
    make_environment,
    render_html,
    template_dirs,
    visible,
)
from xenaudit.report import AuditReport

REPO = Path(__file__).resolve().parent.parent
#: Elements that could run code or fetch something, none of which the report uses.
ACTIVE_TAGS = {
    "script",
    "iframe",
    "img",
    "object",
    "embed",
    "link",
    "base",
    "frame",
    "frameset",
    "foreignobject",
    "form",
    "input",
    "textarea",
    "audio",
    "video",
    "source",
    "image",
    "use",
    "animate",
    "set",
    "a:href",
}


class DomInspector(HTMLParser):
    """Collects what a page really contains once parsed (tags, attributes, text)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.text_parts: list[str] = []
        self._stack: list[str] = []
        self.section_text: dict[str, list[str]] = {}
        self._section: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.elements.append((tag, attributes))
        if tag == "section" and "domain" in (attributes.get("class") or "").split():
            self._section = attributes.get("id")
            self.section_text[self._section or ""] = []

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text_parts.append(data)
        if self._section is not None:
            self.section_text[self._section].append(data)

    @property
    def text(self) -> str:
        return " ".join(" ".join(self.text_parts).split())

    def tags(self, name: str) -> list[dict[str, str | None]]:
        return [attrs for tag, attrs in self.elements if tag == name]

    def with_class(self, tag: str, cls: str) -> list[dict[str, str | None]]:
        return [a for a in self.tags(tag) if cls in (a.get("class") or "").split()]

    def injected(self) -> list[str]:
        """Everything that would let the page run code or load something."""
        found: list[str] = []
        for tag, attrs in self.elements:
            if tag in ACTIVE_TAGS:
                found.append(f"<{tag}>")
            for name, value in attrs.items():
                if name.startswith("on"):
                    found.append(f"<{tag} {name}>")
                linking = name in ("href", "src", "xlink:href", "action", "formaction")
                if linking and value and not value.startswith("#"):
                    found.append(f"<{tag} {name}={value}>")
            if tag == "meta" and (attrs.get("http-equiv") or "").lower() == "refresh":
                found.append("<meta refresh>")
        return found


def inspect(page: str) -> DomInspector:
    parser = DomInspector()
    parser.feed(page)
    parser.close()
    return parser


def flat(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture(scope="module")
def rich_page(tmp_path_factory: pytest.TempPathFactory) -> str:
    return render_html(rf.rich_report(demo=True), tmp_path_factory.mktemp("rich"))


@pytest.fixture(scope="module")
def hostile_page(tmp_path_factory: pytest.TempPathFactory) -> str:
    return render_html(rf.hostile_report(), tmp_path_factory.mktemp("hostile"))


# --- self-contained and script-free ---------------------------------------------


def test_csp_meta_forbids_scripts_and_loads(rich_page: str) -> None:
    metas = [a for a in inspect(rich_page).tags("meta") if a.get("http-equiv")]
    (csp,) = [a for a in metas if a["http-equiv"] == "Content-Security-Policy"]
    assert csp["content"] == CONTENT_SECURITY_POLICY
    for directive in (
        "default-src 'none'",
        "script-src 'none'",
        "base-uri 'none'",
        "form-action 'none'",
    ):
        assert directive in CONTENT_SECURITY_POLICY
    # The CSP must come before anything it is meant to govern.
    assert rich_page.index("Content-Security-Policy") < rich_page.index("<style>")


@pytest.mark.parametrize("page_name", ["rich_page", "hostile_page"])
def test_no_script_and_no_external_resources(
    page_name: str, request: pytest.FixtureRequest
) -> None:
    page: str = request.getfixturevalue(page_name)
    assert "<script" not in page.lower()
    dom = inspect(page)
    assert dom.injected() == []
    (css,) = re.findall(r"<style>(.*?)</style>", page, re.S)
    assert "@media print" in css
    assert "url(" not in css and "@import" not in css
    for _, attrs in dom.elements:
        for name, value in attrs.items():
            if name in ("src", "href"):
                assert value and value.startswith("#"), (name, value)


def test_hostile_payloads_render_as_text(hostile_page: str) -> None:
    dom = inspect(hostile_page)
    assert dom.injected() == []
    text = dom.text
    for payload in rf.HOSTILE_PAYLOADS:
        assert flat(visible(payload)) in text, payload
    # Template syntax inside data is not evaluated.
    assert "{{ 7*7 }}" in text


def test_no_guest_text_in_any_attribute(hostile_page: str) -> None:
    for tag, attrs in inspect(hostile_page).elements:
        for name, value in attrs.items():
            for marker in ("xss", "evil", "alert", "javascript", "<", ">", "(", "{"):
                if value and marker in value and not (tag == "meta" and name == "content"):
                    pytest.fail(f"<{tag} {name}={value!r}> carries {marker!r}")


def test_invisible_characters_are_shown_escaped(hostile_page: str) -> None:
    assert "\x1b" not in hostile_page and "\x00" not in hostile_page
    assert "\u202e" not in hostile_page
    text = inspect(hostile_page).text
    assert "tab and\\x1b[31mansi\\x00nul" in text
    assert "web\\u202eoff.gpj" in text
    assert "bad \\udcff bytes" in text


def test_visible() -> None:
    assert visible("plain text\nwith\ttabs") == "plain text\nwith\ttabs"
    assert visible("a\x07b\x7fc\x85d") == "a\\x07b\\x7fc\\x85d"
    assert visible("x\u2066y\u200bz") == "x\\u2066y\\u200bz"


# --- what is on the page ------------------------------------------------------------


def test_run_summary_and_banners(rich_page: str) -> None:
    text = inspect(rich_page).text
    assert "Demo data." in text
    assert "Host dom0-a cannot fit the plan: 2048 MiB short." in text
    assert "Host dom0-b cannot fit" not in text
    assert "Domains 12" in text
    assert "Unreachable 4" in text  # unreachable, auth_failed, host_key_rejected, timeout
    assert "Incomplete:" in text
    assert "dom0-c: xl list -l: ssh: connection refused" in text


def test_no_demo_banner_for_real_runs(tmp_path: Path) -> None:
    assert "Demo data." not in inspect(render_html(rf.rich_report(demo=False), tmp_path)).text


def test_every_domain_has_a_section_with_its_charts(rich_page: str) -> None:
    report = rf.rich_report()
    dom = inspect(rich_page)
    sections = dom.with_class("section", "domain")
    assert sorted(a["id"] or "" for a in sections) == sorted(
        f"d{i}" for i in range(len(report.domains))
    )
    with_meminfo = [d for d in report.domains if d.facts and d.facts.meminfo]
    plans = [h for h in report.hosts if h.plan]
    # Each chart twice: laid out for a desktop ("wide") and for a phone ("narrow").
    for layout in ("wide", "narrow"):
        drawn = [a for a in dom.with_class("svg", layout)]
        assert len([a for a in drawn if "plan" in (a["class"] or "").split()]) == len(plans)
        assert len([a for a in drawn if "mem" in (a["class"] or "").split()]) == len(with_meminfo)
    with_trend = [d for d in report.domains if len(d.assessment.need_history_mib) >= 2]
    assert len(dom.with_class("svg", "spark")) == len(with_trend)
    for i, d in enumerate(report.domains):
        assert d.name in flat(" ".join(dom.section_text[f"d{i}"]))


def test_overview_sorted_by_severity_and_links_to_sections(rich_page: str) -> None:
    overview = rich_page[rich_page.index('id="overview"') : rich_page.index('id="domains"')]
    severities = re.findall(r'<span class="sev (\w+)">', overview)
    ranks = [SEVERITY_ORDER.index(s) for s in severities]
    assert ranks == sorted(ranks, reverse=True) and ranks[0] == 3
    links = re.findall(r'href="#(d\d+)"', overview)
    assert len(links) == len(rf.rich_report().domains)


def test_reference_case_details(rich_page: str) -> None:
    dom = inspect(rich_page)
    report = rf.rich_report()
    index = [d.name for d in report.domains].index("web01")
    web = flat(" ".join(dom.section_text[f"d{index}"]))
    assert "512 MiB → 768 MiB (maxmem 1024 MiB)" in web
    assert "kernlog:412 swapper: page allocation failure. order:0, mode:0x20" in web
    assert "Raise the atomic reserve" in web
    assert "sysctl -w vm.min_free_kbytes=8192" in web
    assert "vm.min_free_kbytes 1351 → 8192 (1 MiB → 8 MiB)" in web
    assert "also seen on 4 earlier nights" in web
    assert "Need over 7 nights: 402 MiB to 474 MiB" in web


def test_diff_lines_are_classified(rich_page: str) -> None:
    assert '<span class="add">+memory = 768</span>' in rich_page
    assert '<span class="del">-memory = 512</span>' in rich_page
    assert '<span class="hunk">@@ -2,4 +2,5 @@</span>' in rich_page
    assert '<span class="hdr">--- a/etc/xen/web01.cfg</span>' in rich_page


def test_not_fitting_recommendation_is_flagged(rich_page: str) -> None:
    text = inspect(rich_page).text
    assert "Does not fit on the host: dom0-a has 1536 MiB free after the plan" in text


# --- how to apply ---------------------------------------------------------------


def _commands(page: str) -> list[str]:
    dom_text = page[page.index('id="apply"') :]
    blocks = re.findall(r'<pre class="cmd">(.*?)</pre>', dom_text, re.S)
    return [html.unescape(line) for block in blocks for line in block.splitlines() if line]


def test_apply_commands(tmp_path: Path) -> None:
    outdir = tmp_path / "reports" / "2024 05 14"
    page = render_html(rf.rich_report(), outdir)
    commands = _commands(page)
    assert f"xenaudit apply {shlex.quote(str(outdir.resolve()))}" in commands
    patch_cmd = next(c for c in commands if c.startswith("cd / && patch -p1 <") and "web01" in c)
    assert shlex.split(patch_cmd)[-1] == str(outdir.resolve() / "patches/web01.cfg.diff")
    assert "xl mem-set cache01 2048m" in commands  # live_change_safe
    assert not any(c.startswith("xl mem-set web01") for c in commands)
    assert not any(c.startswith("xl mem-set db01") for c in commands)


def test_hostile_names_never_reach_a_shell_command(tmp_path: Path) -> None:
    report = rf.hostile_report()
    commands = _commands(render_html(report, tmp_path))
    mem_sets = [c for c in commands if c.startswith("xl mem-set")]
    assert len(mem_sets) == len(report.domains)
    domids = {str(d.domain.domid) for d in report.domains}
    for command in mem_sets:
        words = shlex.split(command)
        assert len(words) == 4 and words[2] in domids and words[3] == "768m", command
    for command in commands:
        if "patch -p1" in command or command.startswith("less "):
            assert shlex.split(command)[-1].startswith(str(tmp_path.resolve() / "patches"))


def test_empty_report(tmp_path: Path) -> None:
    text = inspect(render_html(rf.empty_report(), tmp_path)).text
    assert "No domains." in text
    assert "No hosts were read." in text
    # Nothing was read, which is not the same as "nothing to do".
    assert "No host could be read" in text
    assert "Nothing to do tonight" not in text
    assert "Nothing to apply tonight" not in text


def test_no_host_read_says_so(tmp_path: Path) -> None:
    report = rf.rich_report()
    broken = tuple(
        dataclasses.replace(h, view=None, plan=None, error="xl info: not running on Xen")
        for h in report.hosts
    )
    report = dataclasses.replace(report, hosts=broken, domains=())
    text = inspect(render_html(report, tmp_path)).text
    assert "No host could be read" in text
    assert "xl info: not running on Xen" in text
    assert "Nothing to apply tonight" not in text


def test_healthy_fleet_has_nothing_to_do(tmp_path: Path) -> None:
    report = rf.rich_report()
    healthy = tuple(d for d in report.domains if d.assessment.severity == "ok")
    assert healthy
    report = dataclasses.replace(report, domains=healthy)
    page = render_html(report, tmp_path)
    assert "Nothing to do tonight" in inspect(page).text
    assert 'class="actions stack"' not in page


def test_long_evidence_is_clipped(tmp_path: Path) -> None:
    ref = rf.reference_case()
    many = tuple(Evidence("kernlog", f"line {i} " + "x" * 3000, i) for i in range(MAX_EVIDENCE + 5))
    finding = Finding("shortage", "critical", "Many", "Many lines.", many)
    odd = dataclasses.replace(
        ref, assessment=dataclasses.replace(ref.assessment, findings=(finding,))
    )
    page = render_html(AuditReport(rf.GENERATED_AT, "0.1.0", (), (odd,)), tmp_path)
    assert "5 more lines of evidence in report.json" in page
    assert page.count("more characters in report.json") == MAX_EVIDENCE
    assert len(page) < 300_000


# --- templates ------------------------------------------------------------------


def test_templates_found_in_the_checkout() -> None:
    assert REPO / "templates" in template_dirs()


def test_autoescape_is_on_for_every_template() -> None:
    env = make_environment()
    assert env.autoescape("report.html.j2") is True  # type: ignore[operator]
    assert env.autoescape("partials/anything.css.j2") is True  # type: ignore[operator]
    assert env.from_string("{{ x }}").render(x="<b>") == "&lt;b&gt;"


def test_earlier_template_dirs_win(tmp_path: Path) -> None:
    (tmp_path / "partials").mkdir()
    (tmp_path / "partials" / "apply.html.j2").write_text("<p>overridden {{ steps|length }}</p>\n")
    env = make_environment([tmp_path, REPO / "templates"])
    page = render_html(rf.rich_report(), tmp_path, env)
    assert "<p>overridden 3</p>" in page
    assert 'id="overview"' in page


def test_missing_templates_is_a_format_error(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match="templates not found"):
        make_environment([])


def test_written_file(tmp_path: Path) -> None:
    (path,) = HtmlFormat().write(rf.rich_report(), tmp_path)
    assert path == tmp_path / "report.html"
    data = path.read_bytes()
    assert data.startswith(b"<!DOCTYPE html>")
    assert b'<meta charset="utf-8">' in data[:200]
    data.decode("utf-8")


def test_domains_are_grouped_by_host_when_there_are_several(tmp_path: Path) -> None:
    report = rf.rich_report()
    page = render_html(report, tmp_path)
    hosts_with_domains = sorted({d.host for d in report.domains})
    assert len(hosts_with_domains) > 1
    headings = re.findall(r'<h3 class="hostgroup">On <bdi>([^<]*)</bdi>', page)
    assert headings == [html.escape(h) for h in hosts_with_domains]
    # every domain card follows the heading of its own host
    for domain in report.domains:
        card = page.index(f"<bdi>{html.escape(domain.name)}</bdi> <small>on")
        before = [
            page.rfind(f'hostgroup">On <bdi>{html.escape(h)}</bdi>', 0, card) for h in headings
        ]
        assert max(range(len(headings)), key=lambda i: before[i]) == headings.index(
            html.escape(domain.host)
        )


def test_libvirt_defined_domains_get_virsh_commands(tmp_path: Path) -> None:
    from xenaudit.analysis.interface import Recommendation
    from xenaudit.report import HostReport

    rec = Recommendation(768, 1024, ("sized",), "high", 500, "increase", live_change_safe=True)
    base = rf.reference_case("lv-web", "dom0-lv")
    dom = dataclasses.replace(
        base,
        assessment=dataclasses.replace(base.assessment, recommendation=rec),
        patch_path=None,
        patch_text=None,
    )
    host = HostReport("dom0-lv", "libvirt", None, None, uri="xen+ssh://root@dom0b/system")
    report = AuditReport("2026-11-25T02:30:00Z", "0.1.0", (host,), (dom,))
    page = html.unescape(render_html(report, tmp_path))
    assert "virsh -c xen+ssh://root@dom0b/system setmaxmem lv-web 1024M --config" in page
    assert "virsh -c xen+ssh://root@dom0b/system setmem lv-web 768M --config" in page
    assert "virsh -c xen+ssh://root@dom0b/system setmem lv-web 768M --live" in page
    assert "xl mem-set lv-web" not in page
