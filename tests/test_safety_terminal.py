"""Guest text never drives the admin's terminal: every line goes through printable().

A stand-in guest answers with an SSH banner full of escape sequences (set
the window title, erase the line, ring the bell) and the hypervisor lists a
domain whose name carries more. Progress and error lines must show them as
visible escapes, on a terminal, with -v and with -q alike.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fake_xl.support import use_fake_xl
from tests.standin.banner import BannerGuest
from tests.test_e2e_real_parts import cfg, xl_recordings
from xenaudit.printable import printable

REPO = Path(__file__).resolve().parent.parent
AUDIT = (sys.executable, "-m", "xenaudit", "audit")
TITLE = "\x1b]0;pwned\x07"
ERASE = "\x1b[2K\r"
BANNER = f"SSH-2.0{TITLE}-OpenSSH {ERASE}fine\r\n".encode()
NAME = "evil\x1b[2K\x07"


def test_printable_shows_controls_and_keeps_text() -> None:
    assert printable(f"a{TITLE}b") == "a\\x1b]0;pwned\\x07b"
    assert printable("x\u202eexe.cfg") == "x\\u202eexe.cfg"
    assert printable("two\nlines\tok") == "two\nlines\tok"
    assert printable("two\nlines", one_line=True) == "two\\x0alines"
    assert printable("naïve ünïcode") == "naïve ünïcode"


@pytest.mark.parametrize("verbosity", ["-v", "-q"])
def test_a_hostile_banner_and_name_reach_stderr_escaped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, verbosity: str
) -> None:
    with BannerGuest(BANNER) as guest:
        use_fake_xl(
            monkeypatch, xl_recordings(tmp_path / "xl", [("banner", 3, 512), (NAME, 4, 512)])
        )
        cfg(tmp_path / "etc", "banner", 512)
        inventory = tmp_path / "inventory.toml"
        inventory.write_text(
            f'state_dir = "{tmp_path / "state"}"\n'
            f'[[hypervisor]]\nname = "dom0-xl"\nbackend = "xl"\ncfg_dir = "{tmp_path / "etc"}"\n'
            f'[ssh]\nknown_hosts = "{tmp_path / "known_hosts"}"\n'
            f'ssh_config = "{tmp_path / "none"}"\n'
            "connect_timeout_s = 5.0\nguest_timeout_s = 10.0\nretries = 0\n"
            f'[domains.banner]\nssh_host = "127.0.0.1"\nssh_port = {guest.port}\n'
            f"[domains.{json.dumps(NAME)}]\n"
            f'ssh_host = "127.0.0.1"\nssh_port = {guest.port}\n'
        )
        done = subprocess.run(
            [*AUDIT, "-i", str(inventory), "-o", str(tmp_path / "out"), verbosity],
            capture_output=True,
            timeout=120,
            cwd=REPO,
            env=dict(os.environ),
        )
        assert guest.connections >= 1, done.stderr.decode(errors="replace")
    err = done.stderr.decode("utf-8", "replace")
    assert done.returncode == 3, err
    for raw in ("\x1b", "\x07", "\r"):
        assert raw not in err
    # The banner's text is there, visible, on the guest's own line.
    assert "Incompatible version (2.0\\x1b]0;pwned\\x07 instead of 2.0)" in err
    assert "dom0-xl/evil\\x1b[2K\\x07" in err
