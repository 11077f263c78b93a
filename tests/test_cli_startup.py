"""The quick commands load only what they use.

`--version`, every `--help`, `cfg show` and `logscan` must start at once
(benchmarks/startup.py times them). What keeps them quick is which modules
they import, and that is what these tests pin down: each command runs in a
fresh interpreter, which then lists its `sys.modules`. A stage module, an
analysis import or a heavy library on one of these paths fails here long
before anyone notices a slow start.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import corpus_dir

# Runs main(argv) and writes the modules loaded at start and at exit.
_DRIVER = """\
import atexit, sys
out, argv = sys.argv[1], sys.argv[2:]
start = sorted(sys.modules)
def dump():
    with open(out, "w") as f:
        f.write(" ".join(start) + "\\n" + " ".join(sorted(sys.modules)) + "\\n")
atexit.register(dump)
from xenaudit.cli import main
sys.argv = ["xenaudit", *argv]
raise SystemExit(main(argv))
"""

#: Never needed by a quick command.
HEAVY = (
    "paramiko",
    "jinja2",
    "cryptography",
    "sqlite3",
    "libvirt",
    "xenaudit.analysis",
    "xenaudit.audit",
    "xenaudit.collector",
    "xenaudit.formats",
    "xenaudit.inventory",
    "xenaudit.snapshots",
)

#: Standard-library modules that cost a noticeable share of a start and that
#: the argument parser and the cfg reader do without (shutil, with zlib, bz2 and
#: lzma, is what argparse's help formatter imports for the terminal width).
STDLIB_NOT_FOR_HELP = (
    "dataclasses",
    "typing",
    "pathlib",
    "inspect",
    "tempfile",
    "json",
    "shutil",
    "bz2",
    "lzma",
)


def _modules(tmp_path: Path, *argv: str) -> set[str]:
    """The modules that running the command added to those of a bare interpreter."""
    out = tmp_path / "modules.txt"
    result = subprocess.run(
        [sys.executable, "-c", _DRIVER, str(out), *argv],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    start, end = (set(line.split()) for line in out.read_text().splitlines())
    return end - start


def _loaded(modules: set[str], names: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if any(m == n or m.startswith(n + ".") for n in names))


#: Small helpers any command may use (terminal-safe text, counted words).
HELPERS = {"xenaudit.printable", "xenaudit.wording"}


def _own(modules: set[str]) -> set[str]:
    """xenaudit's own modules, without the small helpers."""
    return {m for m in modules if m == "xenaudit" or m.startswith("xenaudit.")} - HELPERS


@pytest.mark.parametrize(
    ("argv", "stage"),
    [
        (("--version",), ()),
        (("--help",), ()),
        (("audit", "--help"), ()),
        (("domains", "--help"), ("xenaudit.hypervisor", "xenaudit.hypervisor.cli")),
        (("logscan", "--help"), ("xenaudit.logscan", "xenaudit.logscan.cli")),
        (
            ("apply", "--help"),
            ("xenaudit.apply", "xenaudit.apply.cli", "xenaudit.apply.defaults"),
        ),
        (("cfg", "--help"), ("xenaudit.xlcfg", "xenaudit.lazyexports", "xenaudit.xlcfg.cli")),
        (
            ("merge", "--help"),
            ("xenaudit.fleet", "xenaudit.fleet.cli", "xenaudit.fleet.defaults"),
        ),
        (
            ("cfg", "show", "--help"),
            ("xenaudit.xlcfg", "xenaudit.lazyexports", "xenaudit.xlcfg.cli"),
        ),
    ],
)
def test_help_and_version_load_only_the_parser(
    tmp_path: Path, argv: tuple[str, ...], stage: tuple[str, ...]
) -> None:
    added = _modules(tmp_path, *argv)
    assert _own(added) == {"xenaudit", "xenaudit.cli", *stage}
    assert _loaded(added, HEAVY) == []
    assert _loaded(added, STDLIB_NOT_FOR_HELP) == []


def test_cfg_show_loads_the_reader_only(tmp_path: Path) -> None:
    cfg = corpus_dir() / "xlcfg_xen_xlexample.hvm"
    added = _modules(tmp_path, "cfg", "show", str(cfg))
    own = _own(added)
    assert "xenaudit.xlcfg.config" in own
    assert own <= {
        "xenaudit",
        "xenaudit.cli",
        "xenaudit.lazyexports",
        "xenaudit.xlcfg",
        "xenaudit.xlcfg.cli",
        "xenaudit.xlcfg.config",
        "xenaudit.xlcfg.errors",
        "xenaudit.xlcfg.lexer",
        "xenaudit.xlcfg.numbers",
        "xenaudit.xlcfg.options",
        "xenaudit.xlcfg.quoting",
        "xenaudit.xlcfg.syntax",
    }, "the editor, linter and diff are for cfg set and cfg lint"
    assert _loaded(added, HEAVY) == []
    assert _loaded(added, STDLIB_NOT_FOR_HELP) == []


def test_cfg_show_json_writes_plain_values_without_json(tmp_path: Path) -> None:
    cfg = corpus_dir() / "xlcfg_xen_xlexample.hvm"
    added = _modules(tmp_path, "cfg", "show", "--json", str(cfg))
    assert "xenaudit.xlcfg.config" in _own(added)
    assert _loaded(added, STDLIB_NOT_FOR_HELP) == []


def test_cfg_show_json_output_is_unchanged_by_lazy_imports(tmp_path: Path) -> None:
    cfg = corpus_dir() / "xlcfg_xen_xlexample.hvm"
    result = subprocess.run(
        [sys.executable, "-m", "xenaudit", "cfg", "show", "--json", str(cfg)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert '"memory": 128' in result.stdout


def test_logscan_loads_the_kernel_log_parser_only(tmp_path: Path) -> None:
    log = corpus_dir() / "pagealloc_2.6.32-358.el6_redhat_swapper_order1.log"
    added = _modules(tmp_path, "logscan", "--json", str(log))
    own = _own(added)
    assert "xenaudit.parsers.kernlog" in own
    assert {m for m in own if not m.startswith(("xenaudit.parsers", "xenaudit.logscan"))} == {
        "xenaudit",
        "xenaudit.cli",
        "xenaudit.lazyexports",
    }
    assert _loaded(added, (*HEAVY, "xenaudit.hypervisor", "xenaudit.xlcfg")) == []
    assert _loaded(added, ("multiprocessing", "concurrent")) == [], "only for large files"
    assert _loaded(added, ("shutil", "bz2", "lzma")) == []
    assert _loaded(added, ("quopri",)) == [], "only for logs pasted from mail"


@pytest.mark.parametrize("columns", [None, "100", "0", "-3", "wide", "41"])
def test_help_is_as_wide_as_argparse_makes_it(
    monkeypatch: pytest.MonkeyPatch, columns: str | None
) -> None:
    """The width the parser finds without shutil is the one shutil finds."""
    import shutil

    from xenaudit.cli import _terminal_columns, build_parser

    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", columns)
    assert _terminal_columns() == shutil.get_terminal_size().columns
    ours = build_parser("cfg").format_help()
    monkeypatch.setattr(
        "xenaudit.cli._Parser._get_formatter", argparse.ArgumentParser._get_formatter
    )
    assert ours == build_parser("cfg").format_help()
