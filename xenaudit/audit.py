"""The pipeline: inventory → hypervisors → guests → parsers → analysis → outputs.

This module only wires the stages together. Each stage reports bad input as
data (an error string on the host or domain, a collection status, a parse
error), so one broken guest or Dom0 never hides the rest of the fleet.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from xenaudit import __version__
from xenaudit.analysis.default import DefaultAnalyzer
from xenaudit.analysis.history import (
    HistoryError,
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
from xenaudit.cfgfiles import CFG_DIR, CfgReplay, CfgStore, LoadedConfig, load_config
from xenaudit.collector.interface import GuestCollector, GuestSnapshot, GuestTarget
from xenaudit.collector.snapshot import SnapshotCollector, save_guest_snapshot
from xenaudit.collector.targets import targets_for
from xenaudit.formats.interface import FORMAT_NAMES, FormatError, write_formats
from xenaudit.hypervisor.cfgmirror import MirrorError, mirror_cfg_dir
from xenaudit.hypervisor.cfgonly import cfg_only_names, shutoff_domain
from xenaudit.hypervisor.drift import drift
from xenaudit.hypervisor.factory import read_hosts
from xenaudit.hypervisor.interface import Domain, HostView
from xenaudit.hypervisor.runner import RunnerError
from xenaudit.hypervisor.snapshot import save_host_snapshot
from xenaudit.hypervisor.ssh_runner import SshRunner
from xenaudit.inventory.interface import HypervisorSpec, Inventory
from xenaudit.parsers.guest import parse_guest
from xenaudit.parsers.interface import GuestFacts
from xenaudit.report import AuditReport, DomainReport, HostReport
from xenaudit.snapshots import HYPERVISOR_DIR, host_dirs, safe_name
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


def run_audit(inventory: Inventory, options: AuditOptions) -> AuditReport:
    """Run every stage and write the chosen outputs under `options.outdir`."""
    now = options.now or datetime.now(UTC)
    generated_at = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    outdir = options.outdir
    snapshot_root = outdir / "snapshots"
    snapshot_root.mkdir(parents=True, exist_ok=True)
    say = options.progress or (lambda _msg: None)
    errors: list[str] = []

    hosts = _read_hosts(inventory, snapshot_root, generated_at, say, errors)
    with ExitStack() as scratch:
        domains = _domains_and_cfgs(inventory, options, hosts, snapshot_root, scratch, errors)
    pending, targets, not_collected = domains

    snapshots = _collect(inventory, options, targets, snapshot_root, say)
    snapshots.update(not_collected)

    analyzer = DefaultAnalyzer()
    replaying = options.from_snapshots is not None
    with _history(inventory, options, errors) as store:
        inputs: list[DomainInput] = []
        for host_name, domain, loaded, drifted in pending:
            view = next(v for s, v, _ in hosts if s.name == host_name and v is not None)
            snap = snapshots.get((host_name, domain.name))
            facts = _parse(snap, domain.name, errors)
            history: tuple[HistoryNight, ...] = ()
            if store is not None:
                night_at = _night_of(snap, generated_at, replaying)
                earlier = store.nights(host_name, domain.name)
                history = tuple(n for n in earlier if n.run_at < night_at)
            inputs.append(
                DomainInput(
                    host=view,
                    domain=domain,
                    config=loaded.facts,
                    snapshot=snap,
                    facts=facts,
                    override=inventory.override(domain.name, host_name),
                    thresholds=inventory.thresholds,
                    history=history,
                    drift=drifted,
                )
            )
        assessments = [_assess(analyzer, item, errors) for item in inputs]
        if store is not None:
            assessments = [with_first_seen(a, store) for a in assessments]
        host_reports, assessments = _plan(analyzer, hosts, inputs, assessments, inventory)
        if store is not None and options.record_history:
            _record(store, generated_at, replaying, inputs, assessments, errors)

    domain_reports = _domain_reports(inputs, assessments, pending)
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
    return report


_Pending = tuple[str, Domain, LoadedConfig, tuple[str, ...]]


def _domains_and_cfgs(
    inventory: Inventory,
    options: AuditOptions,
    hosts: Sequence[tuple[HypervisorSpec, HostView | None, str | None]],
    snapshot_root: Path,
    scratch: ExitStack,
    errors: list[str],
) -> tuple[list[_Pending], list[GuestTarget], dict[tuple[str, str], GuestSnapshot]]:
    """Each domain with its cfg and drift, the guests to collect, and those left alone."""
    collected_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    replay_cfgs = CfgReplay(options.from_snapshots) if options.from_snapshots else None
    if replay_cfgs is not None and replay_cfgs.error:
        errors.append(replay_cfgs.error)
    cfg_store = CfgStore(snapshot_root / CFG_DIR)

    pending: list[_Pending] = []
    targets: list[GuestTarget] = []
    not_collected: dict[tuple[str, str], GuestSnapshot] = {}
    for spec, view, _error in hosts:
        if view is None:
            continue
        cfg_root = options.root
        if replay_cfgs is None and spec.ssh_host and spec.backend == "xl":
            cfg_root = _mirror_remote_cfgs(spec, inventory, scratch, errors)
        for domain in view.guests:
            override = inventory.override(domain.name, spec.name)
            why = _not_collected_because(domain, override.skip)
            if why is not None:
                not_collected[(spec.name, domain.name)] = GuestSnapshot(
                    domain.name, spec.name, "skipped", collected_at, error=why
                )
            if replay_cfgs is not None:
                loaded = replay_cfgs.load(spec.name, domain.name)
            else:
                loaded = load_config(domain.name, spec, override, cfg_root)
            if loaded.data is not None and loaded.facts.path:
                cfg_store.save(spec.name, domain.name, loaded.facts.path, loaded.data)
            drifted: tuple[str, ...] = ()
            if loaded.facts.error is None:
                drifted = drift(domain, loaded.facts.memory_mib, loaded.facts.maxmem_mib)
            pending.append((spec.name, domain, loaded, drifted))
        if view.backend == "xl":
            pending.extend(_cfg_only(inventory, spec, view, cfg_root, replay_cfgs, cfg_store))
        reachable = [
            d.name
            for d in view.guests
            if d.state in RUNNING_STATES and not inventory.override(d.name, spec.name).skip
        ]
        try:
            targets.extend(targets_for(inventory, spec.name, reachable))
        except ValueError as exc:
            errors.append(f"{spec.name}: inventory: {exc}")
    cfg_store.write_index()

    return pending, targets, not_collected


def _cfg_only(
    inventory: Inventory,
    spec: HypervisorSpec,
    view: HostView,
    cfg_root: Path,
    replay_cfgs: CfgReplay | None,
    cfg_store: CfgStore,
) -> list[_Pending]:
    """Shut-off domains of an xl host: cfgs whose name xl does not list (see cfgonly)."""
    listed = {d.name for d in view.domains}
    if replay_cfgs is not None:
        names = sorted(set(replay_cfgs.domains(spec.name)) - listed)
    else:
        names = cfg_only_names(spec.cfg_dir, listed, cfg_root)
    found: list[_Pending] = []
    for name in names:
        if replay_cfgs is not None:
            loaded = replay_cfgs.load(spec.name, name)
        else:
            loaded = load_config(name, spec, inventory.override(name, spec.name), cfg_root)
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
    snapshot_root: Path,
    collected_at: str,
    say: Callable[[str], None],
    errors: list[str],
) -> list[tuple[HypervisorSpec, HostView | None, str | None]]:
    results: list[tuple[HypervisorSpec, HostView | None, str | None]] = []
    taken: set[str] = set()
    for spec, view, error in read_hosts(inventory.hypervisors, inventory.ssh):
        if view is None:
            say(f"{spec.name}: {error}")
            results.append((spec, None, error))
            continue
        view = replace(view, name=spec.name)
        folder = snapshot_root / HYPERVISOR_DIR / safe_name(spec.name, taken)
        save_host_snapshot(view, folder, collected_at)
        errors.extend(f"{spec.name}: {warning}" for warning in view.warnings)
        say(f"{spec.name}: {len(view.guests)} domains")
        results.append((spec, view, None))
    return results


def snapshot_hypervisors(snapshot_root: Path) -> tuple[HypervisorSpec, ...]:
    """One replaying hypervisor per host saved under a snapshots folder."""
    specs = []
    for folder in host_dirs(snapshot_root):
        try:
            meta = json.loads((folder / "host.json").read_text(encoding="utf-8"))
            name = str(meta["name"])
        except (OSError, ValueError, KeyError, TypeError):
            name = folder.name
        specs.append(HypervisorSpec(name=name, backend="snapshot", snapshot_dir=str(folder)))
    return tuple(specs)


# --- guests ----------------------------------------------------------------------


def _collect(
    inventory: Inventory,
    options: AuditOptions,
    targets: Sequence[GuestTarget],
    snapshot_root: Path,
    say: Callable[[str], None],
) -> dict[tuple[str, str], GuestSnapshot]:
    collector = options.collector
    if collector is None:
        replay = options.from_snapshots or (
            Path(inventory.guest_snapshot_dir) if inventory.guest_snapshot_dir else None
        )
        if replay is not None:
            collector = SnapshotCollector(replay)
        else:
            from xenaudit.collector.ssh import SshCollector

            collector = SshCollector(inventory.ssh)

    def done(snap: GuestSnapshot) -> None:
        detail = f" ({snap.error})" if snap.error else ""
        say(f"{snap.host}/{snap.domain}: {snap.status}{detail}")

    taken: set[str] = set()
    results: dict[tuple[str, str], GuestSnapshot] = {}
    for snap in collector.collect(targets, on_done=done):
        save_guest_snapshot(snap, snapshot_root, taken)
        results[(snap.host, snap.domain)] = snap
    return results


def _parse(snap: GuestSnapshot | None, domain: str, errors: list[str]) -> GuestFacts | None:
    if snap is None or not snap.sections:
        return None
    facts = parse_guest(snap.sections, snap.section_status, domain)
    errors.extend(facts.errors)
    return facts


# --- analysis --------------------------------------------------------------------


@contextmanager
def _history(
    inventory: Inventory, options: AuditOptions, errors: list[str]
) -> Iterator[HistoryStore | None]:
    """Open the history store; a broken one is reported and the audit goes on without it."""
    with tempfile.TemporaryDirectory(prefix="xenaudit-state-") as scratch:
        if options.state_dir is not None:
            state_dir = options.state_dir
        elif options.demo:
            state_dir = Path(scratch)
        else:
            state_dir = Path(inventory.state_dir)
        try:
            store = HistoryStore.open(state_dir)
        except HistoryError as exc:
            errors.append(f"history: {exc}")
            yield None
            return
        try:
            if options.seed_history is not None:
                _seed_history(store, options.seed_history)
            yield store
        finally:
            store.close()


def _seed_history(store: HistoryStore, path: Path) -> None:
    rows = json.loads(path.read_text(encoding="utf-8"))
    for row in rows:
        night = HistoryNight(
            run_at=row["run_at"],
            mem_total_kib=row.get("mem_total_kib"),
            mem_available_kib=row.get("mem_available_kib"),
            swap_used_kib=row.get("swap_used_kib"),
            pswpin=row.get("pswpin"),
            pgmajfault=row.get("pgmajfault"),
            oom_kill_counter=row.get("oom_kill_counter"),
            psi_some_avg60=row.get("psi_some_avg60"),
            page_alloc_failures=row.get("page_alloc_failures", 0),
            oom_kills=row.get("oom_kills", 0),
            finding_codes=tuple(row.get("finding_codes", ())),
        )
        store.record(row["run_at"], row["host"], row["domain"], night)


def _assess(analyzer: DefaultAnalyzer, item: DomainInput, errors: list[str]) -> Assessment:
    try:
        return analyzer.assess(item)
    except Exception as exc:  # one domain's bug must not end the audit
        message = f"{item.domain.name}: analysis: {type(exc).__name__}: {exc}"
        errors.append(message)
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
    by_night: dict[str, list[tuple[str, str, HistoryNight]]] = {}
    for item, assessment in zip(inputs, assessments, strict=True):
        if item.facts is None or item.facts.meminfo is None:
            continue
        night_at = _night_of(item.snapshot, run_at, replaying)
        night = night_for_assessment(item.facts, night_at, assessment)
        by_night.setdefault(night_at, []).append((item.host.name, item.domain.name, night))
    try:
        for night_at, rows in sorted(by_night.items()):
            store.record_run(night_at, rows)
    except HistoryError as exc:
        errors.append(f"history: {exc}")


# --- report ----------------------------------------------------------------------


def _domain_reports(
    inputs: Sequence[DomainInput],
    assessments: Sequence[Assessment],
    pending: Sequence[_Pending],
) -> list[DomainReport]:
    reports = []
    taken: set[str] = set()
    for item, assessment, (_host, _domain, loaded, drifted) in zip(
        inputs, assessments, pending, strict=True
    ):
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
            patch_text = propose_memory_patch(
                loaded.facts.path, loaded.data, rec.memory_mib, rec.maxmem_mib
            )
            if patch_text:
                patch_path = f"patches/{safe_name(item.domain.name, taken)}.cfg.diff"
        reports.append(
            DomainReport(
                host=item.host.name,
                domain=item.domain,
                config=item.config,
                snapshot=item.snapshot,
                facts=item.facts,
                assessment=assessment,
                drift=drifted,
                patch_path=patch_path,
                patch_text=patch_text,
            )
        )
    return reports


def exit_code(report: AuditReport, fail_on: str) -> int:
    """3 when incomplete, else 1 when a finding reaches `fail_on` ("never": no 1), else 0."""
    if report.incomplete or report.output_failed:
        return 3
    if fail_on in SEVERITY_ORDER and report.worst_severity_rank() >= SEVERITY_ORDER.index(fail_on):
        return 1
    return 0
