"""`xenaudit apply`: act on a reviewed report, one confirmed cfg change at a time.

Exit codes: 0 everything applied (or nothing to do), 1 something was
skipped, declined or failed, 2 usage error or refusal (no terminal and no
--yes, an unreadable report, another apply running).

`--root DIR` takes DIR as `/` for every path apply touches: the cfgs named
in the report, their backups and the state directory with the action log.
It exists for tests and for staging a change on a copy of /etc/xen; live
changes (--live) still go to the real hypervisor.

`--live` reaches each host the way the inventory (`-i`, default
/etc/xenaudit/inventory.toml) says, never the way report.json says: a
report folder is data, and a libvirt URI in it could run a program.
"""

from __future__ import annotations

import argparse
import sys

from xenaudit.apply.defaults import DEFAULT_STATE_DIR

# The engine is imported by `handler`, so that `xenaudit apply --help` starts at once.
TYPE_CHECKING = False  # nor is typing imported at run time
if TYPE_CHECKING:
    from typing import Any, TextIO

    from xenaudit.apply import reviewed
    from xenaudit.apply.interface import RunSummary
    from xenaudit.apply.livehosts import LiveHosts

USAGE_ERROR = 2
#: Where the inventory lives when -i is not given (as for `xenaudit audit`).
DEFAULT_INVENTORY = "/etc/xenaudit/inventory.toml"

_DESCRIPTION = """\
Apply the cfg changes an audit proposed in REPORT_DIR (report.json and
patches/). Each diff is shown and confirmed on the terminal ([y/N]), or
applied without asking with --yes. A cfg that changed since the audit read
it is skipped. Every change keeps a timestamped backup beside the cfg and is
logged in the state directory; --undo restores the backups of one report.
"""


_EPILOG = """\
--root DIR takes DIR as / for the cfgs, their backups and the state
directory (for tests, or to stage a change on a copy of /etc/xen); --live
still acts on the real hypervisor.

--live takes each host's backend, libvirt URI and SSH route from the
inventory (-i, default /etc/xenaudit/inventory.toml), never from
report.json; the report's host name only selects the inventory host. With
no inventory, a host missing from it, or a report that describes the host
differently, the cfg change is still applied but nothing is changed live.

exit codes:
  0  everything applied (or nothing to do)
  1  something was skipped, declined or failed
  2  usage error or refusal (no terminal and no --yes, unreadable report,
     another apply running)
"""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("report_dir", metavar="REPORT_DIR", help="an audit's output directory")
    parser.add_argument(
        "--domain",
        action="append",
        default=[],
        metavar="NAME",
        help="only this domain (NAME or HOST/NAME); may be repeated",
    )
    parser.add_argument("--yes", "-y", action="store_true", help="apply without asking")
    parser.add_argument(
        "--live",
        action="store_true",
        help="also change the memory of running domains where that is safe",
    )
    parser.add_argument(
        "-i",
        "--inventory",
        metavar="FILE",
        help=f"the inventory that says how --live reaches each host (default {DEFAULT_INVENTORY})",
    )
    parser.add_argument(
        "--root",
        default="/",
        metavar="DIR",
        help="take DIR as / for cfgs, backups and the state directory (default /)",
    )
    parser.add_argument(
        "--undo",
        action="store_true",
        help="restore the backups that applying REPORT_DIR made",
    )
    parser.add_argument(
        "--state-dir",
        default=DEFAULT_STATE_DIR,
        metavar="DIR",
        help=f"where the action log is kept, under --root (default {DEFAULT_STATE_DIR})",
    )
    parser.add_argument(
        "--cfg-dir",
        action="append",
        default=None,
        metavar="DIR",
        help="a directory cfgs may be changed in; may be repeated (default /etc/xen)",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="check and show every change, change nothing",
    )


def add_parser(subparsers: Any) -> None:
    """Register `apply` on the main CLI's subparsers."""
    parser = subparsers.add_parser(
        "apply",
        help="apply a reviewed report's cfg changes (and, with --live, running memory)",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    configure(parser)
    parser.set_defaults(func=handler)


def _is_tty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def _summary_line(summary: RunSummary) -> str:
    from collections import Counter

    counts = Counter(o.outcome for o in summary.outcomes)
    parts = [f"{n} {what.replace('_', ' ')}" for what, n in sorted(counts.items())]
    if summary.errors:
        parts.append(f"{len(summary.errors)} report or log problems")
    return "apply: " + (", ".join(parts) if parts else "nothing done")


def _live_hosts(given: str | None, report: reviewed.ReviewedReport) -> LiveHosts:
    """How --live reaches the report's hosts; InventoryError for an inventory that is broken.

    Without -i and without the default inventory, nothing is changed live.
    """
    from pathlib import Path

    from xenaudit.apply.livehosts import from_inventory, nowhere
    from xenaudit.inventory.toml import load_inventory

    path = Path(given if given is not None else DEFAULT_INVENTORY)
    if given is None and not path.exists():
        return nowhere(
            f"no inventory ({DEFAULT_INVENTORY} does not exist; give -i) to say how "
            "to reach the host"
        )
    inventory = load_inventory(path)
    return from_inventory(inventory, report.hosts, (c.host for c in report.changes))


def handler(args: argparse.Namespace) -> int:
    """Run `apply` for parsed arguments; returns the exit code."""
    from pathlib import Path

    from xenaudit.apply import reviewed
    from xenaudit.apply.actionlog import LogBusy
    from xenaudit.apply.console import Prompter, printable
    from xenaudit.apply.engine import DEFAULT_CFG_DIRS, Applier, ApplyOptions, Undoer
    from xenaudit.apply.livehosts import nowhere
    from xenaudit.apply.paths import PathRefused, normalise_cfg_dirs, normalise_root
    from xenaudit.inventory.interface import InventoryError

    out, err, stdin = sys.stdout, sys.stderr, sys.stdin
    if args.live and args.undo:
        err.write("xenaudit apply: --live cannot be combined with --undo\n")
        return USAGE_ERROR
    if not args.yes and not args.dry_run and not _is_tty(stdin):
        err.write(
            "xenaudit apply: refusing to change anything: standard input is not a "
            "terminal to confirm on. Review the diffs, then run again with --yes "
            "(or with --dry-run to only show them).\n"
        )
        return USAGE_ERROR
    try:
        root = normalise_root(args.root)
        cfg_dirs = normalise_cfg_dirs(args.cfg_dir or DEFAULT_CFG_DIRS)
        report = reviewed.load(Path(args.report_dir))
    except (PathRefused, reviewed.ReportError) as exc:
        err.write(f"xenaudit apply: {printable(str(exc))}\n")
        return USAGE_ERROR
    unknown = [name for name in args.domain if name not in report.labels]
    if unknown:
        shown = ", ".join(printable(n) for n in unknown)
        err.write(f"xenaudit apply: no such domain in {args.report_dir}: {shown}\n")
        return USAGE_ERROR
    for problem in report.problems:
        err.write(f"xenaudit apply: {printable(problem)}\n")
    live_hosts = nowhere("--live was not given")
    if args.live:
        try:
            live_hosts = _live_hosts(args.inventory, report)
        except InventoryError as exc:
            err.write(f"xenaudit apply: inventory error: {printable(str(exc))}\n")
            return USAGE_ERROR
    options = ApplyOptions(
        root=root,
        cfg_dirs=cfg_dirs,
        state_dir=args.state_dir,
        live=args.live,
        domains=tuple(args.domain),
        dry_run=args.dry_run,
        live_hosts=live_hosts,
    )
    prompter = Prompter(stdin, out, assume_yes=args.yes)
    try:
        if args.undo:
            summary = Undoer(report, options, prompter.confirm, out).run()
        else:
            summary = Applier(report, options, prompter.confirm, out).run()
    except LogBusy as exc:
        err.write(f"xenaudit apply: {exc}\n")
        return USAGE_ERROR
    except OSError as exc:
        where = exc.filename or options.state_path()
        err.write(f"xenaudit apply: cannot use the state directory: {where}: {exc.strerror}\n")
        return USAGE_ERROR
    for problem in summary.errors:
        if problem not in report.problems:
            err.write(f"xenaudit apply: {printable(problem)}\n")
    out.write(_summary_line(summary) + "\n")
    return summary.exit_code


def main(argv: list[str] | None = None) -> int:
    """Standalone entry point: `python -m xenaudit.apply.cli REPORT_DIR ...`."""
    parser = argparse.ArgumentParser(
        prog="xenaudit apply",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    configure(parser)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else USAGE_ERROR
    return handler(args)


if __name__ == "__main__":
    raise SystemExit(main())
