"""Builders of finished `AuditReport`s for the format tests, the browser tests and benchmarks.

They build the frozen dataclasses directly, so the output formats can be
tested before (and independently of) the collectors, parsers and analysis.
The numbers follow the reference case: a 512 MiB PV guest logging
`swapper: page allocation failure. order:0, mode:0x20` while its page cache is
nearly gone.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from xenaudit.analysis.interface import (
    Advice,
    Assessment,
    ConfigFacts,
    Evidence,
    Finding,
    HostPlan,
    MinFreeSuggestion,
    PlanEntry,
    Recommendation,
)
from xenaudit.collector.interface import SECTIONS, GuestSnapshot
from xenaudit.hypervisor.interface import Domain, HostView
from xenaudit.parsers.interface import (
    BalloonMessage,
    GuestFacts,
    KernelEvent,
    KernelLog,
    Meminfo,
    OomInvoked,
    OomKill,
    PageAllocFailure,
    Process,
    Psi,
    PsiLine,
)
from xenaudit.report import AuditReport, DomainReport, HostReport
from xenaudit.snapshots import safe_name

GENERATED_AT = "2024-05-14T02:31:07+00:00"
COLLECTED_AT = "2024-05-14T02:30:41+00:00"
TOOL_VERSION = "0.1.0"
MIB = 1024

#: Strings that try to break out of HTML, SVG, attributes, CSV, shells and Prometheus labels.
HOSTILE_PAYLOADS: tuple[str, ...] = (
    "<script>alert('xss-script')</script>",
    "<img src=x onerror=\"alert('xss-img')\">",
    "</textarea><b>xss-textarea</b>",
    '<a href="javascript:alert(1)">xss-js-link</a>',
    '<svg onload="alert(\'xss-svg\')"><circle r="9"/></svg>',
    '"><iframe src=//evil.example/x></iframe>',
    '=HYPERLINK("http://evil.example","xss-formula")',
    "web\u202eoff.gpj",
    'quote"back\\slash\nnew line',
    "tab\tand\x1b[31mansi\x00nul",
    "bad \udcff bytes",
    "' onmouseover='alert(9)",
    "{{ 7*7 }}{% raw %}jinja{% endraw %}",
)

SECTIONS_OK = dict.fromkeys(SECTIONS, "ok")


def meminfo(
    total_mib: int,
    available_mib: int,
    free_mib: int,
    *,
    swap_total_mib: int = 0,
    swap_free_mib: int = 0,
    estimated: bool = False,
) -> Meminfo:
    """A plausible /proc/meminfo; `estimated` drops MemAvailable like a pre-3.14 kernel."""
    cached = max(0, available_mib - free_mib) * MIB * 3 // 4
    fields = {
        "MemTotal": total_mib * MIB,
        "MemFree": free_mib * MIB,
        "MemAvailable": available_mib * MIB,
        "Buffers": 2 * MIB,
        "Cached": cached,
        "SwapCached": 0,
        "SReclaimable": max(0, available_mib - free_mib) * MIB // 8,
        "Shmem": 1 * MIB,
        "SwapTotal": swap_total_mib * MIB,
        "SwapFree": swap_free_mib * MIB,
        "HugePages_Total": 0,
        "Hugepagesize": 2048,
    }
    if estimated:
        del fields["MemAvailable"]
    return Meminfo(fields_kib=fields)


def patch_text(cfg_path: str, name: str, old_mib: int, new_mib: int, maxmem_mib: int) -> str:
    rel = cfg_path.lstrip("/")
    return (
        f"--- a/{rel}\n"
        f"+++ b/{rel}\n"
        "@@ -2,4 +2,5 @@\n"
        f' name = "{name}"\n'
        f"-memory = {old_mib}\n"
        f"+memory = {new_mib}\n"
        f"+maxmem = {maxmem_mib}\n"
        " vcpus = 2\n"
        ' type = "pv"\n'
    )


def swapper_failure(line: int = 412, process: str = "swapper") -> PageAllocFailure:
    return PageAllocFailure(
        line=line,
        timestamp="[1843211.405170]",
        process=process,
        order=0,
        gfp_mask="0x20",
        gfp_flags=("GFP_ATOMIC",),
        gfp_flags_source="decoded",
        buddy_lines=("Node 0 DMA32: 17*4kB 3*8kB 0*16kB 0*32kB = 92kB",),
    )


def domain_report(
    name: str,
    host: str = "dom0-a",
    *,
    domid: int | None = 7,
    state: str = "running",
    guest_type: str = "pv",
    memory_mib: int | None = 512,
    maxmem_mib: int | None = 512,
    status: str = "ok",
    collection_error: str | None = None,
    mem: Meminfo | None = None,
    psi: Psi | None = None,
    events: Sequence[KernelEvent] = (),
    processes: Sequence[Process] = (),
    severity: str = "ok",
    findings: Sequence[Finding] = (),
    advice: Sequence[Advice] = (),
    recommendation: Recommendation | None = None,
    need_mib: int | None = None,
    need_history_mib: Sequence[int] = (),
    min_free: MinFreeSuggestion | None = None,
    drift: Sequence[str] = (),
    with_patch: bool = True,
    config: bool = True,
    facts: bool = True,
    parse_errors: Sequence[str] = (),
) -> DomainReport:
    """One domain; a patch is attached when there is a recommendation that changes something."""
    cfg_path = f"/etc/xen/{safe_name(name)}.cfg"
    cfg = (
        ConfigFacts(
            path=cfg_path,
            memory_mib=memory_mib,
            maxmem_mib=maxmem_mib,
            guest_type=guest_type,  # type: ignore[arg-type]
            sha256=hashlib.sha256(name.encode("utf-8", "replace")).hexdigest(),
        )
        if config
        else None
    )
    live = Domain(
        name=name,
        domid=domid,
        uuid=None if domid is None else f"6f1c0e2a-0000-4000-8000-{domid:012d}",
        state=state,  # type: ignore[arg-type]
        guest_type=guest_type,  # type: ignore[arg-type]
        vcpus=2,
        target_kib=memory_mib * MIB if memory_mib is not None and state != "shutoff" else None,
        max_kib=(maxmem_mib or memory_mib or 0) * MIB if state != "shutoff" else None,
        current_kib=memory_mib * MIB if memory_mib is not None and state == "running" else None,
    )
    snapshot = (
        None
        if status == "skipped"
        else GuestSnapshot(
            domain=name,
            host=host,
            status=status,  # type: ignore[arg-type]
            collected_at=COLLECTED_AT,
            error=collection_error,
            sections={},
            section_status=(
                SECTIONS_OK
                if status == "ok"
                else {**SECTIONS_OK, "slabinfo": "denied", "kernlog": "truncated"}
                if status == "partial"
                else {}
            ),
            kernlog_source="dmesg" if status in ("ok", "partial") else None,
            host_key_fingerprint="SHA256:0b2f8c1c9e" if status == "host_key_rejected" else None,
        )
    )
    guest_facts = (
        GuestFacts(
            meminfo=mem,
            psi=psi,
            processes=tuple(processes),
            kernlog=KernelLog(events=tuple(events), lines_read=2000) if events else None,
            balloon_target_kib=memory_mib * MIB if memory_mib else None,
            balloon_current_kib=memory_mib * MIB if memory_mib else None,
            errors=tuple(parse_errors),
        )
        if facts and status in ("ok", "partial")
        else None
    )
    patch = None
    if with_patch and recommendation and recommendation.change != "none" and memory_mib:
        patch = patch_text(
            cfg_path, name, memory_mib, recommendation.memory_mib, recommendation.maxmem_mib
        )
    return DomainReport(
        host=host,
        domain=live,
        config=cfg,
        snapshot=snapshot,
        facts=guest_facts,
        assessment=Assessment(
            domain=name,
            host=host,
            severity=severity,  # type: ignore[arg-type]
            findings=tuple(findings),
            advice=tuple(advice),
            recommendation=recommendation,
            need_mib=need_mib,
            need_history_mib=tuple(need_history_mib),
            min_free=min_free,
        ),
        drift=tuple(drift),
        patch_path=f"patches/{safe_name(name)}.cfg.diff" if patch else None,
        patch_text=patch,
    )


def reference_case(name: str = "web01", host: str = "dom0-a") -> DomainReport:
    """The 512 MiB guest that logs atomic order-0 failures: a real shortage, sized up to fit."""
    failures = [swapper_failure(412), swapper_failure(530, "kworker/0:1H")]
    return domain_report(
        name,
        host,
        domid=7,
        memory_mib=512,
        maxmem_mib=512,
        mem=meminfo(491, 38, 9, swap_total_mib=256, swap_free_mib=20),
        psi=Psi(some=PsiLine(12.5, 9.8, 6.1, 81_234_567), full=PsiLine(3.1, 2.4, 1.2, 9_876_543)),
        events=[
            *failures,
            BalloonMessage(88, "[    0.412345]", "xen:balloon: Initialising balloon driver"),
        ],
        processes=[
            Process(812, "java", 301_000, 2_100_000),
            Process(640, "nginx", 22_000, 90_000),
            Process(1, "systemd", 9_000, 160_000),
        ],
        severity="critical",
        findings=[
            Finding(
                code="shortage",
                severity="critical",
                title="Real memory shortage",
                detail=(
                    "MemAvailable is 38 MiB of 491 MiB (7.7 %) and 92 % of swap is used: "
                    "the guest has no reclaimable memory left for atomic allocations."
                ),
                evidence=(
                    Evidence("meminfo", "MemAvailable:      38912 kB", 3),
                    Evidence(
                        "kernlog",
                        "swapper: page allocation failure. order:0, mode:0x20",
                        412,
                    ),
                    Evidence(
                        "kernlog",
                        "kworker/0:1H: page allocation failure. order:0, mode:0x20",
                        530,
                    ),
                ),
                first_seen="2024-05-09T02:30:12+00:00",
                nights_seen=4,
            ),
            Finding(
                code="atomic_reserve",
                severity="warning",
                title="Atomic allocations failing (GFP_ATOMIC, order 0)",
                detail="Interrupt-context allocations cannot wait for reclaim; "
                "vm.min_free_kbytes is 1351 kB.",
                evidence=(Evidence("sysvm", "min_free_kbytes = 1351", None),),
            ),
        ],
        advice=[
            Advice(
                "Raise the atomic reserve",
                "Until the memory grows, a larger min_free_kbytes keeps pages for interrupts.",
                (
                    "sysctl -w vm.min_free_kbytes=8192",
                    "echo 'vm.min_free_kbytes = 8192' > /etc/sysctl.d/90-xenaudit.conf",
                ),
            )
        ],
        recommendation=Recommendation(
            memory_mib=768,
            maxmem_mib=1024,
            reasons=(
                "need 474 MiB (MemTotal − MemAvailable) + 20 % margin = 569 MiB",
                "plus 100 MiB for the OOM kill seen on 2 nights, rounded up to 64 MiB steps",
            ),
            confidence="high",
            need_mib=474,
            change="increase",
            fits=True,
            live_change_safe=False,
        ),
        need_mib=474,
        need_history_mib=(402, 417, 455, 431, 468, 470, 474),
        min_free=MinFreeSuggestion(
            current_kib=1351,
            kernel_default_kib=2836,
            suggested_kib=8192,
            sized_for_kib=491 * MIB,
            reasons=("atomic order-0 failures on 4 nights",),
        ),
    )


def rich_report(*, demo: bool = False) -> AuditReport:
    """Two readable hosts (one short of memory) and one unreadable; every collection status."""
    a, b, c = "dom0-a", "dom0-b", "dom0-c"
    ref = reference_case("web01", a)
    domains: list[DomainReport] = [
        ref,
        domain_report(
            "db01",
            a,
            domid=8,
            memory_mib=4096,
            maxmem_mib=4096,
            mem=meminfo(4012, 310, 40, swap_total_mib=1024, swap_free_mib=100),
            events=[
                OomInvoked(901, "[2201.1]", "postgres", "0x100cca(GFP_HIGHUSER_MOVABLE)", 0, 0),
                OomKill(930, "[2201.3]", 4411, "postgres", 3_900_000, 3_600_000, 1200, 88_000),
            ],
            severity="critical",
            findings=[
                Finding(
                    "oom_kill",
                    "critical",
                    "OOM killer ended postgres",
                    "The kernel killed pid 4411 (postgres, anon-rss 3516 MiB).",
                    (Evidence("kernlog", "Out of memory: Killed process 4411 (postgres)", 930),),
                    nights_seen=1,
                )
            ],
            recommendation=Recommendation(
                6144,
                6144,
                ("need 3702 MiB + OOM bump",),
                "medium",
                3702,
                "increase",
                fits=False,
                not_fitting_reason="dom0-a has 1536 MiB free after the plan",
            ),
            need_mib=3702,
            need_history_mib=(3500, 3650, 3702),
        ),
        domain_report(
            "cache01",
            a,
            domid=9,
            guest_type="hvm",
            memory_mib=8192,
            maxmem_mib=8192,
            mem=meminfo(8050, 6900, 5200),
            severity="info",
            findings=[
                Finding(
                    "over_provisioned",
                    "info",
                    "Over-provisioned for 14 nights",
                    "Need stayed under 1.3 GiB.",
                    nights_seen=13,
                )
            ],
            recommendation=Recommendation(
                2048,
                2048,
                ("14 nights below 1300 MiB",),
                "high",
                1150,
                "decrease",
                live_change_safe=True,
            ),
            need_mib=1150,
            need_history_mib=tuple(1100 + (i * 37) % 200 for i in range(14)),
        ),
        domain_report(
            "mail01",
            a,
            domid=10,
            memory_mib=1024,
            maxmem_mib=2048,
            status="partial",
            mem=meminfo(998, 601, 310, estimated=True),
            severity="warning",
            findings=[
                Finding(
                    "fragmentation",
                    "warning",
                    "Free memory is fragmented",
                    "No free blocks above order 2 in DMA32.",
                    (Evidence("buddyinfo", "Node 0, zone DMA32 1211 305 12 0 0 0 0 0 0 0 0", 2),),
                )
            ],
            recommendation=Recommendation(
                1024,
                2048,
                ("memory is enough; fragmentation is the cause",),
                "low",
                397,
                "none",
            ),
            need_mib=397,
            need_history_mib=(380, 397),
            drift=("live target 900 MiB differs from cfg memory 1024 MiB",),
            parse_errors=("slabinfo: permission denied (not an error)",),
        ),
        domain_report(
            "ok01",
            b,
            domid=3,
            memory_mib=2048,
            maxmem_mib=2048,
            mem=meminfo(2000, 1400, 800),
            severity="ok",
            findings=[Finding("healthy", "ok", "Healthy", "Plenty of memory available.")],
            recommendation=Recommendation(2048, 2048, ("no change",), "high", 600, "none"),
            need_mib=600,
        ),
        domain_report(
            "gone01",
            b,
            domid=4,
            status="unreachable",
            collection_error="gone01: ssh: connect to 10.0.0.44:22: No route to host",
            severity="warning",
            findings=[Finding("insufficient_data", "warning", "Guest not reachable", "No data.")],
        ),
        domain_report(
            "auth01",
            b,
            domid=5,
            status="auth_failed",
            collection_error="auth01: ssh: Authentication failed for root",
            severity="warning",
        ),
        domain_report(
            "newkey01",
            b,
            domid=6,
            status="host_key_rejected",
            collection_error="newkey01: ssh: host key not in known_hosts",
            severity="warning",
        ),
        domain_report(
            "slow01",
            b,
            domid=11,
            status="timeout",
            collection_error="slow01: ssh: timed out after 60 s",
            severity="info",
        ),
        domain_report(
            "off01",
            b,
            domid=None,
            state="shutoff",
            status="skipped",
            severity="ok",
            with_patch=False,
        ),
        domain_report(
            "nocfg01",
            b,
            domid=12,
            config=False,
            mem=meminfo(1000, 500, 200),
            severity="info",
            findings=[Finding("insufficient_data", "info", "No cfg found", "Cannot size.")],
        ),
        domain_report(
            "nulls01",
            b,
            domid=None,
            state="unknown",
            guest_type="pvh",
            memory_mib=None,
            maxmem_mib=None,
            facts=True,
            mem=None,
            severity="ok",
        ),
    ]
    hosts = (
        HostReport(
            name=a,
            backend="xl",
            view=HostView(
                name=a,
                backend="xl",
                total_memory_kib=16384 * MIB,
                free_memory_kib=1536 * MIB,
                domains=tuple(d.domain for d in domains if d.host == a),
                xen_version="4.17.3",
                dom0_mem_kib=2048 * MIB,
                autoballoon="off",
            ),
            plan=HostPlan(
                host=a,
                total_mib=16384,
                dom0_mib=2048,
                xen_reserve_mib=256,
                entries=(
                    PlanEntry("web01", 512, 768, True),
                    PlanEntry("db01", 4096, 6144, False),
                    PlanEntry("cache01", 8192, 8192, True),
                    PlanEntry("mail01", 1024, 1024, True),
                ),
                current_total_mib=2048 + 256 + 512 + 4096 + 8192 + 1024,
                planned_total_mib=2048 + 256 + 768 + 6144 + 8192 + 1024,
                shortfall_mib=2048 + 256 + 768 + 6144 + 8192 + 1024 - 16384,
                notes=("cache01's decrease is not counted until it is applied.",),
            ),
        ),
        HostReport(
            name=b,
            backend="libvirt",
            view=HostView(
                name=b,
                backend="libvirt",
                total_memory_kib=32768 * MIB,
                free_memory_kib=20000 * MIB,
                domains=tuple(d.domain for d in domains if d.host == b),
            ),
            plan=HostPlan(
                host=b,
                total_mib=32768,
                dom0_mib=4096,
                xen_reserve_mib=256,
                entries=(PlanEntry("ok01", 2048, 2048, True),),
                current_total_mib=6400,
                planned_total_mib=6400,
                shortfall_mib=0,
            ),
        ),
        HostReport(
            name=c,
            backend="xl",
            view=None,
            plan=None,
            error="dom0-c: xl list -l: ssh: connection refused",
        ),
    )
    return AuditReport(
        generated_at=GENERATED_AT,
        tool_version=TOOL_VERSION,
        hosts=hosts,
        domains=tuple(domains),
        inventory_path="/etc/xenaudit/inventory.toml",
        demo=demo,
        errors=("dom0-c: xl list -l: ssh: connection refused",),
    )


def hostile_report() -> AuditReport:
    """Every guest-controlled string carries an attack; one domain per payload."""
    domains: list[DomainReport] = []
    host = "dom0-<b>evil</b>"
    for i, payload in enumerate(HOSTILE_PAYLOADS):
        rec = Recommendation(
            768,
            1024,
            (f"reason {payload}",),
            "medium",
            474,
            "increase",
            fits=i % 2 == 0,
            not_fitting_reason=None if i % 2 == 0 else f"host {payload}",
            live_change_safe=True,
        )
        domains.append(
            domain_report(
                payload,
                host,
                domid=20 + i,
                mem=meminfo(491, 38, 9),
                events=[
                    swapper_failure(10 + i, process=payload),
                    OomKill(40 + i, payload, 99, payload, None, 1000, None, None),
                    BalloonMessage(60 + i, None, payload),
                ],
                processes=[Process(99, payload, 1000, 2000)],
                severity="critical",
                findings=[
                    Finding(
                        code="shortage",
                        severity="critical",
                        title=f"title {payload}",
                        detail=f"detail {payload}",
                        evidence=(Evidence("kernlog", payload, 10 + i),),
                        first_seen=payload,
                        nights_seen=1,
                    )
                ],
                advice=[Advice(f"advice {payload}", payload, (f"echo {payload}",))],
                recommendation=rec,
                need_mib=474,
                need_history_mib=(400, 474),
                drift=(payload,),
                parse_errors=(f"ps: line 3: {payload}",),
                status="partial",
                collection_error=payload,
            )
        )
    hv = HostView(
        name=host,
        backend="xl",
        total_memory_kib=4096 * MIB,
        free_memory_kib=100 * MIB,
        domains=tuple(d.domain for d in domains),
        xen_version="<i>4.17</i>",
    )
    plan = HostPlan(
        host=host,
        total_mib=4096,
        dom0_mib=1024,
        xen_reserve_mib=256,
        entries=tuple(PlanEntry(d.name, 512, 768, i % 2 == 0) for i, d in enumerate(domains)),
        current_total_mib=1280 + 512 * len(domains),
        planned_total_mib=1280 + 768 * len(domains),
        shortfall_mib=1280 + 768 * len(domains) - 4096,
        notes=HOSTILE_PAYLOADS[:3],
    )
    return AuditReport(
        generated_at=GENERATED_AT,
        tool_version=TOOL_VERSION,
        hosts=(
            HostReport(host, "xl", hv, plan),
            HostReport("<script>host2</script>", "xl", None, None, error=HOSTILE_PAYLOADS[1]),
        ),
        domains=tuple(domains),
        inventory_path=HOSTILE_PAYLOADS[0],
        demo=True,
        errors=HOSTILE_PAYLOADS,
    )


def empty_report() -> AuditReport:
    """A run that found nothing: no hosts, no domains."""
    return AuditReport(GENERATED_AT, TOOL_VERSION, hosts=(), domains=())


def fleet(n_domains: int, per_host: int = 25) -> AuditReport:
    """A large healthy-to-critical fleet for scale tests: `per_host` guests on each host."""
    severities = ("ok", "ok", "info", "warning", "critical")
    domains: list[DomainReport] = []
    for i in range(n_domains):
        host = f"dom0-{i // per_host:03d}"
        name = f"guest{i:05d}"
        severity = severities[i % len(severities)]
        if severity == "critical":
            domains.append(reference_case(name, host))
            continue
        memory = 1024 * (1 + i % 4)
        rec = None
        if severity in ("info", "warning"):
            rec = Recommendation(
                memory + 512,
                memory + 512,
                ("need grew",),
                "medium",
                memory - 100,
                "increase",
                live_change_safe=i % 2 == 0,
            )
        domains.append(
            domain_report(
                name,
                host,
                domid=i + 1,
                memory_mib=memory,
                maxmem_mib=memory,
                mem=meminfo(memory - 30, memory // 3, memory // 6),
                severity=severity,
                findings=[
                    Finding(
                        "healthy" if severity == "ok" else "shortage",
                        severity,
                        f"{severity} finding",
                        "detail",
                    )
                ],
                recommendation=rec,
                need_mib=memory - memory // 3,
                need_history_mib=tuple(memory // 2 + (j * 13) % 90 for j in range(30)),
            )
        )
    hosts: list[HostReport] = []
    for h in range((n_domains + per_host - 1) // per_host):
        name = f"dom0-{h:03d}"
        members = [d for d in domains if d.host == name]
        entries = tuple(
            PlanEntry(
                d.name,
                d.config.memory_mib or 0 if d.config else 0,
                d.assessment.recommendation.memory_mib
                if d.assessment.recommendation
                else (d.config.memory_mib or 0 if d.config else 0),
                True,
            )
            for d in members
        )
        current = 4096 + 256 + sum(e.current_mib for e in entries)
        planned = 4096 + 256 + sum(e.planned_mib for e in entries)
        total = 65536
        hosts.append(
            HostReport(
                name,
                "xl",
                HostView(
                    name,
                    "xl",
                    total * MIB,
                    (total - current) * MIB,
                    tuple(d.domain for d in members),
                ),
                HostPlan(
                    name, total, 4096, 256, entries, current, planned, max(0, planned - total)
                ),
            )
        )
    return AuditReport(GENERATED_AT, TOOL_VERSION, tuple(hosts), tuple(domains))
