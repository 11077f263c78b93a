"""The `xenaudit` command line: a thin layer over the pipeline and its stages."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from xenaudit import __version__

TYPE_CHECKING = False  # typing is not imported at run time: quick commands start faster
if TYPE_CHECKING:
    from pathlib import Path

EXIT_CODES = """\
exit codes:
  0  nothing to change
  1  a patch (or virsh command) was written, or a finding reached --fail-on
     (default: warning)
  2  usage or inventory error, or an output folder it will not write into
  3  the audit is incomplete: some guest or hypervisor could not be read
  4  internal error: an unexpected exception (traceback on stderr); the
     outputs that could still be written are there
  The most serious applicable code wins, in the order 2, 4, 3, 1, 0.
"""

#: An unexpected exception (a bug); the traceback goes to stderr.
EXIT_CRASH = 4


#: Subcommands implemented by a stage, by module. A stage module is imported only
#: when its command runs (or shows its --help), so `--version`, `cfg show` or
#: `logscan` do not pay for paramiko, jinja2 and the analysis.
STAGE_COMMANDS: dict[str, tuple[str, str]] = {
    "domains": (
        "xenaudit.hypervisor.cli",
        "list domains as the hypervisor sees them, with cfg file and drift",
    ),
    "logscan": (
        "xenaudit.logscan.cli",
        "list page allocation failures, OOM kills and balloon messages in kernel logs",
    ),
    "cfg": ("xenaudit.xlcfg.cli", "show, edit or lint xl.cfg files as xl reads them"),
    "apply": (
        "xenaudit.apply.cli",
        "apply a reviewed report's cfg changes (and, with --live, running memory)",
    ),
    "merge": ("xenaudit.fleet.cli", "join report folders from many Dom0s into one fleet report"),
}

#: Where a Dom0's inventory lives when -i is not given.
DEFAULT_INVENTORY = "/etc/xenaudit/inventory.toml"

AUDIT_HELP = "run the whole audit and write the report"

#: Output names of `audit --format`, in writing order (xenaudit.formats.FORMAT_NAMES).
ALL_FORMATS: tuple[str, ...] = ("patches", "json", "csv", "html", "prom")


def _terminal_columns() -> int:
    """The terminal's width as shutil.get_terminal_size() finds it: $COLUMNS when it is
    a positive number, else the size of the terminal on stdout, else 80."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


class _Parser(argparse.ArgumentParser):
    """argparse's parser, without the import of shutil (and with it zlib, bz2 and lzma)
    that its help formatter makes for the terminal width, on every add_argument: the
    width is found as shutil finds it, with os alone. Subparsers are of this class too."""

    def _get_formatter(self) -> argparse.HelpFormatter:
        width = _terminal_columns() - 2  # what HelpFormatter subtracts from shutil's
        return self.formatter_class(prog=self.prog, width=width)  # type: ignore[call-arg]


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser, importing only `command`'s stage module (none for None).

    The other commands get a placeholder with their one-line help, which is all
    the top-level --help shows of them (and a placeholder is never parsed with).
    """
    parser = _Parser(
        prog="xenaudit",
        description="Audit the memory sizing of Xen guests from Dom0: read what each guest "
        "saw, explain shortages, and propose sized xl.cfg changes.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"xenaudit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    if command == "audit":
        _add_audit(sub)
    else:
        sub.add_parser("audit", help=AUDIT_HELP, add_help=False)
    for name, (module, help_text) in STAGE_COMMANDS.items():
        if command == name:
            importlib.import_module(module).add_parser(sub)
        else:
            sub.add_parser(name, help=help_text, add_help=False)
    return parser


def _path(text: str) -> Path:
    """argparse type for paths: pathlib is imported when a path is given, not for --help."""
    from pathlib import Path

    return Path(text)


def _add_audit(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "audit",
        help=AUDIT_HELP,
        description="Read every Dom0 in the inventory (xl, xm or libvirt), collect each guest's "
        'memory facts over SSH (or, for domains with collect = "hypervisor", judge them '
        "from Dom0 alone: xenstore, xentop and the hypervisor log, at low confidence), judge "
        "each domain's memory/maxmem and write report.html, report.json, "
        "summary.csv, xenaudit.prom and patches/ under OUTDIR. Nothing under /etc/xen is "
        "changed: review the patches, then use `xenaudit apply OUTDIR`.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    source = p.add_mutually_exclusive_group()
    source.add_argument(
        "-i",
        "--inventory",
        type=_path,
        help=f"inventory TOML file (default: {DEFAULT_INVENTORY} when it exists)",
    )
    source.add_argument(
        "--demo", action="store_true", help="audit the bundled demo fleet (no Xen, no network)"
    )
    p.add_argument(
        "-o",
        "--output",
        type=_path,
        required=True,
        metavar="OUTDIR",
        help="folder for report.html, report.json, summary.csv, xenaudit.prom, patches/ and "
        "snapshots/: a new one (made with its parents) or an empty one of yours",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="write into an OUTDIR that is not empty or not yours, replacing files of the "
        "same names (links are still never followed)",
    )
    p.add_argument(
        "--from-snapshots",
        type=_path,
        metavar="DIR",
        help="replay the snapshots/ folder of an earlier run instead of reading live systems "
        "(into a new OUTDIR; nothing is recorded in the history without --record-history)",
    )
    p.add_argument(
        "--state-dir",
        type=_path,
        help="history stores, guest and hypervisor side (default: inventory state_dir)",
    )
    p.add_argument(
        "--format",
        action="append",
        metavar="LIST",
        help=f"outputs to write, comma-separated (default: all of {','.join(ALL_FORMATS)})",
    )
    p.add_argument(
        "--fail-on",
        choices=("info", "warning", "critical", "never"),
        default="warning",
        help=(
            "lowest severity that makes the exit code 1 (default: warning; a written patch "
            "always does)"
        ),
    )
    history = p.add_mutually_exclusive_group()
    history.add_argument(
        "--no-history", action="store_true", help="do not record tonight in the history store"
    )
    history.add_argument(
        "--record-history",
        action="store_true",
        help="with --from-snapshots: record the replayed nights in the history store "
        "(replays do not record by default)",
    )
    p.add_argument(
        "--root",
        type=_path,
        default="/",
        metavar="DIR",
        help="treat DIR as / when looking for cfg files (DIR/etc/xen/NAME.cfg); for copies "
        "of a Dom0's files",
    )
    verbosity = p.add_mutually_exclusive_group()
    verbosity.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="print only problems (errors, unreadable hosts and guests, crashes)",
    )
    verbosity.add_argument(
        "-v", "--verbose", action="store_true", help="print progress even when not on a terminal"
    )
    p.set_defaults(func=_run_audit)


def _formats(values: Sequence[str] | None) -> tuple[str, ...]:
    if not values:
        return ALL_FORMATS
    chosen = []
    for value in values:
        for name in value.split(","):
            name = name.strip()
            if name == "all":
                return ALL_FORMATS
            if name not in ALL_FORMATS:
                raise ValueError(f"unknown format {name!r} (choose from {', '.join(ALL_FORMATS)})")
            chosen.append(name)
    return tuple(dict.fromkeys(chosen))


def _say(message: str) -> None:
    """One line to stderr, with anything that could drive the terminal made visible."""
    from xenaudit.printable import printable

    print(printable(message, one_line=True), file=sys.stderr, flush=True)


def _print_traceback(text: str) -> None:
    from xenaudit.printable import printable

    sys.stderr.write(printable(text.rstrip("\n")) + "\n")
    sys.stderr.flush()


def _run_audit(args: argparse.Namespace) -> int:
    import dataclasses
    import shlex

    from xenaudit.atomicwrite import OutputFolderError
    from xenaudit.audit import AuditOptions, exit_code, run_audit, snapshot_hypervisors
    from xenaudit.demo import FLEET_DIR, HISTORY, INVENTORY, write_sandbox
    from xenaudit.errors import name_once
    from xenaudit.inventory.interface import Inventory, InventoryError
    from xenaudit.inventory.toml import load_inventory

    try:
        formats = _formats(args.format)
    except ValueError as exc:
        _say(f"xenaudit: error: {exc}")
        return 2
    if args.record_history and args.from_snapshots is None:
        _say("xenaudit: error: --record-history only applies to --from-snapshots replays")
        return 2
    interactive = sys.stderr.isatty()
    show_progress = not args.quiet and (args.verbose or interactive)

    snapshots = args.from_snapshots
    seed = None
    try:
        if args.demo:
            inventory = load_inventory(INVENTORY)
            snapshots, seed = FLEET_DIR, HISTORY
        elif args.inventory is not None:
            inventory = load_inventory(args.inventory)
        elif snapshots is not None:
            inventory = Inventory(path=str(snapshots), hypervisors=())
        elif os.path.isfile(DEFAULT_INVENTORY):
            inventory = load_inventory(DEFAULT_INVENTORY)
        else:
            _say(
                f"xenaudit: error: give -i INVENTORY ({DEFAULT_INVENTORY} does not exist), "
                "--demo or --from-snapshots DIR"
            )
            return 2
    except InventoryError as exc:
        _say(f"xenaudit: inventory error: {exc}")
        return 2
    if snapshots is not None:
        if not snapshots.is_dir():
            _say(f"xenaudit: error: {snapshots}: not a snapshots folder")
            return 2
        replayed = []
        configured = {h.name: h for h in inventory.hypervisors}
        for spec in snapshot_hypervisors(snapshots):
            if spec.name in configured:
                spec = dataclasses.replace(
                    configured[spec.name], backend="snapshot", snapshot_dir=spec.snapshot_dir
                )
            replayed.append(spec)
        if not replayed:
            _say(f"xenaudit: error: {snapshots}: no hypervisor snapshots found")
            return 2
        inventory = dataclasses.replace(inventory, hypervisors=tuple(replayed))

    # A replay files its nights in the history only when asked: replayed (or
    # crafted) snapshots must not pose as nights this fleet really had.
    replay = snapshots is not None and not args.demo
    options = AuditOptions(
        outdir=args.output,
        formats=formats,
        state_dir=args.state_dir,
        from_snapshots=snapshots,
        root=args.root,
        demo=args.demo,
        record_history=not args.no_history and (not replay or args.record_history),
        seed_history=seed,
        progress=_say if show_progress else None,
        force=args.force,
    )
    try:
        report = run_audit(inventory, options)
    except OutputFolderError as exc:
        _say(f"xenaudit: error: {exc}")
        return 2
    if args.demo:
        try:
            write_sandbox(args.output)
        except OSError as exc:
            _say(f"xenaudit: error: demo sandbox under {args.output}: {exc}")
            return 2
    # Problems are printed even with -q: a failed night must leave lines in the log.
    # (With progress on, hosts and guests were already named as they were read.)
    if not show_progress:
        for host in report.hosts:
            if host.error:
                _say(f"xenaudit: {name_once(host.name, host.error)}")
        for dom in report.domains:
            snap = dom.snapshot
            if snap is not None and snap.status not in ("ok", "skipped", "partial"):
                why = (snap.error or "").removeprefix(f"{dom.name}: ")
                _say(f"xenaudit: {dom.host}/{dom.name}: {snap.status}: {why}")
    for error in report.errors:
        _say(f"xenaudit: {error}")
    for trace in report.crashes:
        _say("xenaudit: internal error; please report this traceback:")
        _print_traceback(trace)
    if "html" in formats and not args.quiet and (args.demo or sys.stdout.isatty() or args.verbose):
        print(f"Report: {(args.output / 'report.html').resolve()}")
        if args.demo:
            out = args.output.resolve()
            sandbox = shlex.quote(str(out / "demo-root"))
            print(
                "Try it on the demo's own cfgs: "
                f"xenaudit apply {shlex.quote(str(out))} --root {sandbox} (and --undo)"
            )
    return exit_code(report, args.fail_on)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(command)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except Exception:
        # A bug: never let it pass for a normal night (exit 1 counts as success).
        import traceback

        _say(f"xenaudit: internal error in {args.command}; please report this traceback:")
        _print_traceback(traceback.format_exc())
        return EXIT_CRASH


if __name__ == "__main__":
    raise SystemExit(main())
