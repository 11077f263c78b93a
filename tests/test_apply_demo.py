"""The real pipeline's report, applied: the demo audit's patches land on a staged /etc/xen."""

from __future__ import annotations

import html
import json
import shutil
from pathlib import Path

import pytest

from tests.test_apply_support import log_records, run_apply
from xenaudit.xlcfg import parse


@pytest.fixture
def demo(tmp_path: Path) -> tuple[Path, Path, dict, dict[str, bytes]]:
    cli = pytest.importorskip("xenaudit.cli")
    demo_pkg = pytest.importorskip("xenaudit.demo")
    report = tmp_path / "report"
    cli.main(["audit", "--demo", "-o", str(report), "-q"])
    document = json.loads((report / "report.json").read_text())

    # Stage the demo's cfgs where the report says they live.
    cfg_dir = Path(demo_pkg.FLEET_DIR) / "_cfg"
    index = json.loads((cfg_dir / "index.json").read_text())
    root = tmp_path / "root"
    originals: dict[str, bytes] = {}
    for entries in index.values():
        for entry in entries.values():
            target = root / entry["path"].lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(cfg_dir / entry["file"], target)
            originals[entry["path"]] = target.read_bytes()
    return report, root, document, originals


def test_demo_report_applies_and_undoes_cleanly(
    demo: tuple[Path, Path, dict, dict[str, bytes]], capsys: pytest.CaptureFixture[str]
) -> None:
    report, root, document, originals = demo
    proposed = [d for d in document["domains"] if d["patch"] and d["recommendation"]]
    assert proposed, "the demo proposes no change; nothing to apply"

    assert run_apply(report, "--root", root, "--yes", "--live") == 0
    assert "this is a demo report" in capsys.readouterr().out
    for domain in proposed:
        path = domain["config"]["path"]
        cfg = parse((root / path.lstrip("/")).read_bytes(), path)
        rec = domain["recommendation"]
        assert (cfg.memory_mib, cfg.maxmem_mib) == (rec["memory_mib"], rec["maxmem_mib"])
    untouched = set(originals) - {d["config"]["path"] for d in proposed}
    for path in untouched:
        assert (root / path.lstrip("/")).read_bytes() == originals[path]
    # The demo's hosts are recordings: no live command was even tried.
    assert not [r for r in log_records(root) if r["event"] == "live"]

    assert run_apply(report, "--root", root, "--yes", "--undo") == 0
    for path, data in originals.items():
        assert (root / path.lstrip("/")).read_bytes() == data


def test_demo_sandbox_apply_again_and_undo_end_to_end(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """What a newcomer is told to try: the demo's own sandbox, the command from its report."""
    import shlex
    import subprocess
    import sys

    from tests.test_apply_support import subprocess_env

    out = tmp_path / "demo out"
    done = subprocess.run(
        [sys.executable, "-m", "xenaudit", "audit", "--demo", "-o", str(out)],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        check=False,
    )
    sandbox = out / "demo-root"
    cfgs = sorted((sandbox / "etc" / "xen").glob("*.cfg"))
    from xenaudit.demo import FLEET_DIR

    index = json.loads((FLEET_DIR / "_cfg" / "index.json").read_text())
    assert len(cfgs) == sum(len(entries) for entries in index.values()) == 13, done.stderr
    originals = {p: p.read_bytes() for p in cfgs}
    # The command the terminal and the report's "How to apply" give, taken as written.
    quoted = shlex.quote(str(out.resolve())), shlex.quote(str(sandbox.resolve()))
    command = f"xenaudit apply {quoted[0]} --root {quoted[1]}"
    assert command in done.stdout
    page = html.unescape((out / "report.html").read_text())
    assert command in page
    assert f"{command} --undo" in page
    words = shlex.split(command)[2:]

    document = json.loads((out / "report.json").read_text())
    proposed = [d for d in document["domains"] if d["patch"] and d["recommendation"]]
    assert run_apply(*words, "--yes") == 0
    shown = capsys.readouterr().out
    for domain in proposed:
        path = sandbox / domain["config"]["path"].lstrip("/")
        cfg = parse(path.read_bytes(), str(path))
        rec = domain["recommendation"]
        assert (cfg.memory_mib, cfg.maxmem_mib) == (rec["memory_mib"], rec["maxmem_mib"])
        # Under --root the real file written is named.
        assert f"applied: {path.resolve()}" in shown

    assert run_apply(*words, "--yes") == 0
    again = capsys.readouterr().out
    assert again.count("already applied") == len(proposed)
    assert "stale patch" not in again

    assert run_apply(*words, "--yes", "--undo") == 0
    for path, data in originals.items():
        assert path.read_bytes() == data
