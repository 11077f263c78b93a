"""Live-versus-cfg drift, with live values computed the way libxl computes them.

The small model below restates tools/libs/light: xl_parse.c (memory/maxmem
in MiB), libxl_create.c (videoram default 8 MiB for cirrus on qemu-xen),
libxl_internal.h (libxl__get_targetmem_fudge), libxl_dom.c (what xenstore
holds after creation), libxl_mem.c (what `xl mem-set` stores) and
libxl_domain.c (what `xl list -l` shows).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from xenaudit.hypervisor.drift import TOLERANCE_KIB, drift
from xenaudit.hypervisor.interface import Domain, GuestType
from xenaudit.hypervisor.xentop_parse import parse_xentop
from xenaudit.hypervisor.xl_parse import LIBXL_MAXMEM_CONSTANT_KIB, parse_xl_list

MIB = 1024
CIRRUS_VIDEO_KIB = 8 * 1024


def _fudge(guest_type: GuestType, video_kib: int, max_kib: int, target_kib: int) -> int:
    hvm_slack = LIBXL_MAXMEM_CONSTANT_KIB if guest_type == "hvm" and max_kib > target_kib else 0
    return video_kib + hvm_slack


def created(guest_type: GuestType, memory_mib: int, maxmem_mib: int | None) -> Domain:
    """The domain right after `xl create` of a cfg with these settings."""
    target = memory_mib * 1024
    maximum = (maxmem_mib if maxmem_mib is not None else memory_mib) * 1024
    video = CIRRUS_VIDEO_KIB if guest_type == "hvm" else 0
    fudge = _fudge(guest_type, video, maximum, target)
    xenstore_target = target - fudge
    return Domain(
        name="g",
        domid=7,
        uuid=None,
        state="blocked",
        guest_type=guest_type,
        vcpus=1,
        target_kib=xenstore_target + fudge,  # what `xl list -l` adds back
        max_kib=maximum,  # xenstore static-max
    )


def mem_set(domain: Domain, new_mib: int, cfg_memory_mib: int) -> Domain:
    """`xl mem-set` to new_mib: xenstore gets new - videoram, `xl list -l` adds the fudge."""
    assert domain.guest_type is not None and domain.max_kib is not None
    video = CIRRUS_VIDEO_KIB if domain.guest_type == "hvm" else 0
    fudge = _fudge(domain.guest_type, video, domain.max_kib, cfg_memory_mib * 1024)
    xenstore_target = new_mib * 1024 - video
    return replace(domain, target_kib=xenstore_target + fudge)


@pytest.mark.parametrize(
    ("guest_type", "memory", "maxmem"),
    [
        ("pv", 512, 768),
        ("pv", 512, None),
        ("pvh", 1024, 1024),
        ("hvm", 2048, 4096),
        ("hvm", 2048, None),
    ],
)
def test_freshly_created_domains_have_no_drift(
    guest_type: GuestType, memory: int, maxmem: int | None
) -> None:
    assert drift(created(guest_type, memory, maxmem), memory, maxmem) == ()


def test_mem_set_not_written_to_the_cfg() -> None:
    live = mem_set(created("pv", 512, 768), 384, cfg_memory_mib=512)
    found = drift(live, 512, 768)
    assert found == (
        "live target 384 MiB differs from cfg memory 512 MiB: "
        "an `xl mem-set` not written to the cfg?",
    )


def test_hvm_mem_set_back_to_the_cfg_value_is_only_bookkeeping() -> None:
    # An HVM guest with maxmem > memory: xl list -l then shows 1 MiB above what was set.
    live = mem_set(created("hvm", 2048, 4096), 2048, cfg_memory_mib=2048)
    assert live.target_kib == 2048 * MIB + LIBXL_MAXMEM_CONSTANT_KIB
    assert drift(live, 2048, 4096) == ()


def test_hvm_mem_set_elsewhere_is_drift() -> None:
    live = mem_set(created("hvm", 2048, 4096), 1536, cfg_memory_mib=2048)
    (message,) = drift(live, 2048, 4096)
    assert "differs from cfg memory 2048 MiB" in message and "xl mem-set" in message


def test_cfg_edited_but_not_applied() -> None:
    live = created("pv", 512, 768)  # running since before the edit
    found = drift(live, 640, 1024)  # the cfg now says memory=640, maxmem=1024
    assert len(found) == 2
    assert "cfg memory 640 MiB" in found[0] and "edited since the domain started" in found[0]
    assert "live maxmem 768 MiB differs from cfg maxmem 1024 MiB" in found[1]
    assert "not applied" in found[1]


def test_maxmem_only_edit() -> None:
    (message,) = drift(created("pv", 512, 768), 512, 2048)
    assert "maxmem" in message and "2048 MiB" in message and "768 MiB" in message


def test_cfg_without_maxmem_compares_max_with_memory() -> None:
    live = created("pv", 1024, 2048)
    (message,) = drift(live, 1024, None)
    assert "maxmem (= memory, none set) 1024 MiB" in message


def test_hypervisor_limit_as_xentop_and_libvirt_show_it_is_not_drift(corpus: Path) -> None:
    """xentop's MAXMEM is static-max + LIBXL_MAXMEM_CONSTANT: a real sample, no drift."""
    top = {
        r.name: r for r in parse_xentop((corpus / "xentop_xen4.9.2_batch.txt").read_text()).domains
    }
    listed = {
        r.name: r for r in parse_xl_list((corpus / "xllist_xen4.9.2_tab_header.txt").read_text())
    }
    guest = Domain(
        name="guest-01",
        domid=listed["guest-01"].domid,
        uuid=None,
        state=listed["guest-01"].state,
        guest_type="pv",
        vcpus=top["guest-01"].vcpus,
        target_kib=listed["guest-01"].mem_mib * MIB,
        max_kib=top["guest-01"].maxmem_kib,
    )
    # The lab guest's cfg (xen-tools) says memory = 1024 and no maxmem.
    assert drift(guest, 1024, None) == ()


def test_tolerance_boundary() -> None:
    base = created("pv", 1024, 1024)
    just_inside = replace(base, target_kib=1024 * MIB + TOLERANCE_KIB)
    just_outside = replace(base, target_kib=1024 * MIB + TOLERANCE_KIB + 1)
    assert drift(just_inside, 1024, 1024) == ()
    assert len(drift(just_outside, 1024, 1024)) == 1


@pytest.mark.parametrize("state", ["shutoff", "dying"])
def test_domains_without_live_values_are_not_compared(state: str) -> None:
    domain = replace(created("pv", 512, 512), state=state)
    assert drift(domain, 4096, 4096) == ()


def test_dom0_and_unknown_values_are_not_compared() -> None:
    dom0 = replace(created("pv", 2048, 2048), is_dom0=True, domid=0)
    assert drift(dom0, 512, 512) == ()
    unknown = replace(created("pv", 512, 512), target_kib=None, max_kib=None)
    assert drift(unknown, 4096, 4096) == ()
    assert drift(created("pv", 512, 512), None, None) == ()
