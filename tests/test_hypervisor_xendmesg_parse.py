"""The hypervisor log: PoD exhaustion and crashes in every real sample; guest text that lies."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fake_xl.support import RECORDINGS
from xenaudit.hypervisor.xendmesg_parse import DomainCrashed, PodExhausted, parse_xen_dmesg


@pytest.mark.parametrize(
    ("sample", "expected"),
    [
        (
            "xendmesg_qubes_hypervisorlog_pod_crash.log",
            [("pod", 120, 1), ("crash", 120, 3, "p2m-pod.c:1218", None)],
        ),
        ("xendmesg_xendevel_pod_nested_hvm.log", [("pod", 72, 1)]),
        ("xendmesg_xcpng_pod_timestamps_dom0_context.log", [("pod", 9, 1)]),
        ("xendmesg_xcpng_provider_pod_no_prefix.log", [("pod", 79, 1)]),
        (
            "xendmesg_osstest_serial_hap_crash.log",
            [("crash", 1, 9, "arch/x86/hvm/vmx/vmx.c:3758", None)],
        ),
        (
            "xendmesg_xen4.14.3_passthrough_reported_crashed.log",
            [("crash", 1, 74, "p2m.c:1301", 0)],
        ),
    ],
)
def test_real_logs(corpus: Path, sample: str, expected: list[tuple]) -> None:
    log = parse_xen_dmesg((corpus / sample).read_text())
    found: list[tuple] = []
    for event in log.events:
        if isinstance(event, PodExhausted):
            found.append(("pod", event.domid, event.line))
        else:
            found.append(("crash", event.domid, event.line, event.called_from, event.reported_by))
    assert found == expected


def test_pod_figures_are_kept(corpus: Path) -> None:
    (event,) = parse_xen_dmesg((corpus / "xendmesg_xendevel_pod_nested_hvm.log").read_text()).events
    assert isinstance(event, PodExhausted)
    assert (event.tot_pages, event.entries) == (524304, 28773031)
    assert event.text.startswith("p2m_pod_demand_populate: Dom72 out of PoD memory!")


def test_guest_console_text_is_never_the_hypervisor_word() -> None:
    text = "\n".join(
        [
            "(XEN) (d4) Domain 7 (vcpu#0) crashed on cpu#0:",
            "(XEN) HVM5: p2m_pod_demand_populate: Dom9 out of PoD memory! (tot=1 ents=2 dom9)",
            "(d3) domain_crash called from evil.c:1",
        ]
    )
    assert parse_xen_dmesg(text).events == ()


def test_recorded_host_attributes_events_to_the_right_domid() -> None:
    log = parse_xen_dmesg((RECORDINGS / "host_signals" / "dmesg.out").read_text())
    assert {type(e) for e in log.for_domid(2)} == {PodExhausted, DomainCrashed}
    assert log.for_domid(4) == ()


def test_a_cause_far_from_the_crash_line_is_not_its_cause() -> None:
    text = (
        "(XEN) domain_crash called from a.c:1\n"
        + "(XEN) noise\n" * 5
        + ("(XEN) Domain 3 reported crashed by domain 0 on cpu#1:\n")
    )
    (event,) = parse_xen_dmesg(text).events
    assert isinstance(event, DomainCrashed) and event.called_from is None and event.line == 7
