"""contrib/: the systemd units and the cron line really run a night, publish and prune."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SERVICE = REPO / "contrib" / "systemd" / "xenaudit.service"
TIMER = REPO / "contrib" / "systemd" / "xenaudit.timer"
CRON = REPO / "contrib" / "cron" / "xenaudit"
RUN_DIR = re.compile(r"^\d{4}-\d\d-\d\dT\d{4}$")

FAKE_XENAUDIT = """#!/bin/sh
# Stands in for xenaudit: writes what a run writes into -o DIR, exits with $FAKE_RC.
out=""
while [ $# -gt 0 ]; do
  if [ "$1" = "-o" ]; then out="$2"; shift; fi
  shift
done
if [ "$FAKE_RC" != 2 ]; then
  mkdir -p "$out/patches"
  echo "<!DOCTYPE html>" > "$out/report.html"
  echo "xenaudit_audit_success 1" > "$out/xenaudit.prom"
fi
exit "$FAKE_RC"
"""


def unit_settings(path: Path) -> dict[str, list[str]]:
    """Key -> values of a unit file, continuation lines joined the way systemd does."""
    text = re.sub(r"\\\n", " ", path.read_text())
    settings: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def systemd_unescape(word: str) -> str:
    """What the process sees of a word after systemd's specifier and $ processing."""
    return word.replace("%%", "%").replace("$$", "$")


def make_fake(tmp_path: Path) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "xenaudit"
    fake.write_text(FAKE_XENAUDIT)
    fake.chmod(0o755)
    return fake


def age_dir(path: Path, days: int) -> None:
    path.mkdir(parents=True)
    (path / "report.html").write_text("old")
    then = time.time() - days * 86400
    os.utime(path, (then, then))


def test_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    for unit in (SERVICE, TIMER):
        shutil.copy(unit, tmp_path / unit.name)
    done = subprocess.run(
        [analyze, "verify", str(tmp_path / SERVICE.name), str(tmp_path / TIMER.name)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Unknown key" not in done.stderr and "ignoring" not in done.stderr, done.stderr


def test_service_settings() -> None:
    s = unit_settings(SERVICE)
    assert s["Type"] == ["oneshot"]
    assert s["NoNewPrivileges"] == ["yes"]
    assert s["ProtectHome"] == ["read-only"]
    assert s["PrivateTmp"] == ["yes"]
    assert "/var/lib/xenaudit" in s["ReadWritePaths"]
    # xl needs /dev/xen and /proc/xen: these would break it.
    assert "PrivateDevices" not in s and "ProtectKernelTunables" not in s
    assert s["SuccessExitStatus"] == ["1"]
    t = unit_settings(TIMER)
    assert t["OnCalendar"] == ["*-*-* 02:30:00"]
    assert t["Persistent"] == ["true"]
    assert t["RandomizedDelaySec"] == ["30min"]
    assert t["WantedBy"] == ["timers.target"]


def test_a_crashed_night_fails_the_unit() -> None:
    """Exit 4 (an internal error) must leave the unit failed, never pass for a normal night."""
    from xenaudit.cli import EXIT_CRASH

    success = {
        code
        for value in unit_settings(SERVICE).get("SuccessExitStatus", [])
        for code in value.split()
    }
    assert EXIT_CRASH == 4
    assert str(EXIT_CRASH) not in success
    # systemd counts only 0 and the listed codes as success.
    assert success <= {"0", "1"}


def _service_script(fake: Path) -> str:
    (exec_start,) = unit_settings(SERVICE)["ExecStart"]
    words = [systemd_unescape(w) for w in shlex.split(exec_start)]
    assert words[:2] == ["/bin/sh", "-c"] and len(words) == 3
    assert "/usr/local/bin/xenaudit audit" in words[2]
    return words[2].replace("/usr/local/bin/xenaudit", str(fake))


@pytest.mark.parametrize("rc", [0, 1, 3, 4])
def test_service_night_publishes_and_prunes(tmp_path: Path, rc: int) -> None:
    fake = make_fake(tmp_path)
    reports, textfile = tmp_path / "reports", tmp_path / "textfile"
    textfile.mkdir()
    age_dir(reports / "2000-01-01T0230", days=60)
    age_dir(reports / "2000-02-01T0230", days=3)
    env = {
        "PATH": os.environ["PATH"],
        "REPORTS": str(reports),
        "KEEP_DAYS": "30",
        "TEXTFILE_DIR": str(textfile),
        "FAKE_RC": str(rc),
    }
    done = subprocess.run(
        ["/bin/sh", "-c", _service_script(fake)], env=env, capture_output=True, timeout=60
    )
    assert done.returncode == rc, done.stderr
    latest = reports / "latest"
    assert latest.is_symlink()
    run_dir = Path(os.readlink(latest))
    assert RUN_DIR.match(run_dir.name) and run_dir.parent == reports
    assert (latest / "report.html").is_file()
    assert (textfile / "xenaudit.prom").read_text() == "xenaudit_audit_success 1\n"
    assert [p.name for p in textfile.iterdir()] == ["xenaudit.prom"]
    assert not (reports / "2000-01-01T0230").exists()
    assert (reports / "2000-02-01T0230").is_dir()


def test_service_failed_run_keeps_latest(tmp_path: Path) -> None:
    fake = make_fake(tmp_path)
    reports = tmp_path / "reports"
    age_dir(reports / "2000-02-01T0230", days=1)
    (reports / "latest").symlink_to(reports / "2000-02-01T0230")
    env = {
        "PATH": os.environ["PATH"],
        "REPORTS": str(reports),
        "KEEP_DAYS": "30",
        "TEXTFILE_DIR": str(tmp_path / "absent"),
        "FAKE_RC": "2",
    }
    done = subprocess.run(
        ["/bin/sh", "-c", _service_script(fake)], env=env, capture_output=True, timeout=60
    )
    assert done.returncode == 2
    assert os.readlink(reports / "latest") == str(reports / "2000-02-01T0230")
    assert not (tmp_path / "absent").exists()


def _cron_command(tmp_path: Path) -> tuple[str, dict[str, str]]:
    env: dict[str, str] = {}
    jobs: list[str] = []
    for line in CRON.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if re.match(r"^[A-Z_]+=", line):
            key, _, value = line.partition("=")
            env[key] = value
            continue
        jobs.append(line)
    (job,) = jobs
    fields = job.split(None, 6)
    assert fields[:5] == ["30", "2", "*", "*", "*"] and fields[5] == "root"
    command = fields[6]
    assert "%" not in command.replace("\\%", ""), "cron turns a bare % into a newline"
    command = command.replace("\\%", "%")
    command = command.replace("/var/lib/xenaudit/reports", str(tmp_path / "reports"))
    command = command.replace("/var/log/xenaudit.log", str(tmp_path / "xenaudit.log"))
    return command, env


def test_cron_night_runs_and_prunes(tmp_path: Path) -> None:
    if shutil.which("flock") is None:
        pytest.skip("flock is not installed")
    fake = make_fake(tmp_path)
    command, cron_env = _cron_command(tmp_path)
    assert cron_env["SHELL"] == "/bin/sh"
    age_dir(tmp_path / "reports" / "2000-01-01T0230", days=90)
    env = {"PATH": f"{fake.parent}:{cron_env['PATH']}", "FAKE_RC": "1"}
    done = subprocess.run(
        [cron_env["SHELL"], "-c", command], env=env, capture_output=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    latest = tmp_path / "reports" / "latest"
    assert RUN_DIR.match(Path(os.readlink(latest)).name)
    assert (latest / "report.html").is_file()
    assert not (tmp_path / "reports" / "2000-01-01T0230").exists()
