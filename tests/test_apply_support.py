"""Building report folders for the apply tests the way the audit writes them.

No tests here: the apply test modules import these builders. A report is
made from cfg files installed under a scratch root, with diffs produced by
the project's xl.cfg editor (`xenaudit.xlcfg.propose_memory_patch`), and
domain entries carrying the keys report.json's schema requires.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xenaudit.apply.cli import main

try:
    from xenaudit.xlcfg import propose_memory_patch
except ImportError:  # pragma: no cover - before the editor landed
    propose_memory_patch = None  # type: ignore[assignment]

#: Corpus cfgs with a plain `memory =` line the editor can resize.
CORPUS_CFGS = (
    "xlcfg_babrakov_zabbix.cfg",
    "xlcfg_babrakov_krs23.ru.cfg",
    "xlcfg_babrakov_windows.cfg",
    "xlcfg_xen_xlexample.pvlinux",
    "xlcfg_babrakov_ubuntu_cdrom.cfg",
    "xlcfg_xentools4.9_demineur.cfg",
)

HOST = "dom0a"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def memory_diff(logical: str, data: bytes, memory_mib: int, maxmem_mib: int) -> bytes:
    """The audit's diff for setting memory/maxmem in the cfg `data` at `logical`."""
    if propose_memory_patch is None:
        raise RuntimeError("xenaudit.xlcfg.propose_memory_patch is not available")
    text = propose_memory_patch(logical, data, memory_mib, maxmem_mib)
    assert text, f"the editor proposes no change for {logical}"
    return text.encode("utf-8", "surrogateescape")


@dataclass
class Guest:
    """One domain of a test report and its cfg."""

    name: str
    cfg: bytes
    memory_mib: int
    maxmem_mib: int
    state: str = "running"
    guest_type: str | None = "pv"
    domid: int | None = 7
    uuid: str | None = None
    #: Live values in MiB: (target, max); None when the audit did not see them.
    live_mib: tuple[int, int] | None = (512, 512)
    need_mib: int | None = 300
    live_change_safe: bool = True
    fits: bool = True
    change: str = "increase"
    cfg_memory_mib: int | None = 512
    cfg_maxmem_mib: int | None = 512
    #: Where the cfg lives; defaults to /etc/xen/NAME.cfg.
    path: str | None = None
    host: str = HOST
    #: Override the diff (hostile reports); default: the editor's diff.
    diff: bytes | None = None
    #: Override report.json's patch path; default patches/NAME.cfg.diff.
    patch: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    #: Keep `cfg` as given (a test of a file that is not this domain's cfg).
    keep_name: bool = False

    def __post_init__(self) -> None:
        # apply only edits a file that declares the domain's name, as xl would read it.
        if not self.keep_name:
            self.cfg = declare_name(self.cfg, self.name)

    @property
    def logical(self) -> str:
        return self.path or f"/etc/xen/{self.name}.cfg"


_NAME_LINE = re.compile(rb"^name[ \t]*=[^\n]*$", re.MULTILINE)


def declare_name(cfg: bytes, name: str) -> bytes:
    """`cfg` with its `name =` line (or a new first line) naming `name`."""
    line = f'name = "{name}"'.encode()
    if _NAME_LINE.search(cfg):
        return _NAME_LINE.sub(line.replace(b"\\", b"\\\\"), cfg, count=1)
    return line + b"\n" + cfg


def install_cfg(root: Path, logical: str, data: bytes, mode: int = 0o644) -> Path:
    path = root / logical.lstrip("/")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    path.chmod(mode)
    return path


def domain_entry(guest: Guest, cfg_bytes: bytes) -> dict[str, Any]:
    live = guest.live_mib
    entry: dict[str, Any] = {
        "name": guest.name,
        "host": guest.host,
        "state": guest.state,
        "guest_type": guest.guest_type,
        "domid": guest.domid,
        "uuid": guest.uuid,
        "vcpus": 1,
        "config": {
            "path": guest.logical,
            "memory_mib": guest.cfg_memory_mib,
            "maxmem_mib": guest.cfg_maxmem_mib,
            "guest_type": guest.guest_type,
            "sha256": sha256(cfg_bytes),
            "error": None,
        },
        "live": {
            "target_kib": live[0] * 1024 if live else None,
            "max_kib": live[1] * 1024 if live else None,
            "current_kib": live[0] * 1024 if live else None,
        },
        "drift": [],
        "collection": {
            "status": "ok",
            "error": None,
            "collected_at": "2026-11-25T02:31:07Z",
            "kernlog_source": "dmesg",
            "sections": {},
        },
        "meminfo_kib": {},
        "psi": None,
        "events": [],
        "severity": "warning",
        "diagnosis": ["Memory shortage"],
        "findings": [],
        "advice": [],
        "need_mib": guest.need_mib,
        "need_history_mib": [],
        "recommendation": {
            "memory_mib": guest.memory_mib,
            "maxmem_mib": guest.maxmem_mib,
            "reasons": [f"need {guest.need_mib} MiB plus 20% margin"],
            "confidence": "high",
            "need_mib": guest.need_mib,
            "change": guest.change,
            "fits": guest.fits,
            "not_fitting_reason": None if guest.fits else "host is 300 MiB short",
            "live_change_safe": guest.live_change_safe,
        },
        "patch": guest.patch or f"patches/{guest.name}.cfg.diff",
    }
    entry.update(guest.extra)
    return entry


def make_report(
    report_dir: Path,
    root: Path,
    guests: list[Guest],
    hosts: list[dict[str, Any]] | None = None,
    install: bool = True,
) -> dict[str, Any]:
    """Install each guest's cfg under `root` and write report.json + patches/ for them."""
    (report_dir / "patches").mkdir(parents=True, exist_ok=True)
    domains = []
    for guest in guests:
        if install:
            install_cfg(root, guest.logical, guest.cfg)
        diff = guest.diff
        if diff is None:
            diff = memory_diff(guest.logical, guest.cfg, guest.memory_mib, guest.maxmem_mib)
        if guest.patch is None:
            (report_dir / "patches" / f"{guest.name}.cfg.diff").write_bytes(diff)
        domains.append(domain_entry(guest, guest.cfg))
    document = {
        "schema_version": 1,
        "generated_at": "2026-11-25T02:31:07Z",
        "tool_version": "0.1.0",
        "demo": False,
        "incomplete": False,
        "inventory_path": None,
        "errors": [],
        "hosts": hosts if hosts is not None else [{"name": HOST, "backend": "xl"}],
        "domains": domains,
    }
    (report_dir / "report.json").write_text(json.dumps(document, indent=2))
    return document


def run_apply(*args: str | Path) -> int:
    """`xenaudit apply` in this process (stdin is never asked: pass --yes or --dry-run)."""
    return main([str(a) for a in args])


def cli_command() -> list[str]:
    return [sys.executable, "-m", "xenaudit.apply.cli"]


def subprocess_env() -> dict[str, str]:
    env = dict(os.environ)
    repo = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = repo + os.pathsep + env.get("PYTHONPATH", "")
    return env


def file_mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def log_records(root: Path, skip_torn: bool = False) -> list[dict[str, Any]]:
    log = root / "var/lib/xenaudit/apply-log.jsonl"
    if not log.exists():
        return []
    records = []
    for line in log.read_text().splitlines():
        if not line.strip():
            continue
        if skip_torn and not line.endswith("}"):
            continue
        records.append(json.loads(line))
    return records
