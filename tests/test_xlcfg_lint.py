"""Lint rules on real corpus files and small hand-made cases.

Expected findings come from reading the files and xl.cfg(5) / xl_parse.c.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_xlcfg_parse import CORPUS, DATA
from xenaudit.xlcfg import LintProblem, lint, parse, set_value
from xenaudit.xlcfg.editor import Raw
from xenaudit.xlcfg.options import DOCUMENTED, KNOWN_KEYS, XM_ONLY


def codes(problems: list[LintProblem]) -> set[str]:
    return {p.code for p in problems}


def find(problems: list[LintProblem], code: str) -> LintProblem:
    matches = [p for p in problems if p.code == code]
    assert len(matches) == 1, problems
    return matches[0]


def test_xen_tools_home_is_unknown(corpus: Path) -> None:
    problems = lint(parse((corpus / "xlcfg_babrakov_krs23.ru.cfg").read_bytes()))
    p = find(problems, "unknown-key")
    assert (p.line, p.column, p.severity) == (21, 1, "warning")  # "home        = ..."
    assert "`home'" in p.message


def test_xen_tools_dhcp_is_an_unknown_xm_option(corpus: Path) -> None:
    problems = lint(parse((corpus / "xlcfg_xentools4.9.2_noble_maxmem.cfg").read_bytes()))
    p = find(problems, "unknown-key")
    assert "`dhcp'" in p.message and "xm" in p.message
    assert p.line == 41
    # PV guest with maxmem 65536 > memory 16384: ballooning is fine for PV
    assert "hvm-maxmem-above-memory" not in codes(problems)
    assert "maxmem-below-memory" not in codes(problems)


def test_noble_maxmem_as_hvm_warns_about_populate_on_demand(corpus: Path) -> None:
    cfg = set_value(
        parse((corpus / "xlcfg_xentools4.9.2_noble_maxmem.cfg").read_bytes()), "type", "hvm"
    )
    p = find(lint(cfg), "hvm-maxmem-above-memory")
    assert p.line == 16  # the maxmem line
    assert "balloon driver" in p.message and "16384" in p.message and "65536" in p.message


def test_windows_builder_hvm(corpus: Path) -> None:
    cfg = parse((corpus / "xlcfg_babrakov_windows.cfg").read_bytes())
    problems = lint(cfg)
    assert codes(problems) == {"deprecated-key"}
    assert find(problems, "deprecated-key").line == 1
    # no maxmem: maxmem == memory, no populate-on-demand risk ...
    assert "hvm-maxmem-above-memory" not in codes(problems)
    # ... until maxmem is raised above memory on this HVM guest
    raised = lint(set_value(cfg, "maxmem", 2048))
    assert find(raised, "hvm-maxmem-above-memory").line == 4


@pytest.mark.parametrize(
    "name",
    [
        "xlcfg_xen_xlexample.hvm",
        "xlcfg_xen_xlexample.pvlinux",
        "xlcfg_xen_xlexample.pvhlinux",
        "xlcfg_babrakov_docker.cfg",
        "xlcfg_babrakov_zabbix.cfg",
    ],
)
def test_clean_files_have_no_problems(corpus: Path, name: str) -> None:
    assert lint(parse((corpus / name).read_bytes())) == []


@pytest.mark.parametrize("name", CORPUS)
def test_corpus_keys_known_except_xen_tools_extras(corpus: Path, name: str) -> None:
    cfg = parse((corpus / name).read_bytes())
    unknown = {k for k in cfg if k not in KNOWN_KEYS}
    assert unknown <= {"home", "dhcp"}
    assert {
        p.message.split("`")[1].split("'")[0] for p in lint(cfg) if p.code == "unknown-key"
    } == (unknown)


def test_memory_slack_is_not_an_xl_option() -> None:
    p = find(lint(parse(b"memory = 512\nmemory_slack = 64\n")), "unknown-key")
    assert (p.line, "`memory_slack'" in p.message) == (2, True)


@pytest.mark.parametrize(
    ("data", "line"),
    [
        (b"memory = '1G'\n", 1),
        (b"memory = [512]\n", 1),
        (b"memory = 0x\n", 1),
        (b"maxmem = '2048 '\n", 1),
    ],
)
def test_non_integer_memory(data: bytes, line: int) -> None:
    p = find(lint(parse(data)), "non-integer-memory")
    assert (p.line, p.severity) == (line, "error")


def test_plus_equal_memory_is_flagged() -> None:
    p = find(lint(parse((DATA / "plus_memory.cfg").read_bytes())), "non-integer-memory")
    assert p.line == 3 and "+=" in p.message


def test_maxmem_below_memory() -> None:
    p = find(lint(parse(b"memory = 2048\nmaxmem = '1024'\n")), "maxmem-below-memory")
    assert (p.line, p.severity) == (2, "error")


@pytest.mark.parametrize("hvm", [b'type = "hvm"\n', b'builder = "hvm"\n'])
def test_hvm_maxmem_above_memory(hvm: bytes) -> None:
    problems = lint(parse(hvm + b"memory = 1024\nmaxmem = 4096\n"))
    assert find(problems, "hvm-maxmem-above-memory").line == 3


def test_pvh_maxmem_above_memory_warns_about_populate_on_demand(corpus: Path) -> None:
    # Xen's own PVH example with maxmem raised above its memory = 512: libxl starts every
    # non-PV guest with memory < maxmem in populate-on-demand mode.
    example = parse((corpus / "xlcfg_xen_xlexample.pvhlinux").read_bytes())
    assert lint(example) == []
    p = find(lint(set_value(example, "maxmem", 2048)), "hvm-maxmem-above-memory")
    assert p.severity == "warning"
    assert "PVH guest" in p.message and "populate-on-demand" in p.message
    assert "512" in p.message and "2048" in p.message


def test_passthrough_with_maxmem_above_memory_cannot_start(corpus: Path) -> None:
    windows = parse((corpus / "xlcfg_babrakov_windows.cfg").read_bytes())
    with_device = set_value(windows, "pci", Raw("[ '0000:03:00.0' ]"))
    assert "passthrough-pod" not in codes(lint(with_device))
    p = find(lint(set_value(with_device, "maxmem", 4096)), "passthrough-pod")
    assert p.severity == "error"
    assert "libxl refuses" in p.message and "pci/dtdev = 1 device(s)" in p.message
    assert "hvm-maxmem-above-memory" not in codes(lint(set_value(with_device, "maxmem", 4096)))
    # passthrough= other than "disabled" gives the domain an IOMMU even without devices.
    iommu = set_value(set_value(windows, "passthrough", "sync_pt"), "maxmem", 4096)
    assert 'passthrough = "sync_pt"' in find(lint(iommu), "passthrough-pod").message
    off = set_value(set_value(windows, "passthrough", "disabled"), "maxmem", 4096)
    assert "passthrough-pod" not in codes(lint(off))
    assert "hvm-maxmem-above-memory" in codes(lint(off))
    # A PV guest has no PoD: passthrough with maxmem above memory starts.
    pv = parse((corpus / "xlcfg_xen_xlexample.pvlinux").read_bytes())
    pv = set_value(set_value(pv, "pci", Raw("[ '0000:03:00.0' ]")), "maxmem", 4096)
    assert "passthrough-pod" not in codes(lint(pv))


def test_vnuma_refuses_populate_on_demand() -> None:
    cfg = parse(b'type = "hvm"\nmemory = 1024\nmaxmem = 2048\nvnuma = [ [ "pnode=0" ] ]\n')
    assert find(lint(cfg), "vnuma-pod").severity == "error"


def test_xm_leftovers() -> None:
    cfg = parse(
        b'builder = "hvm"\n'
        b'kernel = "/usr/lib/xen/boot/hvmloader"\n'
        b'device_model = "/usr/lib/xen/bin/qemu-dm"\n'
        b"vfb = [ 'type=vnc,vncdisplay=1' ]\n"
        b"vncviewer = 1\n"
    )
    leftovers = [p for p in lint(cfg) if p.code == "xm-leftover"]
    assert [p.line for p in leftovers] == [2, 3, 4, 5]
    assert "hvmloader" in leftovers[0].message


def test_hvmloader_kernel_on_pv_is_not_the_xm_idiom() -> None:
    cfg = parse(b'kernel = "/usr/lib/xen/boot/hvmloader"\n')
    assert "xm-leftover" not in codes(lint(cfg))


def test_overridden_assignment() -> None:
    problems = lint(parse(b"memory = 512\nmemory = 1024\nextra = 'a'\nextra += 'b'\n"))
    p = find(problems, "overridden")
    assert (p.line, p.severity) == (1, "info")  # extra += builds on, not overridden


@pytest.mark.parametrize(
    ("data", "line"),
    [(b"type = 'xen'\n", 1), (b"builder = 'linux'\n", 1), (b"type = 'pv'\nbuilder = 'hvm'\n", 2)],
)
def test_invalid_type(data: bytes, line: int) -> None:
    p = find(lint(parse(data)), "invalid-type")
    assert (p.line, p.severity) == (line, "error")


def test_option_lists() -> None:
    # a few keys from each source, read in xl.cfg.5.pod.in / xl_parse.c / xm create.py
    assert {"memory", "maxmem", "type", "builder", "vnuma", "vpmu"} <= DOCUMENTED
    assert {"period", "slice", "display", "device_model"} <= KNOWN_KEYS - DOCUMENTED
    assert {"dhcp", "vcpu_avail", "cpu_cap"} <= XM_ONLY
    assert not XM_ONLY & KNOWN_KEYS
    assert "memory_slack" not in KNOWN_KEYS and "home" not in KNOWN_KEYS


def test_problem_is_frozen() -> None:
    p = LintProblem(1, 1, "x", "info", "m")
    with pytest.raises(AttributeError):
        p.line = 2  # type: ignore[misc]
