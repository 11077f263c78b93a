"""The libvirt backend: any libvirt URI, read-only, recorded as one JSON file.

libvirt-python is optional (it needs libvirt-dev and pkg-config to build),
so it is imported only when this backend is chosen. Connections are opened
read-only: xenaudit never changes a domain. libvirt's own error printing is
silenced; every failure becomes a HypervisorError naming the host and URI.
A call that hangs (an unreachable `xen+ssh://` host) is abandoned after the
timeout; libvirt offers no way to cancel it, so its thread is left to finish
in the background.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

from xenaudit.hypervisor.interface import HostView, HypervisorError, HypervisorSource
from xenaudit.hypervisor.libvirt_parse import RAW_LIBVIRT, build_libvirt_view
from xenaudit.hypervisor.parse_error import RawParseError
from xenaudit.inventory.interface import HypervisorSpec, SshSettings

DEFAULT_URI = "xen:///system"
DEFAULT_TIMEOUT_S = 60.0

_error_handler_lock = threading.Lock()
_error_handler_set = False


def import_libvirt(host: str) -> ModuleType:
    """libvirt-python, with its stderr printing turned off; a clear error without it."""
    global _error_handler_set
    try:
        import libvirt
    except ImportError:
        raise HypervisorError(
            host,
            "libvirt",
            "libvirt-python is not installed: pip install 'xenaudit[libvirt]' "
            "(building it needs libvirt-dev and pkg-config)",
        ) from None
    with _error_handler_lock:
        if not _error_handler_set:
            libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
            _error_handler_set = True
    return libvirt


def _missing_test_node(uri: str) -> str | None:
    """For `test:///path`, the path when it does not exist.

    libxml2 would print its own warning to stderr before libvirt fails, so a
    missing node file is caught here first.
    """
    parts = urlsplit(uri)
    if parts.scheme != "test" or parts.path in ("", "/default"):
        return None
    return None if Path(parts.path).is_file() else parts.path


class LibvirtSource(HypervisorSource):
    backend = "libvirt"

    def __init__(
        self,
        spec: HypervisorSpec,
        ssh: SshSettings | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        self.spec = spec
        self.uri = spec.uri or DEFAULT_URI
        self.timeout_s = timeout_s

    def read(self) -> HostView:
        host = self.spec.name
        source = f"libvirt {self.uri}"
        libvirt = import_libvirt(host)
        missing = _missing_test_node(self.uri)
        if missing is not None:
            raise HypervisorError(host, source, f"cannot connect: node file {missing} not found")
        outcome: dict[str, Any] = {}

        def work() -> None:
            try:
                outcome["record"] = self._record(libvirt)
            except Exception as exc:
                outcome["error"] = exc

        worker = threading.Thread(target=work, name=f"libvirt-{host}", daemon=True)
        worker.start()
        worker.join(self.timeout_s)
        if worker.is_alive():
            raise HypervisorError(host, source, f"no answer within {self.timeout_s:g} s")
        error = outcome.get("error")
        if isinstance(error, libvirt.libvirtError):
            raise HypervisorError(host, source, " ".join(str(error).split()))
        if error is not None:
            raise HypervisorError(host, source, f"{type(error).__name__}: {error}")
        raw = {RAW_LIBVIRT: json.dumps(outcome["record"], indent=1, sort_keys=True) + "\n"}
        try:
            return build_libvirt_view(host, raw)
        except RawParseError as exc:
            raise HypervisorError(host, f"{source}: {exc.source}", exc.message) from None

    def _record(self, libvirt: ModuleType) -> dict[str, Any]:
        """Everything the view is built from, as plain JSON-able data."""
        conn = libvirt.openReadOnly(self.uri)
        try:
            driver = conn.getType()
            try:
                version = conn.getVersion()
            except libvirt.libvirtError:
                version = None
            try:
                free_bytes = conn.getFreeMemory()
            except libvirt.libvirtError:
                free_bytes = None
            domains = []
            for dom in conn.listAllDomains():
                try:
                    domains.append(
                        {
                            "id": dom.ID(),
                            "xml": dom.XMLDesc(0),
                            "state": list(dom.state()),
                            "info": list(dom.info()),
                        }
                    )
                except libvirt.libvirtError:
                    continue  # gone between listing and asking: not on this host any more
            domains.sort(key=lambda d: (d["id"] < 0, d["id"], d["xml"]))
            return {
                "uri": self.uri,
                "driver": driver,
                "version": version,
                "node_info": list(conn.getInfo()),
                "free_memory_bytes": free_bytes,
                "domains": domains,
            }
        finally:
            conn.close()
