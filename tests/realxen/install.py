"""Putting xenaudit onto the real Dom0 the way an admin would, and its inventory.

The Dom0 has no network (QEMU's restrict=on), so the wheel built from this
checkout and the wheels of its dependencies are made on the host and copied in;
pip installs them with --no-index into the venv the image already holds
(/opt/xenaudit, created by scripts/realxen/configure-dom0.sh).
"""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
from pathlib import Path

from tests.realxen.machine import INVENTORY, KNOWN_HOSTS, REPO, RealXen

VENV = "/opt/xenaudit"
WHEELS = "/root/wheels"
STATE_DIR = "/var/lib/xenaudit"
REPORTS = f"{STATE_DIR}/reports"

INVENTORY_TEXT = f"""\
# The real-Xen test Dom0: xl on this machine, guests over the xenbr0 bridge.
state_dir = "{STATE_DIR}"

[[hypervisor]]
name = "xen-dom0"
backend = "xl"
cfg_dir = "/etc/xen"
xen_reserve_mib = 64

[ssh]
user = "root"
identity_file = "/root/.ssh/id_ed25519"
known_hosts = "{KNOWN_HOSTS}"
own_known_hosts = "{STATE_DIR}/known_hosts"
host_key_policy = "strict"
host_template = "{{name}}"
# Software emulation: handshakes take seconds, so the limits are generous.
connect_timeout_s = 60.0
guest_timeout_s = 240.0
deadline_s = 900.0
concurrency = 4
"""


def build_wheels(folder: Path) -> list[Path]:
    """The checkout's wheel plus binary wheels of its dependencies, for Dom0's Python 3.11."""
    folder.mkdir(parents=True, exist_ok=True)
    python = sys.executable
    subprocess.run(
        [python, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         "-w", str(folder), str(REPO)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    own = sorted(folder.glob("xenaudit-*.whl"))
    if len(own) != 1:
        raise RuntimeError(f"expected one xenaudit wheel in {folder}, found {own}")
    subprocess.run(
        [python, "-m", "pip", "download", "-q", "--only-binary=:all:",
         "--python-version", "3.11", "-d", str(folder), str(own[0])],
        check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    return sorted(folder.glob("*.whl"))


def install(machine: RealXen, wheels: list[Path]) -> str:
    """Copy the wheels in, pip install offline, link the command; returns pip's output."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for wheel in wheels:
            tar.add(wheel, arcname=wheel.name)
    machine.run(
        f"rm -rf {WHEELS} && mkdir -p {WHEELS} && tar xf - -C {WHEELS}",
        stdin=buffer.getvalue(),
        timeout_s=300,
    )
    done = machine.run(
        f"{VENV}/bin/pip install --no-compile --no-index --find-links {WHEELS} xenaudit "
        f"&& ln -sf {VENV}/bin/xenaudit /usr/local/bin/xenaudit "
        f"&& mkdir -p {REPORTS}",
        timeout_s=900,
    )
    machine.put(INVENTORY_TEXT.encode(), INVENTORY, mode="0640")
    return done.stdout
