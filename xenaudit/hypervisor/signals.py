"""Hypervisor-side signals: what Dom0 alone can see of each guest's memory.

Read in one batch per Dom0, never one command per key per domain:

* `xenstore-ls -f /local/domain`: every domain's balloon target, ceiling,
  balloon-driver flag and what guest tools publish (see xenstore_parse);
  values an old `xenstore-ls` cut short are read again with one
  `xenstore-read -p` for all of them;
* `xentop -b -f -i 2 -d 1`: what each domain holds now (tot_pages);
* `xl dmesg` / `xm dmesg`: populate-on-demand exhaustion and domain crashes.

The raw text is kept in the host snapshot under the names below, and
`build_signals` reads it back with the same pure parsers, so a replay sees
exactly what the night saw. A command that fails is written into
RAW_SIGNAL_ERRORS, so its warning replays too.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from xenaudit.hypervisor.parse_error import RawParseError
from xenaudit.hypervisor.runner import CommandResult, CommandRunner, RunnerError, trim
from xenaudit.hypervisor.xendmesg_parse import XenEvent, XenLog, parse_xen_dmesg
from xenaudit.hypervisor.xenstore_parse import (
    REREAD_KEYS,
    XenstoreDomain,
    XenstoreListing,
    parse_xenstore_ls,
    parse_xenstore_read,
    xenstore_domains,
)
from xenaudit.hypervisor.xentop_parse import XentopDomain, XentopReading, parse_xentop

RAW_XENSTORE = "xenstore-ls.txt"
RAW_XENSTORE_REREAD = "xenstore-read.txt"
RAW_XENTOP = "xentop.txt"
RAW_XEN_DMESG = "xen-dmesg.txt"
RAW_SIGNAL_ERRORS = "signal-errors.txt"
SIGNAL_RAW_NAMES = (
    RAW_XENSTORE,
    RAW_XENSTORE_REREAD,
    RAW_XENTOP,
    RAW_XEN_DMESG,
    RAW_SIGNAL_ERRORS,
)

#: The subtree every read starts from (also the root of the tree layout).
XENSTORE_ROOT = "/local/domain"
XENTOP_ARGV = ("xentop", "-b", "-f", "-i", "2", "-d", "1")
_OPTION_ERRORS = ("invalid option", "unrecognized option", "unknown option", "Usage:")
_STDERR_LIMIT = 300


@dataclass(frozen=True)
class DomainSignals:
    """Everything the hypervisor side holds about one domain tonight."""

    xenstore: XenstoreDomain | None
    xentop: XentopDomain | None
    #: Log events naming this domain's current domid.
    events: tuple[XenEvent, ...] = ()


@dataclass(frozen=True)
class HypervisorSignals:
    xenstore: Mapping[int, XenstoreDomain] = field(default_factory=dict)
    xentop: XentopReading | None = None
    log: XenLog | None = None
    #: The sources that answered, for the report ("xenstore-ls", "xentop", "xl dmesg").
    sources: tuple[str, ...] = ()

    def for_domain(self, name: str, domid: int | None) -> DomainSignals:
        store = self.xenstore.get(domid) if domid is not None else None
        top = self.xentop.match(name) if self.xentop is not None else None
        events = self.log.for_domid(domid) if self.log is not None and domid is not None else ()
        return DomainSignals(store, top, events)

    def events_for(self, domids: Iterable[int]) -> tuple[XenEvent, ...]:
        wanted = set(domids)
        if self.log is None:
            return ()
        return tuple(event for event in self.log.events if event.domid in wanted)


def build_signals(
    raw: Mapping[str, str], dmesg_source: str
) -> tuple[HypervisorSignals | None, list[str]]:
    """The signals in a host's raw outputs (None when none were read), and warnings."""
    if not any(name in raw for name in SIGNAL_RAW_NAMES):
        return None, []
    warnings = [
        f"hypervisor-side read failed: {line}"
        for line in raw.get(RAW_SIGNAL_ERRORS, "").splitlines()
        if line.strip()
    ]
    sources: list[str] = []
    listings: list[XenstoreListing] = []
    if RAW_XENSTORE in raw:
        try:
            listing = parse_xenstore_ls(raw[RAW_XENSTORE], XENSTORE_ROOT)
        except RawParseError as exc:
            warnings.append(f"{exc}")
        else:
            listings.append(listing)
            sources.append("xenstore-ls")
            if listing.skipped_lines:
                warnings.append(
                    f'xenstore-ls: {listing.skipped_lines} lines were not `PATH = "VALUE"` '
                    "and were skipped"
                )
    if RAW_XENSTORE_REREAD in raw:
        listings.append(parse_xenstore_read(raw[RAW_XENSTORE_REREAD]))
    top = None
    if RAW_XENTOP in raw:
        try:
            top = parse_xentop(raw[RAW_XENTOP])
        except RawParseError as exc:
            warnings.append(f"{exc}")
        else:
            sources.append("xentop")
    log = None
    if RAW_XEN_DMESG in raw:
        log = parse_xen_dmesg(raw[RAW_XEN_DMESG])
        sources.append(dmesg_source)
    store = xenstore_domains(*listings) if listings else {}
    return HypervisorSignals(store, top, log, tuple(sources)), warnings


# ------------------------------------------------------------------- reading


def _run(
    runner: CommandRunner, argv: Sequence[str], timeout_s: float, max_bytes: int
) -> tuple[CommandResult | None, str | None]:
    where = f"{shlex.join(argv)} ({runner.description})"
    try:
        result = runner.run(argv, timeout_s, max_bytes)
    except RunnerError as exc:
        return None, f"{where}: {exc}"
    if result.returncode == 0:
        return result, None
    message = trim(result.stderr, _STDERR_LIMIT) or "(no message)"
    return result, f"{where}: exit code {result.returncode}: {message}"


def _option_refused(result: CommandResult | None) -> bool:
    return (
        result is not None
        and result.returncode != 0
        and not result.stdout.strip()
        and any(marker in result.stderr for marker in _OPTION_ERRORS)
    )


def _read_xenstore(
    runner: CommandRunner, timeout_s: float, max_bytes: int, raw: dict[str, str], errors: list[str]
) -> None:
    result, error = _run(runner, ["xenstore-ls", "-f", XENSTORE_ROOT], timeout_s, max_bytes)
    if _option_refused(result):
        # An old xenstore-ls (xsls.c) knows no -f: read the tree instead.
        result, error = _run(runner, ["xenstore-ls", XENSTORE_ROOT], timeout_s, max_bytes)
    elif error is not None and result is not None:
        # A domain that went away during the walk ends xenstore-ls early: try once more.
        result, error = _run(runner, ["xenstore-ls", "-f", XENSTORE_ROOT], timeout_s, max_bytes)
    if error is not None:
        errors.append(error)
    if result is None or not result.stdout.strip():
        return
    raw[RAW_XENSTORE] = result.stdout
    try:
        listing = parse_xenstore_ls(result.stdout, XENSTORE_ROOT)
    except RawParseError:
        return
    wanted = sorted(
        path for path in listing.truncated if any(path.endswith("/" + key) for key in REREAD_KEYS)
    )
    if wanted:
        reread, error = _run(runner, ["xenstore-read", "-p", *wanted], timeout_s, max_bytes)
        if error is not None:
            errors.append(error)
        elif reread is not None:
            raw[RAW_XENSTORE_REREAD] = reread.stdout


def read_xentop(
    runner: CommandRunner, timeout_s: float, max_bytes: int, errors: list[str]
) -> str | None:
    """`xentop -b -f -i 2 -d 1` (without -f where xentop predates it); None when it failed."""
    result, error = _run(runner, XENTOP_ARGV, timeout_s, max_bytes)
    if _option_refused(result):
        result, error = _run(runner, [a for a in XENTOP_ARGV if a != "-f"], timeout_s, max_bytes)
    if error is not None:
        errors.append(error)
    if result is None or not result.stdout.strip():
        return None
    return result.stdout


def read_signals(
    runner: CommandRunner,
    dmesg_argv: Sequence[str],
    timeout_s: float,
    max_bytes: int,
    xentop_text: str | None = None,
) -> dict[str, str]:
    """Raw outputs of the batch reads; failures go into RAW_SIGNAL_ERRORS, never raise."""
    raw: dict[str, str] = {}
    errors: list[str] = []
    _read_xenstore(runner, timeout_s, max_bytes, raw, errors)
    top = (
        xentop_text
        if xentop_text is not None
        else read_xentop(runner, timeout_s, max_bytes, errors)
    )
    if top is not None:
        raw[RAW_XENTOP] = top
    result, error = _run(runner, dmesg_argv, timeout_s, max_bytes)
    if error is not None:
        errors.append(error)
    if result is not None and result.returncode == 0:
        raw[RAW_XEN_DMESG] = result.stdout
    if errors:
        raw[RAW_SIGNAL_ERRORS] = "\n".join(errors) + "\n"
    return raw
