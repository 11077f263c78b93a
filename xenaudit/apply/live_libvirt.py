"""Live memory changes through libvirt, for hosts the audit read with the libvirt backend.

`setMemoryFlags` with VIR_DOMAIN_AFFECT_LIVE moves the balloon target; with
VIR_DOMAIN_MEM_MAXIMUM as well it moves the ceiling, which libvirt's libxl
driver passes to libxl_domain_setmaxmem and other drivers refuse on a
running domain. A refusal of the ceiling is reported as unsupported, not as a
failure: the target step never depends on it (see live_plan).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from xenaudit.apply.interface import LiveChanger, LiveResult, LiveStep, ProposedChange

#: Error codes with which a driver says "not on a running domain" rather than "failed".
_UNSUPPORTED_CODES = (
    "VIR_ERR_OPERATION_INVALID",
    "VIR_ERR_NO_SUPPORT",
    "VIR_ERR_ARGUMENT_UNSUPPORTED",
    "VIR_ERR_OPERATION_UNSUPPORTED",
)


def _open(uri: str) -> Any:
    import libvirt

    return libvirt.open(uri)


def _libvirt() -> Any | None:
    """The libvirt module, or None where the optional libvirt-python is not installed."""
    try:
        import libvirt
    except ImportError:
        return None
    return libvirt


_NO_LIBVIRT = "libvirt-python is not installed (pip install xenaudit[libvirt])"


class LibvirtLiveChanger(LiveChanger):
    def __init__(self, uri: str, connect: Callable[[str], Any] | None = None) -> None:
        self._uri = uri
        self._connect = connect or _open
        self._conn: Any = None

    def _connection(self) -> Any:
        if self._conn is None:
            self._conn = self._connect(self._uri)
        return self._conn

    def close(self) -> None:
        """Close a connection this changer opened itself."""
        if self._conn is not None and self._connect is _open:
            self._conn.close()
        self._conn = None

    def describe(self, domain: str, step: LiveStep) -> str:
        flags = "AFFECT_LIVE|MEM_MAXIMUM" if step.kind == "max" else "AFFECT_LIVE"
        kib = step.memory_mib * 1024
        return f"virsh -c {self._uri}: setMemoryFlags({domain}, {kib} KiB, {flags})"

    def check_identity(self, change: ProposedChange) -> str | None:
        libvirt = _libvirt()
        if libvirt is None:
            return _NO_LIBVIRT
        try:
            dom = self._connection().lookupByName(change.domain)
            uuid = dom.UUIDString()
            domid = dom.ID()
        except libvirt.libvirtError as exc:
            return f"libvirt {self._uri}: {exc.get_error_message()}"
        if change.uuid is not None and uuid != change.uuid:
            return f"uuid is {uuid} now but was {change.uuid} in the audit"
        if change.domid is not None and domid != change.domid:
            return f"domid is {domid} now but was {change.domid} in the audit: it restarted"
        return None

    def run(self, domain: str, step: LiveStep) -> LiveResult:
        command = self.describe(domain, step)
        libvirt = _libvirt()
        if libvirt is None:
            return LiveResult(step, command, "failed", _NO_LIBVIRT)
        flags = libvirt.VIR_DOMAIN_AFFECT_LIVE
        if step.kind == "max":
            flags |= libvirt.VIR_DOMAIN_MEM_MAXIMUM
        try:
            dom = self._connection().lookupByName(domain)
            dom.setMemoryFlags(step.memory_mib * 1024, flags)
        except libvirt.libvirtError as exc:
            message = exc.get_error_message() or str(exc)
            unsupported = {getattr(libvirt, name, None) for name in _UNSUPPORTED_CODES}
            if step.kind == "max" and exc.get_error_code() in unsupported:
                return LiveResult(step, command, "unsupported", message)
            return LiveResult(step, command, "failed", message)
        return LiveResult(step, command, "done")
