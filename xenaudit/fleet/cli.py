"""`xenaudit merge`: join report folders from many Dom0s into one fleet report."""

from __future__ import annotations

import argparse
import sys

from xenaudit.fleet.defaults import DEFAULT_MAX_DOM0_MIB, DEFAULT_STALE_AFTER_H
from xenaudit.printable import printable

# The merge itself is imported by `handler`, so that `xenaudit merge --help` starts at once.
TYPE_CHECKING = False  # nor is typing imported at run time
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any

    from xenaudit.fleet.interface import FleetReport

USAGE_ERROR = 2
INCOMPLETE = 3
#: Longest line read from --expect-file; a host name and a short note fit easily.
MAX_EXPECT_LINE = 4096

_DESCRIPTION = """\
Join the report folders of many Dom0s (each written by `xenaudit audit`) into
FLEET_DIR: fleet.html lists the fleet's actions tonight, most severe first
across every Dom0, then per-Dom0 totals, then the Dom0s whose report is
missing, stale or incomplete; fleet.json holds the same for machines
(xenaudit/schemas/fleet.schema.json) and fleet.prom as Prometheus metrics.
Each Dom0's folder is copied to
FLEET_DIR/HOST/, where its report and patches keep working (`xenaudit apply
FLEET_DIR/HOST` on that Dom0). Folders are read as untrusted data: symlinks
inside them are not followed and sizes are capped.

An input that is not a report, has another schema_version, or repeats a Dom0
and run already given is named on stderr and left out; the rest are merged.
Of two runs of the same Dom0 the newer is merged.
"""

_EPILOG = """\
exit codes:
  0  merged; nothing to change
  1  merged; some domain has a finding at or above --fail-on (default: warning)
  2  usage error, or FLEET_DIR cannot be used (exists and is not empty: use --force)
  3  the fleet is incomplete: an input was left out, an expected Dom0 has no
     report, or a report is stale, incomplete or was not wholly copied
"""


def _path(text: str) -> Path:
    """argparse type for paths: pathlib is imported when a path is given, not for --help."""
    from pathlib import Path

    return Path(text)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "reports", nargs="+", type=_path, metavar="REPORT_DIR", help="a Dom0's report folder"
    )
    parser.add_argument(
        "-o", "--output", type=_path, required=True, metavar="FLEET_DIR", help="where to write"
    )
    parser.add_argument(
        "--stale-after",
        type=float,
        default=DEFAULT_STALE_AFTER_H,
        metavar="HOURS",
        help=f"a report older than this is stale (default {DEFAULT_STALE_AFTER_H:g})",
    )
    parser.add_argument(
        "--expect",
        action="append",
        default=[],
        metavar="HOST",
        help="a Dom0 that should be in the fleet; listed as missing when no report covers it "
        "(may be repeated)",
    )
    parser.add_argument(
        "--expect-file",
        type=_path,
        metavar="FILE",
        help="Dom0s that should be in the fleet, one per line, optionally followed by a tab "
        "and a note saying why it may be missing (e.g. written by the Ansible playbook)",
    )
    parser.add_argument(
        "--fail-on",
        choices=("info", "warning", "critical", "never"),
        default="warning",
        help="lowest severity that makes the exit code 1 (default: warning)",
    )
    parser.add_argument(
        "--without-snapshots",
        action="store_true",
        help="do not copy each Dom0's snapshots/ folder (the reports and patches are enough "
        "to review and apply)",
    )
    parser.add_argument(
        "--max-dom0-mib",
        type=int,
        default=DEFAULT_MAX_DOM0_MIB,
        metavar="MIB",
        help="stop copying a Dom0's folder beyond this size (default %(default)s)",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="write into a FLEET_DIR that is not empty, replacing Dom0 folders of the same name",
    )
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="print nothing but errors on stderr"
    )


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "merge",
        help="join report folders from many Dom0s into one fleet report",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    configure(parser)
    parser.set_defaults(func=handler)


def read_expect_file(path: Path) -> list[tuple[str, str]]:
    """(host, note) pairs from an --expect-file; blank lines and # comments are skipped."""
    expected: list[tuple[str, str]] = []
    with path.open(encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            if len(line) > MAX_EXPECT_LINE:
                raise ValueError(f"{path}:{number}: line longer than {MAX_EXPECT_LINE} characters")
            line = line.rstrip("\r\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            name, _, note = line.partition("\t")
            expected.append((name.strip(), note.strip()))
    return expected


def shown(text: str) -> str:
    """Report text made safe for one terminal line (names come from Dom0s and guests)."""
    return printable(text, one_line=True)


def exit_code(fleet: FleetReport, fail_on: str) -> int:
    """3 when the fleet is incomplete, else 1 when a domain reaches `fail_on`, else 0."""
    from xenaudit.analysis.interface import SEVERITY_ORDER

    if fleet.incomplete:
        return INCOMPLETE
    if fail_on in SEVERITY_ORDER:
        threshold = SEVERITY_ORDER.index(fail_on)
        for dom0 in fleet.dom0s:
            if any(n and SEVERITY_ORDER.index(s) >= threshold for s, n in dom0.domain_severities):
                return 1
    return 0


def handler(args: argparse.Namespace) -> int:
    from xenaudit.fleet.copy import CopyLimits
    from xenaudit.fleet.interface import MergeError
    from xenaudit.fleet.merge import MergeOptions, merge_reports

    err = sys.stderr
    if args.stale_after <= 0 or args.max_dom0_mib <= 0:
        err.write("xenaudit merge: --stale-after and --max-dom0-mib must be positive\n")
        return USAGE_ERROR
    expected = [(name, "") for name in args.expect]
    if args.expect_file is not None:
        try:
            expected += read_expect_file(args.expect_file)
        except (OSError, ValueError) as exc:
            err.write(f"xenaudit merge: --expect-file: {exc}\n")
            return USAGE_ERROR
    notes: dict[str, str] = {}
    for name, note in expected:
        if name and (name not in notes or note):
            notes[name] = note
    options = MergeOptions(
        stale_after_h=args.stale_after,
        expected=tuple(notes.items()),
        force=args.force,
        limits=CopyLimits(
            max_total_bytes=args.max_dom0_mib * 1024 * 1024,
            skip=frozenset({"snapshots"}) if args.without_snapshots else frozenset(),
        ),
        progress=None,
    )
    try:
        fleet, _ = merge_reports(args.reports, args.output, options)
    except MergeError as exc:
        err.write(f"xenaudit merge: {exc}\n")
        return USAGE_ERROR
    for item in fleet.left_out:
        err.write(f"xenaudit merge: {shown(item.source)}: left out: {shown(item.reason)}\n")
    for missing in fleet.missing:
        err.write(f"xenaudit merge: {shown(missing.name)}: no report: {shown(missing.note)}\n")
    for dom0 in fleet.attention():
        what = [w for w, on in (("stale", dom0.stale), ("incomplete", dom0.incomplete)) if on]
        what += [f"copy: {p}" for p in dom0.copy_problems[:3]]
        err.write(f"xenaudit merge: {dom0.folder}: {shown('; '.join(what))}\n")
    if not args.quiet:
        print(
            f"Fleet: {(args.output / 'fleet.html').resolve()} ({len(fleet.dom0s)} Dom0s, "
            f"{len(fleet.actions)} actions)"
        )
    return exit_code(fleet, args.fail_on)
