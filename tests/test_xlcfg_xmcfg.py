"""xm-era cfg files: read when they are plain assignments, refused (naming the line) otherwise.

Python itself is the judge of what a plain file means (it is what xend ran),
libxlutil of what xl reads; a patched plain file must still be both.
"""

from __future__ import annotations

import ast
import subprocess
from pathlib import Path

import pytest

from tests.libxlutil import LibXlutil, available
from xenaudit.cfgfiles import config_facts
from xenaudit.xlcfg.patch import propose_memory_patch
from xenaudit.xlcfg.xmcfg import XmCfgRefused, first_problem, parse_xm


def _python_values(data: bytes) -> dict[str, object]:
    """What `xm create` saw: run the plain file's assignments as literals (never exec)."""
    values: dict[str, object] = {}
    for statement in ast.parse(data.decode()).body:
        assert isinstance(statement, ast.Assign)
        target = statement.targets[0]
        assert isinstance(target, ast.Name)
        values[target.id] = ast.literal_eval(statement.value)
    return values


@pytest.mark.parametrize(
    ("sample", "memory", "guest_type", "name"),
    [
        ("xmcfg_ubuntuforums_intrepid.hvm", 1024, "hvm", "InrepidHVM"),
        ("xmcfg_ubuntuforums_intrepid.py", 4096, "pv", "IntrepidPV"),
    ],
)
def test_plain_xm_cfgs_read_as_xend_read_them(
    corpus: Path, sample: str, memory: int, guest_type: str, name: str
) -> None:
    data = (corpus / sample).read_bytes()
    cfg = parse_xm(data, f"/etc/xen/{sample}")
    assert (cfg.memory_mib, cfg.maxmem_mib, cfg.guest_type, cfg.name) == (
        memory,
        memory,
        guest_type,
        name,
    )
    python = _python_values(data)
    assert int(python["memory"]) == cfg.memory_mib and python["name"] == cfg.name  # type: ignore[call-overload]


def test_computed_cfg_is_refused_at_its_first_code_line(corpus: Path) -> None:
    with pytest.raises(XmCfgRefused) as caught:
        parse_xm((corpus / "xmcfg_xen_xmexample2_computed").read_bytes(), "/etc/xen/xmexample2")
    refused = caught.value
    assert refused.line == 23 and "defines Python code" in refused.reason
    assert str(refused).startswith("/etc/xen/xmexample2:23: 'def vmid_check(var, val):'")
    assert "proposes no patch" in str(refused)


def test_python_xl_cannot_read_is_refused_where_it_starts(corpus: Path) -> None:
    data = (corpus / "xmcfg_oracle_exadata_vm_dict_literal.cfg").read_bytes()
    with pytest.raises(XmCfgRefused) as caught:
        parse_xm(data, "vm.cfg")
    # Upper-case keys (line 11) come before the dict literal (line 24).
    assert caught.value.line == 11 and "OVM_simple_name" in str(caught.value)
    assert first_problem(data.decode()) is not None
    assert first_problem(data.decode()).line == 24  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ("memory = 512\nmemory += 256\n", 2, "augmented assignment"),
        ("import os\nmemory = 512\n", 1, "imports Python code"),
        ("memory = 512 * 2\n", 1, "computes its value"),
        ("acpi = True\n", 1, "Python constant"),
        ("cpus = ('0', '1')\n", 1, "Python value"),
        ("a = b = 1\n", 1, "one name"),
        ("if 1:\n    memory = 2\n", 1, "runs Python code"),
        ("memory = 0755\n", 1, "not Python 3 syntax"),
    ],
)
def test_what_counts_as_computing(text: str, line: int, reason: str) -> None:
    with pytest.raises(XmCfgRefused) as caught:
        parse_xm(text, "constructed.cfg")
    assert caught.value.line == line and reason in caught.value.reason


def test_cfg_facts_of_an_xm_dom0_carry_the_refusal(corpus: Path) -> None:
    data = (corpus / "xmcfg_xen_xmexample2_computed").read_bytes()
    facts = config_facts("/etc/xen/vm1", data, dialect="xm")
    assert facts.memory_mib is None and facts.error is not None and ":23:" in facts.error
    # The same bytes read as xl.cfg fail too, with xl's own report.
    assert "config parsing error" in (config_facts("/etc/xen/vm1", data).error or "")


def test_an_xl_plus_assign_is_fine_for_xl_but_refused_for_xm() -> None:
    data = b'memory = 512\nvif = [ "bridge=br0" ]\nvif += [ "bridge=br1" ]\n'
    assert config_facts("x.cfg", data).error is None
    assert "augmented" in (config_facts("x.cfg", data, dialect="xm").error or "")


def test_patch_of_a_plain_xm_cfg_stays_plain_and_applies(corpus: Path, tmp_path: Path) -> None:
    data = (corpus / "xmcfg_ubuntuforums_intrepid.hvm").read_bytes()
    target = tmp_path / "etc" / "xen" / "intrepid.hvm"
    target.parent.mkdir(parents=True)
    target.write_bytes(data)
    diff = propose_memory_patch("/etc/xen/intrepid.hvm", data, 1536, 1536)
    assert diff is not None
    subprocess.run(["patch", "-p1", "-s"], input=diff.encode(), cwd=tmp_path, check=True)
    patched = target.read_bytes()
    assert parse_xm(patched, "intrepid.hvm").memory_mib == 1536
    assert first_problem(patched.decode()) is None
    assert int(_python_values(patched)["memory"]) == 1536  # type: ignore[call-overload]
    # Every other byte is kept, the quotes around the number included.
    assert patched.replace(b'memory = "1536"', b'memory = "1024"') == data


@pytest.mark.skipif(not available(), reason="libxlutil.so not installed")
@pytest.mark.parametrize(
    "sample", ["xmcfg_ubuntuforums_intrepid.hvm", "xmcfg_ubuntuforums_intrepid.py"]
)
def test_libxlutil_reads_the_plain_xm_cfgs_the_same(corpus: Path, sample: str) -> None:
    data = (corpus / sample).read_bytes()
    xlu = LibXlutil()
    assert xlu.get_long(data, "memory") == (0, parse_xm(data).memory_mib)
