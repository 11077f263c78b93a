"""The pipeline: inventory → hypervisors → guests → parsers → analysis → outputs.

This module only wires the stages together. Each stage reports bad input as
data (an error string on the host or domain, a collection status, a parse
error), so one broken guest or Dom0 never hides the rest of the fleet.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import MISSING, dataclass, fields, replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from xenaudit import __version__
from xenaudit.allocator import keep_large_blocks_returnable
from xenaudit.analysis import hypervisor_side
from xenaudit.analysis.default import DefaultAnalyzer
from xenaudit.analysis.history import (
    HistoryStore,
    night_for_assessment,
    with_first_seen,
)
from xenaudit.analysis.interface import (
    SEVERITY_ORDER,
    Assessment,
    DomainInput,
    Finding,
    HistoryNight,
)
from xenaudit.atomicwrite import OutputFolderError, make_folders, prepare_output_folder
from xenaudit.audit_hypervisor import (
    hypervisor_history,
    record_hypervisor_nights,
    with_collect_mode,
    with_hypervisor_nights,
)
from xenaudit.audit_stores import ROW_ERRORS, opened_store, record_by_night
from xenaudit.cfgfiles import CFG_DIR, CfgReplay, CfgStore, LoadedConfig, load_config
from xenaudit.collector.interface import GuestCollector, GuestSnapshot, GuestTarget
from xenaudit.collector.snapshot import SnapshotCollector, save_guest_snapshot
from xenaudit.collector.targets import targets_for
from xenaudit.errors import name_once
from xenaudit.formats.interface import FORMAT_NAMES, FormatError, write_formats
from xenaudit.hypervisor.cfgfind import CfgIndex
from xenaudit.hypervisor.cfgmirror import MirrorError, mirror_cfg_dir
from xenaudit.hypervisor.cfgonly import cfg_only_names, shutoff_domain
from xenaudit.hypervisor.drift import drift
from xenaudit.hypervisor.factory import read_hosts
from xenaudit.hypervisor.interface import Domain, HostView
from xenaudit.hypervisor.runner import RunnerError
from xenaudit.hypervisor.snapshot import save_host_snapshot
from xenaudit.hypervisor.ssh_runner import SshRunner
from xenaudit.inventory.interface import HypervisorSpec, Inventory
from xenaudit.parsers.guest import boot_time_of, parse_guest
from xenaudit.parsers.interface import GuestFacts
from xenaudit.report import AuditReport, DomainReport, HostReport
from xenaudit.snapshots import (
    HOST_META,
    HYPERVISOR_DIR,
    SnapshotFileError,
    host_dirs,
    is_clean_text,
    load_json,
    read_snapshot_file,
    safe_name,
)
from xenaudit.xlcfg import propose_memory_patch

ALL_FORMATS: tuple[str, ...] = FORMAT_NAMES

#: States in which a guest can be reached and has a kernel to read.
RUNNING_STATES = frozenset({"running", "blocked", "unknown"})


@dataclass(frozen=True)
class AuditOptions:
    outdir: Path
    formats: tuple[str, ...] = ALL_FORMATS
    #: History store directory; None uses the inventory's state_dir.
    state_dir: Path | None = None
    #: Replay the hypervisor outputs, cfgs and guests saved under this snapshots folder.
    from_snapshots: Path | None = None
    #: Treat this directory as `/` when looking for cfg files.
    root: Path = Path("/")
    demo: bool = False
    record_history: bool = True
    #: Seed the history store from a JSON list of earlier nights (the demo does).
    seed_history: Path | None = None
    progress: Callable[[str], None] | None = None
    collector: GuestCollector | None = None
    now: datetime | None = None
    #: Write into an existing folder that is not empty or not ours (links are still refused).
    force: bool = False


class _Crashes:
    """Unexpected exceptions in a stage: recorded, and the run goes on with what it has.

    A bug must not cost the night its report and metrics, and must not look
    like a normal night either: each one becomes an error line, a traceback
    for the log, and exit code 4.
    """

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        self.tracebacks: list[str] = []

    @contextmanager
    def guard(self, stage: str) -> Iterator[None]:
        try:
            yield
        except Exception as exc:
            self.tracebacks.append(f"{stage}:\n{traceback.format_exc()}")
            self.errors.append(f"internal error in {stage}: {type(exc).__name__}: {exc}")


def check_output(options: AuditOptions) -> None:
    """Refuse an output folder that could redirect or mix the run's writes (OutputFolderError).

    A replay must not write into the folder it reads (nor read a folder
    inside the one it writes): the new snapshots would replace the ones
    being replayed, and links planted there would steer the writes.
    """
    if options.from_snapshots is not None:
        out = Path(os.path.realpath(options.outdir))
        source = Path(os.path.realpath(options.from_snapshots))
        if out == source or out in source.parents or source in out.parents:
            raise OutputFolderError(
                f"{options.outdir} and the snapshots being replayed ({options.from_snapshots}) "
                "overlap; write the replay to a new folder"
            )
    prepare_output_folder(options.outdir, options.force)


def run_audit(inventory: Inventory, options: AuditOptions) -> AuditReport:
    """Run every stage and write the chosen outputs under `options.outdir`.

    Raises OutputFolderError, before anything is read or written, for an
    output folder it will not use.
    """
    check_output(options)
    keep_large_blocks_returnable()  # guests' kernel logs must not pin Dom0's memory
    now = options.now or datetime.now(UTC)
    generated_at = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    outdir = options.outdir
    snapshot_root = outdir / "snapshots"
    try:
        make_folders(outdir, snapshot_root)
    except OSError as exc:
        raise OutputFolderError(f"{snapshot_root}: cannot use: {exc}") from None
    say = options.progress or (lambda _msg: None)
    errors: list[str] = []
    crashes = _Crashes(errors)

    hosts: list[_Host] = []
    with crashes.guard("reading the hypervisors"):
        hosts = _read_hosts(inventory, outdir, snapshot_root, generated_at, say, errors)
    pending: list[_Pending] = []
    targets: list[GuestTarget] = []
    not_collected: dict[tuple[str, str], GuestSnapshot] = {}
    with crashes.guard("reading the cfg files"), ExitStack() as scratch:
        pending, targets, not_collected = _domains_and_cfgs(
            inventory, options, hosts, snapshot_root, scratch, errors
        )

    snapshots: dict[tuple[str, str], GuestSnapshot] = {}
    # Domains judged from Dom0 keep their (empty) snapshot, so a replay knows why.
    from_dom0 = [
        snap
        for snap in not_collected.values()
        if snap.error == hypervisor_side.HYPERVISOR_SIDE_REASON
    ]
    parsed: dict[tuple[str, str], GuestFacts | None] = {}
    with crashes.guard("collecting the guests"):
        _collect(
            inventory, options, targets, snapshot_root, say, snapshots, errors, from_dom0, parsed
        )
    snapshots.update(not_collected)

    analyzer = DefaultAnalyzer()
    replaying = options.from_snapshots is not None
    inputs: list[DomainInput] = []
    for host_name, domain, loaded, drifted in pending:
        with crashes.guard(f"reading {host_name}/{domain.name}"):
            view = next(v for s, v, _ in hosts if s.name == host_name and v is not None)
            snap = snapshots.get((host_name, domain.name))
            inputs.append(
                DomainInput(
                    host=view,
                    domain=domain,
                    config=loaded.facts,
                    snapshot=snap,
                    facts=(
                        parsed[(host_name, domain.name)]
                        if (host_name, domain.name) in parsed
                        else _parse(snap, domain.name, errors)
                    ),
                    override=with_collect_mode(inventory, host_name, domain.name, snap),
                    thresholds=inventory.thresholds,
                    drift=drifted,
                )
            )
    assessments: list[Assessment] = []
    host_reports: list[HostReport] = []
    nights_at = [_night_of(item.snapshot, generated_at, replaying) for item in inputs]
    with (
        crashes.guard("the history store"),
        _history(inventory, options, errors) as store,
        hypervisor_history(
            inventory, options, errors, needed=any(i.host.signals is not None for i in inputs)
        ) as hv_store,
    ):
        if store is not None:
            with crashes.guard("reading the history"):
                inputs = [
                    _with_history(item, store, generated_at, replaying, errors) for item in inputs
                ]
        if hv_store is not None:
            with crashes.guard("reading the hypervisor-side history"):
                inputs = [
                    with_hypervisor_nights(item, hv_store, night_at, errors)
                    for item, night_at in zip(inputs, nights_at, strict=True)
                ]
        with crashes.guard("analysis"):
            assessments = [_assess(analyzer, item, errors) for item in inputs]
            if store is not None:
                assessments = [_first_seen(a, store, errors) for a in assessments]
            host_reports, assessments = _plan(analyzer, hosts, inputs, assessments, inventory)
        if store is not None and options.record_history and len(assessments) == len(inputs):
            with crashes.guard("recording the history"):
                _record(store, generated_at, replaying, inputs, assessments, errors)
        if hv_store is not None and options.record_history and len(assessments) == len(inputs):
            with crashes.guard("recording the hypervisor-side history"):
                record_hypervisor_nights(hv_store, nights_at, inputs, assessments, errors)
    if len(assessments) != len(inputs) or not host_reports:
        # Analysis stopped half-way: keep every domain in the report all the same.
        assessments = _unassessed(inputs, assessments)
        host_reports = host_reports or _bare_hosts(hosts)

    domain_reports: list[DomainReport] = []
    with crashes.guard("building the report"):
        domain_reports = _domain_reports(inputs, assessments, pending, errors)
    if len(domain_reports) != len(inputs):
        domain_reports = _bare_domain_reports(inputs, assessments)
    report = AuditReport(
        generated_at=generated_at,
        tool_version=__version__,
        hosts=tuple(host_reports),
        domains=tuple(domain_reports),
        inventory_path=inventory.path,
        demo=options.demo,
        errors=tuple(errors),
    )
    try:
        write_formats(report, outdir, options.formats)
    except FormatError as exc:
        # The other outputs were written; say which one failed and go on.
        report = replace(report, errors=(*report.errors, f"output: {exc}"))
        report = replace(report, output_failed=True)
        crashes.tracebacks.extend(exc.tracebacks)
    return replace(report, crashes=tuple(crashes.tracebacks))


def _unassessed(inputs: Sequence[DomainInput], done: Sequence[Assessment]) -> list[Assessment]:
    """The assessments made, plus an "insufficient data" one for every domain left over."""
    made = {(a.host, a.domain): a for a in done}
    result = []
    for item in inputs:
        key = (item.host.name, item.domain.name)
        result.append(made.get(key) or _not_assessed(item, "the analysis stopped early"))
    return result


def _bare_hosts(hosts: Sequence[_Host]) -> list[HostReport]:
    return [
        HostReport(
            spec.name,
            view.backend if view else spec.backend,
            view,
            None,
            error,
            spec.uri,
            spec.ssh_host,
        )
        for spec, view, error in hosts
    ]


_Pending = tuple[str, Domain, LoadedConfig, tuple[str, ...]]
_Host = tuple[HypervisorSpec, HostView | None, str | None]


def _domains_and_cfgs(
    inventory: Inventory,
    options: AuditOptions,
    hosts: Sequence[tuple[HypervisorSpec, HostView | None, str | None]],
    snapshot_root: Path,
    scratch: ExitStack,
    errors: list[str],
) -> tuple[list[_Pending], list[GuestTarget], dict[tuple[str, str], GuestSnapshot]]:
    """Each domain with its cfg and drift, the guests to collect, and those left alone."""
    collected_at = (options.now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    deadline = time.monotonic() + inventory.ssh.deadline_s
    replay_cfgs = CfgReplay(options.from_snapshots) if options.from_snapshots else None
    if replay_cfgs is not None and replay_cfgs.error:
        errors.append(replay_cfgs.error)
    cfg_store = CfgStore(snapshot_root / CFG_DIR, root=options.outdir)

    pending: list[_Pending] = []
    targets: list[GuestTarget] = []
    not_collected: dict[tuple[str, str], GuestSnapshot] = {}
    for spec, view, _error in hosts:
        if view is None:
            continue
        cfg_root = options.root
        if replay_cfgs is None and spec.ssh_host and spec.backend in ("xl", "xm"):
            cfg_root = _mirror_remote_cfgs(spec, inventory, scratch, errors)
        # Each file of the folder is read once for all of this host's domains.
        index = CfgIndex.for_host(spec, cfg_root, deadline)
        # xm-era cfg files are Python: read only where they are plain assignments.
        dialect = "xm" if view.backend == "xm" else "xl"
        from_dom0 = {
            d.name
            for d in view.guests
            if inventory.collect_mode(d.name, spec.name) == "hypervisor"
            and not inventory.override(d.name, spec.name).skip
        }
        for domain in view.guests:
            override = inventory.override(domain.name, spec.name)
            why = _not_collected_because(domain, override.skip)
            if why is None and domain.name in from_dom0:
                why = hypervisor_side.HYPERVISOR_SIDE_REASON
            if why is not None:
                not_collected[(spec.name, domain.name)] = GuestSnapshot(
                    domain.name, spec.name, "skipped", collected_at, error=why
                )
            if replay_cfgs is not None:
                loaded = replay_cfgs.load(
                    spec.name, domain.name, spec.cfg_dir, override.cfg_path, dialect
                )
            else:
                loaded = load_config(domain.name, spec, override, cfg_root, index, dialect)
            if loaded.data is not None and loaded.facts.path:
                cfg_store.save(spec.name, domain.name, loaded.facts.path, loaded.data)
            drifted: tuple[str, ...] = ()
            if loaded.facts.error is None:
                drifted = drift(domain, loaded.facts.memory_mib, loaded.facts.maxmem_mib)
            pending.append((spec.name, domain, loaded, drifted))
        if view.backend == "xl":
            pending.extend(
                _cfg_only(inventory, spec, view, cfg_root, index, replay_cfgs, cfg_store)
            )
        reachable = [
            d.name
            for d in view.guests
            if d.state in RUNNING_STATES
            and not inventory.override(d.name, spec.name).skip
            and d.name not in from_dom0
        ]
        try:
            targets.extend(targets_for(inventory, spec.name, reachable))
        except ValueError as exc:
            errors.append(f"{spec.name}: inventory: {exc}")
    cfg_store.write_index()
    errors.extend(cfg_store.errors)

    return pending, targets, not_collected


def _cfg_only(
    inventory: Inventory,
    spec: HypervisorSpec,
    view: HostView,
    cfg_root: Path,
    index: CfgIndex,
    replay_cfgs: CfgReplay | None,
    cfg_store: CfgStore,
) -> list[_Pending]:
    """Shut-off domains of an xl host: cfgs whose name xl does not list (see cfgonly)."""
    listed = {d.name for d in view.domains}
    if replay_cfgs is not None:
        names = sorted(set(replay_cfgs.domains(spec.name)) - listed)
    else:
        names = cfg_only_names(index, listed)
    found: list[_Pending] = []
    for name in names:
        override = inventory.override(name, spec.name)
        if replay_cfgs is not None:
            loaded = replay_cfgs.load(spec.name, name, spec.cfg_dir, override.cfg_path)
        else:
            loaded = load_config(name, spec, override, cfg_root, index)
        if loaded.data is not None and loaded.facts.path:
            cfg_store.save(spec.name, name, loaded.facts.path, loaded.data)
        found.append((spec.name, shutoff_domain(name, loaded.facts), loaded, ()))
    return found


def _not_collected_because(domain: Domain, skip: bool) -> str | None:
    """Why a guest is deliberately not read tonight (it still counts in the host plan)."""
    if skip:
        return "skipped by the inventory (skip = true)"
    if domain.state == "paused":
        return "domain is paused: it cannot answer until it is unpaused"
    return None


def _mirror_remote_cfgs(
    spec: HypervisorSpec, inventory: Inventory, stack: ExitStack, errors: list[str]
) -> Path:
    """A scratch root holding a copy of a remote Dom0's cfg files (empty when unreadable)."""
    root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="xenaudit-cfg-")))
    extra = [o.cfg_path for o in inventory.domains.values() if o.cfg_path]
    try:
        runner = SshRunner(spec, inventory.ssh)
    except RunnerError as exc:
        errors.append(f"{spec.name}: cfg files: {exc}")
        return root
    try:
        warnings = mirror_cfg_dir(runner, spec.cfg_dir, root, extra)
    except (RunnerError, MirrorError) as exc:
        errors.append(f"{spec.name}: cfg files: {exc}")
    else:
        errors.extend(f"{spec.name}: cfg files: {w}" for w in warnings)
    finally:
        runner.close()
    return root


# --- hosts -----------------------------------------------------------------------


def _read_hosts(
    inventory: Inventory,
    outdir: Path,
    snapshot_root: Path,
    collected_at: str,
    say: Callable[[str], None],
    errors: list[str],
) -> list[_Host]:
    results: list[_Host] = []
    taken: set[str] = set()
    signal_hosts = {h.name for h in inventory.hypervisors if inventory.reads_signals(h.name)}
    for spec, view, error in read_hosts(inventory.hypervisors, inventory.ssh, signal_hosts):
        if view is None:
            say(name_once(spec.name, error or "could not be read"))
            results.append((spec, None, error))
            continue
        view = replace(view, name=spec.name)
        folder = snapshot_root / HYPERVISOR_DIR / safe_name(spec.name, taken)
        try:
            save_host_snapshot(view, folder, collected_at, root=outdir)
        except (OSError, ValueError) as exc:
            errors.append(f"{spec.name}: snapshot not saved: {exc}")
        errors.extend(f"{spec.name}: {warning}" for warning in view.warnings)
        say(f"{spec.name}: {len(view.guests)} domains")
        results.append((spec, view, None))
    return results


def snapshot_hypervisors(snapshot_root: Path) -> tuple[HypervisorSpec, ...]:
    """One replaying hypervisor per host saved under a snapshots folder."""
    specs = []
    for folder in host_dirs(snapshot_root):
        name = folder.name
        try:
            meta = load_json(read_snapshot_file(folder / HOST_META, 64 * 1024))
        except SnapshotFileError:
            meta = None
        if isinstance(meta, dict) and is_clean_text(meta.get("name")) and meta["name"]:
            name = meta["name"]
        # A broken host.json is reported when the host is replayed.
        specs.append(HypervisorSpec(name=name, backend="snapshot", snapshot_dir=str(folder)))
    return tuple(specs)


# --- guests ----------------------------------------------------------------------


def _collect(
    inventory: Inventory,
    options: AuditOptions,
    targets: Sequence[GuestTarget],
    snapshot_root: Path,
    say: Callable[[str], None],
    results: dict[tuple[str, str], GuestSnapshot],
    errors: list[str],
    also_save: Sequence[GuestSnapshot] = (),
    parsed: dict[tuple[str, str], GuestFacts | None] | None = None,
) -> None:
    """Collect every target into `results` (filled as they come, kept if a later one breaks).

    `also_save`: snapshots of guests not collected that are saved all the same.
    With `parsed`, each guest is also parsed as it arrives and its raw kernel log
    (up to the byte cap, megabytes) dropped once saved: what stays per guest is the
    parsed facts, whose events are capped, so peak memory does not grow with what
    guests send.
    """
    collector = options.collector
    if collector is None:
        replay = options.from_snapshots or (
            Path(inventory.guest_snapshot_dir) if inventory.guest_snapshot_dir else None
        )
        if replay is not None:
            collector = SnapshotCollector(replay, now=options.now)
        else:
            from xenaudit.collector.ssh import SshCollector

            collector = SshCollector(inventory.ssh)

    def done(snap: GuestSnapshot) -> None:
        detail = f" ({snap.error})" if snap.error else ""
        say(f"{snap.host}/{snap.domain}: {snap.status}{detail}")

    taken: set[str] = set()
    keep = inventory.ssh.kernlog_keep_events
    for snap in collector.collect(targets, on_done=done):
        key = (snap.host, snap.domain)
        results[key] = snap
        try:
            save_guest_snapshot(snap, snapshot_root, taken, root=options.outdir)
        except OSError as exc:
            errors.append(f"{snap.host}/{snap.domain}: snapshot not saved: {exc}")
        if parsed is not None:
            parsed[key] = _parse(snap, snap.domain, errors, keep)
            if "kernlog" in snap.sections:
                light = dict(snap.sections)
                light["kernlog"] = _kernlog_kept(light["kernlog"])
                results[key] = replace(snap, sections=light)
        del snap
    for snap in also_save:
        try:
            save_guest_snapshot(snap, snapshot_root, taken, root=options.outdir)
        except OSError as exc:
            errors.append(f"{snap.host}/{snap.domain}: snapshot not saved: {exc}")


def _kernlog_kept(text: str) -> str:
    """What stays of a parsed kernel log: the crash-kernel reservation lines of its
    first MiB, which the analysis reads from the raw text (signals._crashkernel_kib)."""
    head = text[: 1 << 20]
    return "\n".join(line for line in head.split("\n") if "crashkernel" in line)


def _parse(
    snap: GuestSnapshot | None, domain: str, errors: list[str], keep_events: int | None = None
) -> GuestFacts | None:
    if snap is None or not snap.sections:
        return None
    facts = parse_guest(snap.sections, snap.section_status, domain, keep_events=keep_events)
    errors.extend(facts.errors)
    return facts


# --- analysis --------------------------------------------------------------------


def _history(
    inventory: Inventory, options: AuditOptions, errors: list[str]
) -> AbstractContextManager[HistoryStore | None]:
    """Open the history store; a broken one is reported and the audit goes on without it."""
    seed = options.seed_history
    return opened_store(
        HistoryStore.open,
        "history",
        inventory,
        options,
        errors,
        seed=partial(_seed_history, path=seed) if seed is not None else None,
    )


#: HistoryNight fields without a default: a seed row that leaves them out gives 0 for
#: the log's event counts and null for the rest.
_SEED_REQUIRED = tuple(
    f.name
    for f in fields(HistoryNight)
    if f.default is MISSING and f.default_factory is MISSING and f.name != "run_at"
)


def _seed_history(store: HistoryStore, *, path: Path) -> None:
    rows = json.loads(path.read_text(encoding="utf-8"))
    known = {f.name for f in fields(HistoryNight)} - {"run_at", "finding_codes", "night", "runs"}
    for row in rows:
        values = {k: v for k, v in row.items() if k in known}
        values.setdefault("page_alloc_failures", 0)
        values.setdefault("oom_kills", 0)
        for name in _SEED_REQUIRED:
            values.setdefault(name, None)
        night = HistoryNight(
            run_at=row["run_at"], finding_codes=tuple(row.get("finding_codes", ())), **values
        )
        store.record(row["run_at"], row["host"], row["domain"], night)


def _not_assessed(item: DomainInput, message: str) -> Assessment:
    return Assessment(
        domain=item.domain.name,
        host=item.host.name,
        severity="warning",
        findings=(
            Finding(
                code="insufficient_data",
                severity="warning",
                title="Could not be analysed",
                detail=message,
            ),
        ),
    )


def _assess(analyzer: DefaultAnalyzer, item: DomainInput, errors: list[str]) -> Assessment:
    try:
        return analyzer.assess(item)
    except Exception as exc:  # one domain's bug must not end the audit
        message = f"{item.domain.name}: analysis: {type(exc).__name__}: {exc}"
        errors.append(message)
        return _not_assessed(item, message)


def _with_history(
    item: DomainInput, store: HistoryStore, run_at: str, replaying: bool, errors: list[str]
) -> DomainInput:
    """The domain with its earlier nights; a history it cannot read costs only its trends."""
    night_at = _night_of(item.snapshot, run_at, replaying)
    try:
        earlier = store.nights_before(item.host.name, item.domain.name, night_at)
    except ROW_ERRORS as exc:
        errors.append(f"{item.host.name}/{item.domain.name}: history: {exc}")
        return item
    # Only earlier nights: tonight's own earlier runs are merged into tonight, not history.
    return replace(item, history=earlier)


def _first_seen(assessment: Assessment, store: HistoryStore, errors: list[str]) -> Assessment:
    try:
        return with_first_seen(assessment, store)
    except ROW_ERRORS as exc:
        errors.append(f"{assessment.host}/{assessment.domain}: history: {exc}")
        return assessment


def _plan(
    analyzer: DefaultAnalyzer,
    hosts: Sequence[tuple[HypervisorSpec, HostView | None, str | None]],
    inputs: Sequence[DomainInput],
    assessments: Sequence[Assessment],
    inventory: Inventory,
) -> tuple[list[HostReport], list[Assessment]]:
    by_key = {(a.host, a.domain): a for a in assessments}
    reports: list[HostReport] = []
    for spec, view, error in hosts:
        if view is None:
            reports.append(
                HostReport(spec.name, spec.backend, None, None, error, spec.uri, spec.ssh_host)
            )
            continue
        host_inputs = [i for i in inputs if i.host.name == view.name]
        host_assessments = [by_key[(view.name, i.domain.name)] for i in host_inputs]
        plan, updated = analyzer.plan_host(
            view, host_assessments, host_inputs, xen_reserve_mib=spec.xen_reserve_mib
        )
        for a in updated:
            by_key[(a.host, a.domain)] = a
        reports.append(
            HostReport(spec.name, view.backend, view, plan, None, spec.uri, spec.ssh_host)
        )
    return reports, [by_key[(a.host, a.domain)] for a in assessments]


def _night_of(snap: GuestSnapshot | None, run_at: str, replaying: bool) -> str:
    """The night a domain's facts belong to: the run, or for a replay when they were collected.

    Replaying an old run's snapshots then files its nights where they belong, and
    replaying the same snapshots twice does not count a night twice.
    """
    if not replaying or snap is None:
        return run_at
    try:
        when = datetime.fromisoformat(snap.collected_at)
    except (TypeError, ValueError):
        return run_at
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _record(
    store: HistoryStore,
    run_at: str,
    replaying: bool,
    inputs: Sequence[DomainInput],
    assessments: Sequence[Assessment],
    errors: list[str],
) -> None:
    """Record each night in one transaction; a row the store refuses costs only its domain."""
    rows = []
    for item, assessment in zip(inputs, assessments, strict=True):
        if item.facts is None or item.facts.meminfo is None:
            continue
        night_at = _night_of(item.snapshot, run_at, replaying)
        uname = item.snapshot.sections.get("uname") if item.snapshot else None
        night = night_for_assessment(
            item.facts,
            night_at,
            assessment,
            item.config,
            item.domain.target_kib,
            boot_time_of(uname),
        )
        rows.append((night_at, item.host.name, item.domain.name, night))
    record_by_night(store.record_run, rows, "history", errors)


# --- report ----------------------------------------------------------------------


def _domain_reports(
    inputs: Sequence[DomainInput],
    assessments: Sequence[Assessment],
    pending: Sequence[_Pending],
    errors: list[str],
) -> list[DomainReport]:
    cfgs = {(host, domain.name): (loaded, drifted) for host, domain, loaded, drifted in pending}
    reports = []
    taken: set[str] = set()
    for item, assessment in zip(inputs, assessments, strict=True):
        loaded, drifted = cfgs[(item.host.name, item.domain.name)]
        patch_text = None
        patch_path = None
        rec = assessment.recommendation
        if (
            rec is not None
            and rec.fits
            and rec.change != "none"
            and loaded.data is not None
            and loaded.facts.error is None
            and loaded.facts.path
        ):
            try:
                patch_text = propose_memory_patch(
                    loaded.facts.path, loaded.data, rec.memory_mib, rec.maxmem_mib
                )
            except Exception as exc:  # one cfg the editor trips on must not cost the report
                errors.append(f"{item.domain.name}: patch: {type(exc).__name__}: {exc}")
            if patch_text:
                patch_path = f"patches/{safe_name(item.domain.name, taken)}.cfg.diff"
        reports.append(
            replace(
                _bare_report(item, assessment),
                drift=drifted,
                patch_path=patch_path,
                patch_text=patch_text,
            )
        )
    return reports


def _bare_report(item: DomainInput, assessment: Assessment) -> DomainReport:
    """A domain's report without drift or patch."""
    return DomainReport(
        host=item.host.name,
        domain=item.domain,
        config=item.config,
        snapshot=item.snapshot,
        facts=item.facts,
        assessment=assessment,
    )


def _bare_domain_reports(
    inputs: Sequence[DomainInput], assessments: Sequence[Assessment]
) -> list[DomainReport]:
    """Every domain without patches, for when building the full reports failed."""
    return [_bare_report(item, a) for item, a in zip(inputs, assessments, strict=True)]


def proposes_a_change(report: AuditReport) -> bool:
    """A patch was written, or a change that fits is recommended (e.g. as virsh commands)."""
    for dom in report.domains:
        if dom.patch_text:
            return True
        rec = dom.assessment.recommendation
        if rec is not None and rec.fits and rec.change != "none":
            return True
    return False


#: An unexpected exception somewhere in the run (a bug): see the traceback on stderr.
EXIT_CRASH = 4


def exit_code(report: AuditReport, fail_on: str) -> int:
    """4 after a crash; 3 when incomplete; 1 when a patch is written or a finding
    reaches `fail_on`; else 0.

    0 means "nothing to change": a night that writes a patch is never 0, whatever
    `fail_on` says ("never" only stops findings from making it 1).
    """
    if report.crashes:
        return EXIT_CRASH
    if report.incomplete or report.output_failed:
        return 3
    if proposes_a_change(report):
        return 1
    if fail_on in SEVERITY_ORDER and report.worst_severity_rank() >= SEVERITY_ORDER.index(fail_on):
        return 1
    return 0
