"""Which kernel a guest runs, and which /proc/sys/vm knobs it has.

Advice is only worth giving for a knob the guest's kernel has: compaction
exists from 2.6.35 on, watermark_scale_factor from 4.6, proactive
compaction from 5.9, and vm.extra_free_kbytes only in some vendor kernels
(RHEL 6 and 7, Android). The guest's own /proc/sys/vm listing is the best
judge; the kernel release decides only when that listing was not read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from xenaudit.parsers.interface import SysVm

_RELEASE = re.compile(r"(?<![\d.])(\d{1,2})\.(\d{1,3})(?:\.(\d{1,3}))?")
_LINUX_VERSION = re.compile(r"Linux version (\d{1,2})\.(\d{1,3})(?:\.(\d{1,3}))?")

KernelVersion = tuple[int, int, int]

#: Releases that brought the knobs the advice names.
COMPACTION_SINCE: KernelVersion = (2, 6, 35)
WATERMARK_SCALE_SINCE: KernelVersion = (4, 6, 0)
PROACTIVENESS_SINCE: KernelVersion = (5, 9, 0)
#: Kernels allocate task stacks from vmalloc (no order-2 block needed) from here on x86-64.
VMAP_STACK_SINCE: KernelVersion = (4, 9, 0)


def parse_release(text: str | None) -> KernelVersion | None:
    """(major, minor, patch) from uname output or a "Linux version" line; patch 0 if absent."""
    if not text:
        return None
    match = _LINUX_VERSION.search(text)
    if match is None:
        for token in text.split():
            match = _RELEASE.match(token)
            if match:
                break
    if match is None:
        return None
    major, minor = int(match.group(1)), int(match.group(2))
    patch = int(match.group(3)) if match.group(3) else 0
    if not 2 <= major <= 99:
        return None
    return major, minor, patch


def describe(version: KernelVersion) -> str:
    major, minor, patch = version
    return f"{major}.{minor}.{patch}" if major == 2 else f"{major}.{minor}"


@dataclass(frozen=True)
class Knob:
    """Whether a /proc/sys/vm knob exists on the guest, and how we know."""

    name: str
    present: bool
    basis: str


def knob(
    sysvm: SysVm | None, kernel: KernelVersion | None, name: str, since: KernelVersion | None
) -> Knob:
    """Does the guest have vm.`name`? Its /proc/sys/vm listing first, else its release.

    `since` None means no mainline kernel has it (a vendor knob): only the
    listing can show it.
    """
    if sysvm is not None and sysvm.values:
        present = name in sysvm.values or f"vm.{name}" in sysvm.values
        where = "listed" if present else "not listed"
        return Knob(name, present, f"vm.{name} is {where} in the guest's /proc/sys/vm")
    if since is None:
        return Knob(name, False, f"vm.{name} exists only in some vendor kernels; not confirmed")
    if kernel is None:
        return Knob(
            name, False, f"the guest's kernel is unknown; vm.{name} needs {describe(since)}"
        )
    present = kernel >= since
    return Knob(
        name,
        present,
        f"Linux {describe(kernel)} {'has' if present else 'predates'} vm.{name} "
        f"({describe(since)})",
    )
