"""`xenaudit merge`: many Dom0s' report folders in, one fleet folder out.

    FLEET_DIR/fleet.html      the fleet page: tonight's actions, per-Dom0 totals, who is missing
    FLEET_DIR/fleet.json      the same for machines (xenaudit/schemas/fleet.schema.json)
    FLEET_DIR/fleet.prom      the same as Prometheus metrics, for one scrape of the whole fleet
    FLEET_DIR/HOST/           each Dom0's report folder, copied (report.json and patches/
                              keep working there: `xenaudit apply FLEET_DIR/HOST`)

Inputs are read one at a time and only a digest of each is kept (action rows
go to disk, see `spool`), so time grows linearly with the fleet and memory
with the number of Dom0s, not with their reports. Every input problem is
named with its folder and the rest are still merged.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from xenaudit import __version__
from xenaudit.atomicwrite import OutputFolderError, prepare_output_folder
from xenaudit.fleet.copy import CopyLimits, copy_report_folder
from xenaudit.fleet.formats import write_fleet
from xenaudit.fleet.interface import (
    DEFAULT_STALE_AFTER_H,
    FLEET_HTML,
    FLEET_JSON,
    Dom0Summary,
    FleetReport,
    InputError,
    LeftOut,
    MergeError,
    MissingDom0,
)
from xenaudit.fleet.reader import ReportDigest, read_report
from xenaudit.fleet.spool import SpooledActions
from xenaudit.formats.interface import FormatError
from xenaudit.snapshots import safe_name

#: Names in FLEET_DIR that a Dom0's folder may never take.
RESERVED = frozenset({FLEET_HTML, FLEET_JSON, "fleet.prom"})


@dataclass(frozen=True)
class MergeOptions:
    stale_after_h: float = DEFAULT_STALE_AFTER_H
    #: Dom0s that should be in the fleet, each with a note on why it may not be.
    expected: tuple[tuple[str, str], ...] = ()
    #: Merge into a FLEET_DIR that is not empty, replacing Dom0 folders of the same name.
    force: bool = False
    limits: CopyLimits = field(default_factory=CopyLimits)
    page_actions: int = 1000
    #: The time ages are measured against (now, unless a test fixes it).
    now: datetime | None = None
    progress: Callable[[str], None] | None = None


def prepare_output(fleet_dir: Path, force: bool) -> None:
    """Create FLEET_DIR, or refuse one that holds something unless `force` (as `audit -o`)."""
    try:
        prepare_output_folder(fleet_dir, force)
    except OutputFolderError as exc:
        raise MergeError(str(exc)) from exc


def _hours(now: datetime, then: datetime) -> float:
    return round((now - then).total_seconds() / 3600, 2)


def _label(hosts: Sequence[str]) -> str:
    return ", ".join(hosts)


def choose(digests: dict[int, ReportDigest]) -> tuple[list[int], list[tuple[int, str]]]:
    """Which inputs are merged: one report per Dom0, the newest run.

    Returns the winners in input order and the others with the reason. Two
    reports of the same Dom0 and run are a duplicate; an older run of a Dom0
    that also has a newer one gives way to it.
    """
    claimed: dict[str, int] = {}
    losers: list[tuple[int, str]] = []
    newest_first = sorted(digests, key=lambda i: (-digests[i].moment.timestamp(), i))
    for index in newest_first:
        mine = digests[index]
        owner = next((claimed[h] for h in mine.hosts if h in claimed), None)
        if owner is None:
            for host in mine.hosts:
                claimed[host] = index
            continue
        theirs = digests[owner]
        if set(theirs.hosts) == set(mine.hosts) and theirs.moment == mine.moment:
            reason = (
                f"duplicate: same Dom0 ({_label(mine.hosts)}) and run ({mine.generated_at}) "
                f"as {theirs.source}"
            )
        elif theirs.moment == mine.moment:
            shared = [h for h in mine.hosts if h in theirs.hosts]
            reason = f"Dom0 {_label(shared)} is also in {theirs.source} (same run)"
        else:
            shared = [h for h in mine.hosts if h in theirs.hosts]
            reason = (
                f"older run ({mine.generated_at}) of Dom0 {_label(shared)} than "
                f"{theirs.source} ({theirs.generated_at})"
            )
        losers.append((index, reason))
    winners = sorted(set(digests) - {i for i, _ in losers})
    return winners, losers


def _place(staging: Path, target: Path, force: bool) -> None:
    """Move a finished copy into place; with `force` an older copy of the same name goes."""
    if not target.exists() and not target.is_symlink():
        os.rename(staging, target)
        return
    if not force:
        raise MergeError(f"{target}: exists")
    old = target.with_name(f".old-{target.name}-{secrets.token_hex(4)}")
    os.rename(target, old)
    os.rename(staging, target)
    if old.is_dir() and not old.is_symlink():
        shutil.rmtree(old, ignore_errors=True)
    else:
        old.unlink()


class Merger:
    """One merge run. `run()` copies the Dom0 folders and returns the fleet report."""

    def __init__(self, inputs: Sequence[Path], fleet_dir: Path, options: MergeOptions) -> None:
        self.inputs = list(inputs)
        self.fleet_dir = fleet_dir
        self.options = options
        self.now = options.now or datetime.now(UTC)
        self.spool = SpooledActions()
        self.left_out: list[LeftOut] = []

    def _say(self, message: str) -> None:
        if self.options.progress is not None:
            self.options.progress(message)

    def read_all(self) -> dict[int, ReportDigest]:
        digests: dict[int, ReportDigest] = {}
        for index, folder in enumerate(self.inputs):
            try:
                digest = read_report(folder)
            except InputError as exc:
                self.left_out.append(LeftOut(str(folder), f"{exc.source}: {exc.message}"))
                continue
            for row in digest.actions:
                self.spool.add(index, row)
            # Only the digest stays; the rows are on disk now.
            digests[index] = digest.without_actions()
            self._say(f"read {folder}: {_label(digest.hosts)}, {digest.domains} domains")
        return digests

    def copy(self, index: int, digest: ReportDigest, folder: str) -> tuple[str, ...] | None:
        """Copy one input to FLEET_DIR/folder; the copy's problems, or None when left out."""
        source = self.inputs[index]
        staging = self.fleet_dir / f".merge-{folder}-{secrets.token_hex(4)}"
        try:
            result = copy_report_folder(source, staging, self.options.limits)
            if result.report_sha256 != digest.sha256:
                raise InputError(
                    str(source), "report.json", "changed while it was being merged; merge again"
                )
            _place(staging, self.fleet_dir / folder, self.options.force)
        except InputError as exc:
            self.left_out.append(LeftOut(str(source), f"{exc.source}: {exc.message}"))
            return None
        except OSError as exc:
            reason = f"copy: {exc.strerror or exc}"
            self.left_out.append(LeftOut(str(source), reason))
            return None
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
        return tuple(result.problems)

    def run(self) -> FleetReport:
        digests = self.read_all()
        winners, losers = choose(digests)
        for index, reason in losers:
            self.left_out.append(LeftOut(str(self.inputs[index]), reason))
        taken = set(RESERVED)
        summaries: list[Dom0Summary] = []
        folders: dict[int, str] = {}
        for index in winners:
            digest = digests.pop(index)
            folder = safe_name("+".join(digest.hosts), taken)
            problems = self.copy(index, digest, folder)
            if problems is None:
                continue
            folders[index] = folder
            summaries.append(self._summary(digest, folder, problems, self.spool.count(index)))
            self._say(f"merged {digest.source} as {folder}/")
        self.spool.keep(folders)
        covered = {h for s in summaries for h in s.hosts}
        missing = tuple(
            MissingDom0(name, note or "no report was given for it")
            for name, note in dict(self.options.expected).items()
            if name not in covered
        )
        left_out_order = {str(p): i for i, p in enumerate(self.inputs)}
        self.left_out.sort(key=lambda item: left_out_order.get(item.source, len(left_out_order)))
        return FleetReport(
            generated_at=self.now.isoformat(timespec="seconds"),
            tool_version=__version__,
            stale_after_h=self.options.stale_after_h,
            dom0s=tuple(sorted(summaries, key=lambda s: (s.hosts, s.folder))),
            missing=missing,
            left_out=tuple(self.left_out),
            actions=self.spool,
            page_actions=self.options.page_actions,
        )

    def _summary(
        self, digest: ReportDigest, folder: str, problems: tuple[str, ...], actions: int
    ) -> Dom0Summary:
        age = _hours(self.now, digest.moment)
        page = self.fleet_dir / folder / "report.html"
        return Dom0Summary(
            folder=folder,
            source=digest.source,
            hosts=digest.hosts,
            generated_at=digest.generated_at,
            tool_version=digest.tool_version,
            age_h=age,
            stale=age > self.options.stale_after_h,
            incomplete=digest.incomplete,
            demo=digest.demo,
            domains=digest.domains,
            findings=digest.findings,
            domain_severities=digest.domain_severities,
            worst_severity=digest.worst_severity,
            actions=actions,
            shortfalls=digest.shortfalls,
            errors=digest.errors,
            error_count=digest.error_count,
            copy_problems=problems,
            has_page=page.is_file() and not page.is_symlink(),
        )


def merge_reports(
    inputs: Sequence[Path], fleet_dir: Path, options: MergeOptions | None = None
) -> tuple[FleetReport, list[Path]]:
    """Merge `inputs` into `fleet_dir` and write fleet.json and fleet.html there.

    Raises `MergeError` when nothing can be written; input problems are in the
    returned report's `left_out`.
    """
    options = options or MergeOptions()
    fleet_dir = Path(fleet_dir)
    prepare_output(fleet_dir, options.force)
    merger = Merger(inputs, fleet_dir, options)
    fleet = merger.run()
    try:
        written = write_fleet(fleet, fleet_dir)
    except (OSError, FormatError) as exc:
        raise MergeError(f"{fleet_dir}: cannot write the fleet report: {exc}") from exc
    finally:
        with contextlib.suppress(OSError):
            for leftover in fleet_dir.glob(".merge-*"):
                shutil.rmtree(leftover, ignore_errors=True)
    return fleet, written
