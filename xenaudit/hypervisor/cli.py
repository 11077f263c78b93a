"""`xenaudit domains`: the domains as each hypervisor sees them, with cfg and drift.

Exit codes: 0 all hosts read, 2 inventory or usage error, 3 some host could
not be read (the others are still printed).
"""

from __future__ import annotations

import argparse
import sys

from xenaudit.printable import printable

# The hypervisor sources, cfg reading and the inventory are imported by the
# functions that use them, so that `xenaudit domains --help` starts at once.
TYPE_CHECKING = False  # nor is typing imported at run time
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from pathlib import Path
    from typing import Any, TextIO

    from xenaudit.hypervisor.cfgfind import CfgIndex
    from xenaudit.hypervisor.interface import Domain, HostView
    from xenaudit.inventory.interface import DomainOverride, HypervisorSpec, SshSettings

    OverrideLookup = Callable[[str, str], DomainOverride]

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_HOST_UNREADABLE = 3


def _configure(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument("-i", "--inventory", metavar="INVENTORY", help="inventory TOML file")
    source.add_argument(
        "--backend",
        choices=("xl", "xm", "libvirt"),
        help="read this machine with xl, xm (xend Dom0s, Xen 4.4 and older) or libvirt",
    )
    parser.add_argument("--uri", help="libvirt URI (with --backend libvirt)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def add_parser(subparsers: Any) -> None:
    """Register `domains` on the main CLI's subparsers."""
    parser = subparsers.add_parser(
        "domains",
        help="list domains as the hypervisor sees them, with cfg file and drift",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _configure(parser)
    parser.set_defaults(func=handle)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="xenaudit domains",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _configure(parser)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    return handle(args)


def _plain(text: str) -> str:
    """A hostile string made safe for a terminal (the one filter all output goes through)."""
    return printable(text, one_line=True)


def _targets(
    args: argparse.Namespace,
) -> tuple[list[HypervisorSpec], SshSettings, OverrideLookup]:
    import socket

    from xenaudit.inventory.interface import (
        DomainOverride,
        HypervisorSpec,
        InventoryError,
        SshSettings,
    )

    if args.uri and args.backend != "libvirt":
        raise InventoryError("-", "--uri", "--uri goes with --backend libvirt")
    if args.inventory:
        from xenaudit.inventory.toml import load_inventory

        inventory = load_inventory(args.inventory)
        return (
            list(inventory.hypervisors),
            inventory.ssh,
            lambda domain, host: inventory.override(domain, host),
        )
    spec = HypervisorSpec(
        name=socket.gethostname() or "localhost",
        backend=args.backend or "xl",
        uri=args.uri if args.backend == "libvirt" else None,
    )
    return [spec], SshSettings(), lambda domain, _host: DomainOverride(name=domain)


def _cfg_memory(path: Path | None, dialect: str) -> tuple[int | None, int | None]:
    from xenaudit.cfgfiles import read_config

    if path is None:
        return None, None
    facts = read_config(path, str(path), dialect).facts
    return facts.memory_mib, facts.maxmem_mib


def _domain_entry(
    domain: Domain,
    spec: HypervisorSpec,
    override: DomainOverride,
    index: CfgIndex,
    backend: str,
) -> dict[str, Any]:
    from xenaudit.hypervisor.cfgfind import find_cfg
    from xenaudit.hypervisor.drift import drift

    cfg_path, note = find_cfg(domain.name, spec, override, index=index)
    # xm-era cfg files are Python: read only where they are plain assignments.
    memory_mib, maxmem_mib = _cfg_memory(cfg_path, "xm" if backend == "xm" else "xl")
    return {
        "name": domain.name,
        "domid": domain.domid,
        "state": domain.state,
        "guest_type": domain.guest_type,
        "target_kib": domain.target_kib,
        "max_kib": domain.max_kib,
        "vcpus": domain.vcpus,
        "cfg_path": str(cfg_path) if cfg_path is not None else None,
        "drift": list(drift(domain, memory_mib, maxmem_mib)),
        # Only for the text table; dropped from --json (its keys are a contract).
        "_cfg_note": note,
    }


def _shutoff_entry(
    name: str, spec: HypervisorSpec, override: DomainOverride, index: CfgIndex
) -> dict[str, Any]:
    """A domain xl does not list because it only exists as a cfg (see cfgonly)."""
    from xenaudit.analysis.interface import ConfigFacts
    from xenaudit.cfgfiles import read_config
    from xenaudit.hypervisor.cfgfind import find_cfg
    from xenaudit.hypervisor.cfgonly import shutoff_domain

    cfg_path, note = find_cfg(name, spec, override, index=index)
    if cfg_path is None:
        facts = ConfigFacts(None, None, None, None, error=note)
    else:
        facts = read_config(cfg_path, str(cfg_path)).facts
    return _domain_entry(shutoff_domain(name, facts), spec, override, index, "xl")


def _host_entry(
    spec: HypervisorSpec, view: HostView | None, error: str | None, overrides: OverrideLookup
) -> dict[str, Any]:
    from xenaudit.hypervisor.cfgfind import CfgIndex
    from xenaudit.hypervisor.cfgonly import cfg_only_names

    domains = []
    if view is not None:
        index = CfgIndex.for_host(spec)
        domains = [
            _domain_entry(d, spec, overrides(d.name, spec.name), index, view.backend)
            for d in view.guests
        ]
        if view.backend == "xl":
            listed = {d.name for d in view.domains}
            domains += [
                _shutoff_entry(name, spec, overrides(name, spec.name), index)
                for name in cfg_only_names(index, listed)
            ]
    return {
        "name": spec.name,
        "total_memory_kib": view.total_memory_kib if view else None,
        "free_memory_kib": view.free_memory_kib if view else None,
        "error": error,
        "domains": domains,
        "_view": view,
    }


def _public(hosts: list[dict[str, Any]]) -> dict[str, Any]:
    def strip(entry: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in entry.items() if not k.startswith("_")}

    return {"hosts": [{**strip(h), "domains": [strip(d) for d in h["domains"]]} for h in hosts]}


def _mib(kib: int | None) -> str:
    from xenaudit.hypervisor.drift import format_mib

    return "-" if kib is None else format_mib(kib).removesuffix(" MiB")


def _print_table(hosts: list[dict[str, Any]], out: TextIO) -> None:
    columns = ("NAME", "ID", "STATE", "TYPE", "TARGET", "MAX", "VCPUS", "CFG")
    for index, host in enumerate(hosts):
        if index:
            out.write("\n")
        view: HostView | None = host["_view"]
        out.write(f"== {_plain(host['name'])}")
        if host["error"]:
            out.write(f": ERROR {_plain(host['error'])}\n")
            continue
        assert view is not None
        out.write(
            f" ({view.backend}): total {_mib(view.total_memory_kib)} MiB, "
            f"free {_mib(view.free_memory_kib)} MiB"
        )
        dom0 = view.dom0
        if dom0 is not None:
            out.write(f", Dom0 {_mib(dom0.current_kib or dom0.target_kib)} MiB")
        out.write("\n")
        for warning in view.warnings:
            out.write(f"   warning: {_plain(warning)}\n")
        if view.backend == "xm":
            from xenaudit.hypervisor.xm_parse import XEND_REMOVED_NOTE

            out.write(f"   note: {XEND_REMOVED_NOTE}\n")
        rows = [columns]
        for d in host["domains"]:
            rows.append(
                (
                    _plain(d["name"]),
                    "-" if d["domid"] is None else str(d["domid"]),
                    d["state"],
                    d["guest_type"] or "-",
                    _mib(d["target_kib"]),
                    _mib(d["max_kib"]),
                    "-" if d["vcpus"] is None else str(d["vcpus"]),
                    _plain(d["cfg_path"] or "-"),
                )
            )
        widths = [max(len(row[i]) for row in rows) for i in range(len(columns))]
        for row_index, row in enumerate(rows):
            cells = (cell.ljust(w) for cell, w in zip(row, widths, strict=True))
            out.write("  ".join(cells).rstrip() + "\n")
            if row_index == 0:
                continue
            entry = host["domains"][row_index - 1]
            if entry["cfg_path"] is None and entry["_cfg_note"]:
                out.write(f"    cfg: {_plain(entry['_cfg_note'])}\n")
            for item in entry["drift"]:
                out.write(f"    drift: {_plain(item)}\n")


def handle(args: argparse.Namespace) -> int:
    import json

    from xenaudit.hypervisor.factory import read_hosts
    from xenaudit.inventory.interface import InventoryError

    try:
        specs, ssh, overrides = _targets(args)
    except InventoryError as exc:
        print(_plain(f"xenaudit domains: {exc}"), file=sys.stderr)
        return EXIT_USAGE
    hosts = [
        _host_entry(spec, view, error, overrides) for spec, view, error in read_hosts(specs, ssh)
    ]
    if args.json:
        json.dump(_public(hosts), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        _print_table(hosts, sys.stdout)
    for host in hosts:
        if host["error"]:
            print(_plain(f"xenaudit domains: {host['error']}"), file=sys.stderr)
    return EXIT_HOST_UNREADABLE if any(h["error"] for h in hosts) else EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
