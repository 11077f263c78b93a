"""The audit's wiring for hypervisor-side judgement: collect modes and the nights Dom0 saw.

Kept beside audit.py so the pipeline there only calls these; the judging
itself is analysis/hypervisor_side.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from xenaudit.analysis import hypervisor_side
from xenaudit.analysis.hypervisor_history import HypervisorHistory, HypervisorHistoryError
from xenaudit.analysis.hypervisor_nights import HypervisorNight
from xenaudit.analysis.interface import Assessment, DomainInput
from xenaudit.audit_stores import opened_store, record_by_night
from xenaudit.collector.interface import GuestSnapshot
from xenaudit.inventory.interface import DomainOverride, Inventory

if TYPE_CHECKING:
    from xenaudit.audit import AuditOptions


def with_collect_mode(
    inventory: Inventory, host: str, domain: str, snap: GuestSnapshot | None
) -> DomainOverride:
    """The domain's override with its collect mode resolved.

    A replay without the original inventory reads the mode from the guest
    snapshot, whose reason says when the domain was judged from Dom0 alone.
    """
    override = inventory.override(domain, host)
    if override.skip:
        return override
    mode = inventory.collect_mode(domain, host)
    if (
        snap is not None
        and snap.status == "skipped"
        and snap.error == hypervisor_side.HYPERVISOR_SIDE_REASON
    ):
        mode = "hypervisor"
    return replace(override, collect=mode)


@contextmanager
def hypervisor_history(
    inventory: Inventory, options: AuditOptions, errors: list[str], needed: bool = True
) -> Iterator[HypervisorHistory | None]:
    """The hypervisor-side nights; a broken store is reported and the audit goes on.

    Not opened (nor created) when `needed` is false: no Dom0's signals were read.
    """
    if not needed:
        yield None
        return
    seed = None
    if options.seed_history is not None:
        path = options.seed_history.parent / HYPERVISOR_SEED
        if path.is_file():
            seed = partial(_seed_hypervisor_nights, path=path)
    with opened_store(
        HypervisorHistory.open, "hypervisor-side history", inventory, options, errors, seed
    ) as store:
        yield store


#: Beside a seed history.json: earlier hypervisor-side nights (the demo's).
HYPERVISOR_SEED = "hypervisor-nights.json"


def _seed_hypervisor_nights(store: HypervisorHistory, *, path: Path) -> None:
    rows = json.loads(path.read_text(encoding="utf-8"))
    by_night: dict[str, list[tuple[str, str, HypervisorNight]]] = {}
    for row in rows:
        night = HypervisorNight(
            run_at=row["run_at"],
            domid=row.get("domid"),
            state=row.get("state", "running"),
            target_kib=row.get("target_kib"),
            held_kib=row.get("held_kib"),
            tools_total_kib=row.get("tools_total_kib"),
            tools_free_kib=row.get("tools_free_kib"),
            tools_source=row.get("tools_source"),
            feature_balloon=row.get("feature_balloon"),
            pod_events=row.get("pod_events", 0),
            crash_events=row.get("crash_events", 0),
            finding_codes=tuple(row.get("finding_codes", ())),
        )
        by_night.setdefault(row["run_at"], []).append((row["host"], row["domain"], night))
    for run_at, night_rows in sorted(by_night.items()):
        store.record_run(run_at, night_rows)


def with_hypervisor_nights(
    item: DomainInput, store: HypervisorHistory, night_at: str, errors: list[str]
) -> DomainInput:
    """The domain with its earlier hypervisor-side nights (on a Dom0 whose signals were read)."""
    if item.host.signals is None:
        return item
    try:
        earlier = store.nights(item.host.name, item.domain.name)
    except HypervisorHistoryError as exc:
        errors.append(f"hypervisor-side history: {exc}")
        return item
    return replace(item, hypervisor_nights=tuple(n for n in earlier if n.run_at < night_at))


def record_hypervisor_nights(
    store: HypervisorHistory,
    nights_at: Sequence[str],
    inputs: Sequence[DomainInput],
    assessments: Sequence[Assessment],
    errors: list[str],
) -> None:
    """Tonight as Dom0 saw it, for every domain on a Dom0 whose signals were read.

    `nights_at`: the night each input belongs to (a replay files old snapshots
    under the night they were collected).
    """
    rows = []
    for item, assessment, night_at in zip(inputs, assessments, nights_at, strict=True):
        if item.host.signals is None:
            continue
        codes = [f.code for f in assessment.findings]
        night = hypervisor_side.night_record(item, night_at, codes)
        rows.append((night_at, item.host.name, item.domain.name, night))
    record_by_night(store.record_run, rows, "hypervisor-side history", errors)
