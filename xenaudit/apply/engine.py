"""Applying a reviewed report: check everything, ask, back up, replace, verify, log.

Per domain, in this order, stopping at the first problem (which is printed
with the domain and the source, and the run goes on with the next domain):

1. the patch and the cfg are where the report says and are what they should
   be (paths.py), the diff names exactly that cfg and only touches memory,
   maxmem and comments (policy.py);
2. the cfg still has the hash the audit recorded: otherwise the patch is
   stale and is skipped;
3. the patched bytes parse with the project's xl.cfg parser and carry the
   recommended values (verify.py);
4. the admin says yes (or gave --yes);
5. a timestamped backup is made beside the cfg, the action log gets a
   "started" line, the cfg is replaced atomically with owner, mode and
   xattrs kept, read back and checked again (rolled back from the backup if
   it is not right), and the log gets the result;
6. with --live, the domain's running memory is changed where live_plan.py
   finds it safe, every command printed before it runs and logged after.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import shutil
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from xenaudit.apply import files, policy, unidiff
from xenaudit.apply.actionlog import (
    ActionLog,
    iso,
    utc_now,
    who,
)
from xenaudit.apply.console import printable, printable_bytes
from xenaudit.apply.defaults import DEFAULT_STATE_DIR
from xenaudit.apply.interface import (
    ApplyError,
    DomainOutcome,
    HostEntry,
    LiveChanger,
    LivePlan,
    LiveResult,
    Outcome,
    ProposedChange,
    RunSummary,
)
from xenaudit.apply.live_libvirt import LibvirtLiveChanger
from xenaudit.apply.live_plan import plan_live
from xenaudit.apply.live_xl import XlLiveChanger
from xenaudit.apply.livehosts import LiveHosts, nowhere
from xenaudit.apply.paths import (
    CfgLocation,
    PathRefused,
    expected_headers,
    locate_cfg,
    locate_patch,
    normalise_cfg_dirs,
    under_root,
)
from xenaudit.apply.reviewed import ReviewedReport
from xenaudit.apply.verify import cfg_problem
from xenaudit.hypervisor.cfgfind import looks_like_domain_cfg
from xenaudit.xlcfg import CfgSyntaxError, parse

DEFAULT_CFG_DIRS = ("/etc/xen",)

Confirm = Callable[[str], bool]


def _memory_of(data: bytes, logical: str) -> tuple[str, str]:
    """(memory, maxmem) in MiB as xl reads `data`; maxmem defaults to memory, as in xl."""
    try:
        cfg = parse(data, logical)
    except CfgSyntaxError:
        return "?", "?"
    memory = cfg.memory_mib
    maxmem = cfg.maxmem_mib if cfg.maxmem_mib is not None else memory
    return ("?" if memory is None else str(memory)), ("?" if maxmem is None else str(maxmem))


def _not_the_domains_cfg(data: bytes, file_name: str, logical: str, domain: str) -> str | None:
    """Why a file is not the cfg of `domain` (a report may name any file), or None.

    The audit only takes a file as a domain's cfg when xl would: it is not
    xl.conf, a backup or a script, and its `name =` is the domain's.
    """
    if not looks_like_domain_cfg(file_name):
        return f"{file_name} is not a domain cfg (xl.conf, a backup or a script)"
    try:
        declared = parse(data, logical).name
    except CfgSyntaxError as exc:
        return f"does not parse as an xl cfg: {exc}"
    if declared != domain:
        return f"declares name = {declared!r}, so it is not the cfg of {domain!r}"
    return None


LiveFactory = Callable[[HostEntry], LiveChanger | None]


def default_live_factory(host: HostEntry) -> LiveChanger | None:
    """The changer for a host's backend: local xl, or libvirt at the inventory's URI."""
    if host.backend == "xl":
        return XlLiveChanger(shutil.which(host.xl_command))
    if host.backend == "libvirt" and host.uri:
        return LibvirtLiveChanger(host.uri)
    return None


@dataclass(frozen=True)
class ApplyOptions:
    #: Taken as `/` for every path apply touches: cfgs, backups and the state directory.
    root: Path = Path("/")
    #: Logical directories (before --root) a cfg must lie in.
    cfg_dirs: tuple[str, ...] = DEFAULT_CFG_DIRS
    #: Logical state directory (before --root) holding the action log.
    state_dir: str = DEFAULT_STATE_DIR
    live: bool = False
    #: Only these domains ("NAME" or "HOST/NAME"); empty means all.
    domains: tuple[str, ...] = ()
    #: Check and show everything, change nothing.
    dry_run: bool = False
    #: How each host is reached live, from the inventory (never from the report).
    live_hosts: LiveHosts = field(
        default_factory=lambda: nowhere("no inventory was given to reach the hosts")
    )

    def state_path(self) -> Path:
        return under_root(self.root, self.state_dir)

    def wants(self, host: str, domain: str) -> bool:
        return not self.domains or domain in self.domains or f"{host}/{domain}" in self.domains


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _stamp(moment: datetime) -> str:
    return iso(moment).replace("-", "").replace(":", "")


def _logical_sibling(logical: str, name: str) -> str:
    return f"{logical.rsplit('/', 1)[0]}/{name}"


class _AlreadyApplied(Exception):
    """The cfg already holds the proposed memory and maxmem (an earlier apply)."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.path = path


@dataclass(frozen=True)
class _Prepared:
    change: ProposedChange
    location: CfgLocation
    diff: bytes
    old: bytes
    new: bytes


@dataclass
class _Run:
    """Shared by apply and undo: where to print, how to ask, the clock."""

    report: ReviewedReport
    options: ApplyOptions
    confirm: Confirm
    out: TextIO
    clock: Callable[[], datetime] = utc_now
    outcomes: list[DomainOutcome] = field(default_factory=list)

    def say(self, text: str = "") -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def base_record(self, event: str) -> dict[str, Any]:
        record: dict[str, Any] = {"event": event, "at": iso(self.clock())}
        record.update(who())
        record.update(
            report=str(self.report.directory.resolve()),
            report_sha256=self.report.sha256,
            report_generated_at=self.report.generated_at,
            root=str(self.options.root),
        )
        return record


class Applier(_Run):
    """One `xenaudit apply` run over a loaded report."""

    def __init__(
        self,
        report: ReviewedReport,
        options: ApplyOptions,
        confirm: Confirm,
        out: TextIO,
        live_factory: LiveFactory = default_live_factory,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        super().__init__(report, options, confirm, out, clock)
        self._live_factory = live_factory
        self._changers: dict[str, LiveChanger | None] = {}

    def run(self) -> RunSummary:
        cfg_dirs = normalise_cfg_dirs(self.options.cfg_dirs)
        selected = [c for c in self.report.changes if self.options.wants(c.host, c.domain)]
        if not selected:
            self.say("nothing to apply: the report proposes no cfg change for these domains")
        log = ActionLog(self.options.state_path())
        # A dry run writes nothing, so it needs neither the lock nor the state directory.
        guard = contextlib.nullcontext() if self.options.dry_run else log.locked()
        try:
            with guard:
                for change in selected:
                    self.outcomes.append(self._one(change, cfg_dirs, log))
        finally:
            for changer in self._changers.values():
                close = getattr(changer, "close", None)
                if close is not None:
                    close()
        return RunSummary(tuple(self.outcomes), self.report.problems)

    # -- one domain ------------------------------------------------------------

    def _one(
        self, change: ProposedChange, cfg_dirs: Sequence[str], log: ActionLog
    ) -> DomainOutcome:
        label = printable(change.label)
        self.say(f"== {label}: {printable(change.cfg_path)}")
        try:
            prepared = self._prepare(change, cfg_dirs)
        except _AlreadyApplied as done:
            self.say(f"   already applied: {printable(done.path)} has memory and maxmem in place")
            return DomainOutcome(change.domain, change.host, "unchanged", "already applied")
        except ApplyError as exc:
            self.say(f"   SKIPPED: {printable(str(exc))}")
            return DomainOutcome(change.domain, change.host, "skipped", str(exc))
        except OSError as exc:
            message = f"{change.label}: {change.cfg_path}: {exc.strerror or exc}"
            self.say(f"   FAILED: {printable(message)}")
            return DomainOutcome(change.domain, change.host, "failed", message)
        if prepared.new == prepared.old:
            self.say("   the diff leaves the cfg as it is; nothing to do")
            return DomainOutcome(change.domain, change.host, "unchanged", "no change")
        self._show(prepared)
        live_plan = self._live_plan(change) if self.options.live else None
        if live_plan is not None:
            self._show_live_plan(live_plan)
        if self.options.dry_run:
            self.say("   dry run: not applied")
            return DomainOutcome(change.domain, change.host, "unchanged", "dry run")
        if not self.confirm(f"Apply this change to {change.label}?"):
            self.say("   not applied (declined)")
            return DomainOutcome(change.domain, change.host, "declined", "declined")
        outcome, apply_id = self._write(prepared, log)
        if outcome.outcome != "applied" or live_plan is None or not live_plan.steps:
            return outcome
        return self._go_live(change, live_plan, outcome, apply_id, log)

    def _prepare(self, change: ProposedChange, cfg_dirs: Sequence[str]) -> _Prepared:
        if not change.fits:
            why = change.not_fitting_reason or "the host plan could not make room for it"
            raise ApplyError(change.label, "recommendation", f"does not fit the host: {why}")
        try:
            patch_path = locate_patch(self.report.directory, change.patch_relpath)
        except PathRefused as exc:
            raise ApplyError(change.label, "patch", str(exc)) from exc
        source = f"patch {change.patch_relpath}"
        try:
            with files.directory(patch_path.parent) as dir_fd:
                diff, _ = files.read_regular(dir_fd, patch_path.name, unidiff.MAX_DIFF_BYTES)
            patch = unidiff.parse(diff)
        except unidiff.DiffError as exc:
            raise ApplyError(change.label, source, str(exc)) from exc
        try:
            location = locate_cfg(change.cfg_path, self.options.root, cfg_dirs)
        except PathRefused as exc:
            raise ApplyError(change.label, "config.path", str(exc)) from exc
        wanted = expected_headers(location.logical)
        if (patch.old_path, patch.new_path) != wanted:
            raise ApplyError(
                change.label,
                source,
                f"its headers name {patch.old_path!r} and {patch.new_path!r}, "
                f"not the cfg the report names ({wanted[0]!r}, {wanted[1]!r})",
            )
        refused = policy.disallowed_lines(patch)
        if refused:
            shown = "; ".join(refused[:3])
            raise ApplyError(
                change.label,
                source,
                f"changes more than memory, maxmem and comments: {shown}",
            )
        with files.directory(location.directory) as dir_fd:
            old, info = files.read_regular(dir_fd, location.name)
        if (info.st_dev, info.st_ino) != (location.device, location.inode):
            raise ApplyError(
                change.label, location.logical, "the file was replaced while checking it"
            )
        current = sha256(old)
        if current != change.cfg_sha256:
            # Changed since the audit: by an earlier apply of this same change, or by someone else.
            if cfg_problem(old, location.logical, change.memory_mib, change.maxmem_mib) is None:
                raise _AlreadyApplied(str(location.directory / location.name))
            raise ApplyError(
                change.label,
                location.logical,
                f"stale patch: the cfg changed since the audit read it "
                f"(sha256 {current[:12]}..., the audit saw {change.cfg_sha256[:12]}...); "
                "run the audit again",
            )
        not_its_cfg = _not_the_domains_cfg(old, location.name, location.logical, change.domain)
        if not_its_cfg is not None:
            raise ApplyError(change.label, location.logical, not_its_cfg)
        try:
            new = unidiff.apply(old, patch)
        except unidiff.DiffError as exc:
            raise ApplyError(change.label, source, str(exc)) from exc
        if new != old:
            problem = cfg_problem(new, location.logical, change.memory_mib, change.maxmem_mib)
            if problem is not None:
                raise ApplyError(change.label, source, f"the patched cfg {problem}")
        return _Prepared(change, location, diff, old, new)

    def _show(self, prepared: _Prepared) -> None:
        """What the change does, read from the cfg before and after the diff (not the report)."""
        change = prepared.change
        before = _memory_of(prepared.old, prepared.location.logical)
        after = _memory_of(prepared.new, prepared.location.logical)
        self.say(
            f"   memory {before[0]} -> {after[0]} MiB, maxmem {before[1]} -> {after[1]} MiB "
            f"(as xl reads the cfg before and after this diff)"
        )
        for reason in change.reasons:
            self.say(f"   why (from the report): {printable(reason)}")
        for line in unidiff.split_lines(prepared.diff):
            self.say("   " + printable_bytes(line.rstrip(b"\n")))

    # -- writing ----------------------------------------------------------------

    def _write(self, prepared: _Prepared, log: ActionLog) -> tuple[DomainOutcome, str]:
        change, location = prepared.change, prepared.location
        apply_id = uuid.uuid4().hex
        record = self.base_record("apply")
        record.update(
            id=apply_id,
            domain=change.domain,
            host=change.host,
            file=location.logical,
            path=str(location.physical),
            old_sha256=sha256(prepared.old),
            new_sha256=sha256(prepared.new),
            memory_mib=change.memory_mib,
            maxmem_mib=change.maxmem_mib,
            backup=None,
        )
        try:
            with files.directory(location.directory) as dir_fd:
                return self._write_in(dir_fd, prepared, record, log), apply_id
        except OSError as exc:
            message = f"{change.label}: {location.logical}: {exc.strerror or exc}"
            self.say(f"   FAILED: {printable(message)}")
            if record["backup"] is not None:
                log.append(
                    {**record, "result": "failed", "error": message, "at": iso(self.clock())}
                )
            return (
                DomainOutcome(change.domain, change.host, "failed", message, record["backup"]),
                apply_id,
            )

    def _write_in(
        self, dir_fd: int, prepared: _Prepared, record: dict[str, Any], log: ActionLog
    ) -> DomainOutcome:
        change, location = prepared.change, prepared.location
        name = location.name
        for leftover in files.remove_leftovers(dir_fd, name):
            self.say(f"   removed {printable(leftover)}, left by an interrupted apply")
        current, _ = files.read_regular(dir_fd, name)
        if current != prepared.old:
            message = f"{change.label}: {location.logical}: changed while waiting for the answer"
            self.say(f"   SKIPPED: {printable(message)}")
            return DomainOutcome(change.domain, change.host, "skipped", message)
        owner = files.ownership_of(dir_fd, name)
        backup = files.create_backup(dir_fd, name, prepared.old, owner, _stamp(self.clock()))
        backup_logical = _logical_sibling(location.logical, backup)
        record.update(backup=backup_logical, backup_path=str(location.directory / backup))
        log.append({**record, "result": "started"})
        self.say(f"   backup: {printable(str(location.directory / backup))}")
        files.replace(dir_fd, name, prepared.new, owner)
        # From here on the cfg holds the new bytes: whatever goes wrong puts the old ones back.
        try:
            written, _ = files.read_regular(dir_fd, name)
            problem: str | None = None
            if written != prepared.new:
                problem = "what was read back differs from what was written"
            else:
                problem = cfg_problem(
                    written, location.logical, change.memory_mib, change.maxmem_mib
                )
            if problem is not None:
                return self._roll_back(
                    dir_fd, prepared, owner, record, log, f"the written cfg {problem}"
                )
            log.append({**record, "result": "applied", "at": iso(self.clock())})
        except Exception as exc:
            why = f"{type(exc).__name__} after writing: {exc}"
            return self._roll_back(dir_fd, prepared, owner, record, log, why)
        except BaseException:
            # Interrupted (Ctrl-C) before the change was recorded: leave the cfg as it was.
            self._roll_back(dir_fd, prepared, owner, record, log, "interrupted after writing")
            raise
        # The file as written on disk: under --root that is not the path the report names.
        self.say(f"   applied: {printable(str(location.directory / name))}")
        return DomainOutcome(change.domain, change.host, "applied", "", backup_logical)

    def _roll_back(
        self,
        dir_fd: int,
        prepared: _Prepared,
        owner: files.Ownership,
        record: dict[str, Any],
        log: ActionLog,
        why: str,
    ) -> DomainOutcome:
        """Put the old bytes back after a failure that followed the rename, and say so."""
        change, location = prepared.change, prepared.location
        result: Outcome = "failed"
        try:
            files.replace(dir_fd, location.name, prepared.old, owner)
            restored, _ = files.read_regular(dir_fd, location.name)
            if restored == prepared.old:
                result = "rolled_back"
        except OSError as exc:
            why += f"; restoring failed: {exc.strerror or exc}"
        message = f"{change.label}: {location.logical}: {why}; "
        message += (
            "restored from the backup"
            if result == "rolled_back"
            else f"RESTORE FAILED (the backup is {record['backup']}; --undo restores it)"
        )
        try:
            log.append({**record, "result": result, "error": message, "at": iso(self.clock())})
        except OSError as exc:
            message += f"; the action log could not record this: {exc.strerror or exc}"
        shown = "ROLLED BACK" if result == "rolled_back" else "FAILED"
        self.say(f"   {shown}: {printable(message)}")
        return DomainOutcome(change.domain, change.host, result, message, record["backup"])

    # -- live -------------------------------------------------------------------

    def _live_plan(self, change: ProposedChange) -> LivePlan:
        if self.report.demo:
            note = "no live change: this is a demo report; its hosts are recordings"
            return LivePlan(domain=change.domain, host=change.host, steps=(), notes=(note,))
        host, refusal = self.options.live_hosts.lookup(change.host)
        if refusal is not None:
            note = f"no live change: {refusal}; the cfg takes effect at the next boot"
            return LivePlan(domain=change.domain, host=change.host, steps=(), notes=(note,))
        return plan_live(change, host)

    def _show_live_plan(self, plan: LivePlan) -> None:
        for note in plan.notes:
            self.say(f"   live: {printable(note)}")
        if plan.steps:
            changer = self._changer(plan.host)
            for step in plan.steps:
                shown = changer.describe(plan.domain, step) if changer else step.kind
                self.say(f"   live, if applied: {printable(shown)}")

    def _changer(self, host_name: str) -> LiveChanger | None:
        if host_name not in self._changers:
            host, _ = self.options.live_hosts.lookup(host_name)
            self._changers[host_name] = self._live_factory(host) if host else None
        return self._changers[host_name]

    def _go_live(
        self,
        change: ProposedChange,
        plan: LivePlan,
        outcome: DomainOutcome,
        apply_id: str,
        log: ActionLog,
    ) -> DomainOutcome:
        changer = self._changer(change.host)
        if changer is None:
            message = f"{change.label}: no way to reach host {change.host} live"
            self.say(f"   live: {printable(message)}")
            return replace(outcome, message=message, live_error=message)
        doubt = changer.check_identity(change)
        if doubt is not None:
            message = f"{change.label}: live change not made: {doubt}"
            self.say(f"   live: {printable(message)}")
            log.append(
                {**self._live_record(change, apply_id), "status": "refused", "detail": doubt}
            )
            return replace(outcome, message=message, live_error=message)
        results: list[LiveResult] = []
        for step in plan.steps:
            self.say(f"   live: {printable(changer.describe(change.domain, step))}")
            result = changer.run(change.domain, step)
            results.append(result)
            log.append(
                {
                    **self._live_record(change, apply_id),
                    "command": result.command,
                    "memory_mib": step.memory_mib,
                    "kind": step.kind,
                    "status": result.status,
                    "detail": result.detail,
                }
            )
            shown = f"   live: {result.status}"
            if result.detail:
                shown += f": {printable(result.detail)}"
            self.say(shown)
            if result.status == "failed":
                break
        return replace(outcome, live=tuple(results))

    def _live_record(self, change: ProposedChange, apply_id: str) -> dict[str, Any]:
        record = self.base_record("live")
        record.update(apply_id=apply_id, domain=change.domain, host=change.host)
        return record


_BACKUP_NAME = re.compile(r"^[^/\0]+\.xenaudit-[0-9]{8}T[0-9]{6}Z(?:-[0-9]+)?\.bak$")


@dataclass(frozen=True)
class _Applied:
    """What the log says one apply did, merged from its "started" and final lines."""

    apply_id: str
    domain: str
    host: str
    file: str
    backup: str
    old_sha256: str
    new_sha256: str
    live_done: bool


class Undoer(_Run):
    """`xenaudit apply --undo`: put back what the apply of one report replaced."""

    def run(self) -> RunSummary:
        cfg_dirs = normalise_cfg_dirs(self.options.cfg_dirs)
        log = ActionLog(self.options.state_path())
        errors: list[str] = []
        guard = contextlib.nullcontext() if self.options.dry_run else log.locked()
        with guard:
            read = log.read()
            errors.extend(read.skipped)
            applied = self._applied(read.records)
            if not applied:
                self.say("nothing to undo: the action log has no apply of this report")
            for item in applied:
                if self.options.wants(item.host, item.domain):
                    self.outcomes.append(self._one(item, cfg_dirs, log))
        return RunSummary(tuple(self.outcomes), tuple(errors))

    def _applied(self, records: Sequence[dict[str, Any]]) -> list[_Applied]:
        """The latest not-undone apply per file for this report and root, in log order."""
        merged: dict[str, dict[str, Any]] = {}
        undone: set[str] = set()
        live_done: set[str] = set()
        for record in records:
            event = record.get("event")
            if event == "undo" and record.get("result") == "restored":
                undone.add(str(record.get("apply_id")))
            elif event == "live" and record.get("status") == "done":
                live_done.add(str(record.get("apply_id")))
            elif (
                event == "apply"
                and record.get("report_sha256") == self.report.sha256
                and record.get("root") == str(self.options.root)
                and isinstance(record.get("id"), str)
            ):
                merged.setdefault(record["id"], {}).update(record)
        latest: dict[str, _Applied] = {}
        for apply_id, record in merged.items():
            # Whatever the log says the outcome was (a crash may have cut it, a
            # rollback may have failed), the cfg's hash decides in _restore.
            if apply_id in undone:
                continue
            fields = ("domain", "host", "file", "backup", "old_sha256", "new_sha256")
            if not all(isinstance(record.get(key), str) for key in fields):
                continue
            latest[record["file"]] = _Applied(
                apply_id=apply_id,
                live_done=apply_id in live_done,
                **{key: record[key] for key in fields},
            )
        return list(latest.values())

    def _one(self, item: _Applied, cfg_dirs: Sequence[str], log: ActionLog) -> DomainOutcome:
        label = f"{item.host}/{item.domain}"
        self.say(f"== undo {printable(label)}: {printable(item.file)}")
        try:
            return self._restore(item, label, cfg_dirs, log)
        except ApplyError as exc:
            self.say(f"   SKIPPED: {printable(str(exc))}")
            return DomainOutcome(item.domain, item.host, "skipped", str(exc))
        except OSError as exc:
            message = f"{label}: {item.file}: {exc.strerror or exc}"
            self.say(f"   FAILED: {printable(message)}")
            return DomainOutcome(item.domain, item.host, "failed", message)

    def _restore(
        self, item: _Applied, label: str, cfg_dirs: Sequence[str], log: ActionLog
    ) -> DomainOutcome:
        try:
            location = locate_cfg(item.file, self.options.root, cfg_dirs)
        except PathRefused as exc:
            raise ApplyError(label, item.file, str(exc)) from exc
        backup_name = item.backup.rsplit("/", 1)[-1]
        if _logical_sibling(item.file, backup_name) != item.backup or not _BACKUP_NAME.match(
            backup_name
        ):
            raise ApplyError(label, "action log", f"backup {item.backup!r} is not beside the cfg")
        with files.directory(location.directory) as dir_fd:
            current, _ = files.read_regular(dir_fd, location.name)
            digest = sha256(current)
            if digest == item.old_sha256:
                self.say("   the cfg already holds its content from before the apply")
                return DomainOutcome(item.domain, item.host, "unchanged", "already original")
            if digest != item.new_sha256:
                raise ApplyError(
                    label,
                    item.file,
                    "changed since apply wrote it; not restoring over someone's edit "
                    f"(backup kept at {item.backup})",
                )
            original, _ = files.read_regular(dir_fd, backup_name)
            if sha256(original) != item.old_sha256:
                raise ApplyError(label, item.backup, "the backup does not hold the original bytes")
            self.say(f"   restore from {printable(str(location.directory / backup_name))}")
            if item.live_done:
                self.say("   note: live memory changed by that apply is left as it is now")
            if self.options.dry_run:
                self.say("   dry run: not restored")
                return DomainOutcome(item.domain, item.host, "unchanged", "dry run")
            if not self.confirm(f"Restore {item.file} for {label}?"):
                self.say("   not restored (declined)")
                return DomainOutcome(item.domain, item.host, "declined", "declined")
            owner = files.ownership_of(dir_fd, location.name)
            files.replace(dir_fd, location.name, original, owner)
            restored, _ = files.read_regular(dir_fd, location.name)
        result = "restored" if sha256(restored) == item.old_sha256 else "failed"
        record = self.base_record("undo")
        record.update(
            apply_id=item.apply_id,
            domain=item.domain,
            host=item.host,
            file=item.file,
            path=str(location.physical),
            backup=item.backup,
            replaced_sha256=item.new_sha256,
            restored_sha256=sha256(restored),
            result=result,
        )
        log.append(record)
        if result != "restored":
            message = f"{label}: {item.file}: read back after restoring differs from the backup"
            self.say(f"   FAILED: {printable(message)}")
            return DomainOutcome(item.domain, item.host, "failed", message, item.backup)
        self.say(f"   restored: {printable(item.file)}")
        return DomainOutcome(item.domain, item.host, "restored", "", item.backup)
