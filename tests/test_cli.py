"""The top-level command line: every stage's command is reachable, and cheap ones stay cheap."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from xenaudit.cli import ALL_FORMATS, STAGE_COMMANDS, build_parser, main
from xenaudit.formats import FORMAT_NAMES


def test_audit_format_names_match_the_registry() -> None:
    assert ALL_FORMATS == FORMAT_NAMES


def test_help_lists_every_command_and_the_exit_codes(capsys) -> None:
    try:
        main(["--help"])
    except SystemExit as exc:
        assert exc.code == 0
    out = capsys.readouterr().out
    for name in ("audit", *STAGE_COMMANDS):
        assert name in out
    assert "incomplete" in out and "--fail-on" in out


def test_each_stage_command_has_its_own_help(capsys) -> None:
    for name in STAGE_COMMANDS:
        try:
            build_parser(name).parse_args([name, "--help"])
        except SystemExit as exc:
            assert exc.code == 0
        assert f"usage: xenaudit {name}" in capsys.readouterr().out


def test_logscan_does_not_import_the_audit_pipeline(tmp_path) -> None:
    log = tmp_path / "kern.log"
    log.write_text("[ 12.5] swapper: page allocation failure. order:0, mode:0x20\n")
    code = (
        "import sys; from xenaudit.cli import main; rc = main(['logscan', '--json', sys.argv[1]]);"
        "heavy = [m for m in ('paramiko', 'jinja2', 'xenaudit.audit') if m in sys.modules];"
        "print('HEAVY', heavy, file=sys.stderr); raise SystemExit(rc)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(log)], capture_output=True, text=True, check=True
    )
    event = json.loads(result.stdout.splitlines()[0])
    assert event["process"] == "swapper" and event["order"] == 0
    assert "HEAVY []" in result.stderr


def test_unknown_format_is_a_usage_error(tmp_path, capsys) -> None:
    assert main(["audit", "--demo", "-o", str(tmp_path / "o"), "--format", "html,pdf"]) == 2
    assert "unknown format 'pdf'" in capsys.readouterr().err


def test_without_inventory_the_default_path_is_named(tmp_path, capsys, monkeypatch) -> None:
    import xenaudit.cli as cli

    monkeypatch.setattr(cli, "DEFAULT_INVENTORY", tmp_path / "missing.toml")
    assert main(["audit", "-o", str(tmp_path / "o")]) == 2
    assert str(tmp_path / "missing.toml") in capsys.readouterr().err


def test_default_inventory_is_used_when_present(tmp_path, capsys, monkeypatch) -> None:
    import xenaudit.cli as cli

    inventory = tmp_path / "inventory.toml"
    inventory.write_text('[[hypervisor]]\nname = "a"\nbackend = "xapi"\n')
    monkeypatch.setattr(cli, "DEFAULT_INVENTORY", inventory)
    assert main(["audit", "-o", str(tmp_path / "o")]) == 2
    assert f"{inventory}: hypervisor[0].backend" in capsys.readouterr().err


def _run_with_stderr_on_a_terminal(args: list[str]) -> tuple[int, str]:
    """Run the CLI with stderr on a pseudo-terminal, as an admin at a shell would."""
    import os
    import pty

    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "xenaudit", *args],
        stdout=subprocess.DEVNULL,
        stderr=follower,
        stdin=subprocess.DEVNULL,
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 4096)
        except OSError:  # the terminal closed when the process ended
            break
        if not data:
            break
        chunks.append(data)
    os.close(leader)
    return proc.wait(), b"".join(chunks).decode(errors="replace")


def test_progress_on_a_terminal_and_silence_otherwise(tmp_path) -> None:
    code, shown = _run_with_stderr_on_a_terminal(["audit", "--demo", "-o", str(tmp_path / "a")])
    assert code == 3
    assert "xen-demo/web-frontend: ok" in shown
    assert "xen-demo/mail-relay: unreachable" in shown

    quiet = subprocess.run(
        [sys.executable, "-m", "xenaudit", "audit", "--demo", "-o", str(tmp_path / "b")],
        capture_output=True,
        text=True,
    )
    assert quiet.returncode == 3
    assert "web-frontend: ok" not in quiet.stderr
    code, shown = _run_with_stderr_on_a_terminal(
        ["audit", "--demo", "-q", "-o", str(tmp_path / "c")]
    )
    assert "web-frontend: ok" not in shown


def test_quiet_still_prints_errors_naming_the_host_once(tmp_path) -> None:
    inventory = tmp_path / "inventory.toml"
    inventory.write_text(
        '[[hypervisor]]\nname = "dom0a"\nbackend = "libvirt"\nuri = "test:///does/not/exist.xml"\n'
    )
    command = ["audit", "-q", "-i", str(inventory), "-o", str(tmp_path / "out")]
    command += ["--state-dir", str(tmp_path / "state")]  # not the machine's history store
    done = subprocess.run(
        [sys.executable, "-m", "xenaudit", *command],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 3
    lines = done.stderr.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("xenaudit: dom0a: libvirt")
    assert "dom0a: dom0a" not in done.stderr
    page = (tmp_path / "out" / "report.html").read_text()
    assert "No host could be read" in page
    assert "dom0a: dom0a" not in page

    demo = subprocess.run(
        [sys.executable, "-m", "xenaudit", "audit", "--demo", "-q", "-o", str(tmp_path / "d")],
        capture_output=True,
        text=True,
    )
    assert demo.returncode == 3
    assert "xen-demo/mail-relay: unreachable" in demo.stderr
    assert "web-frontend" not in demo.stderr


def test_audit_help_describes_output_and_root() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "xenaudit", "audit", "--help"],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    text = " ".join(done.stdout.split())
    assert "-o OUTDIR, --output OUTDIR folder for report.html" in text
    assert "--root DIR treat DIR as /" in text
