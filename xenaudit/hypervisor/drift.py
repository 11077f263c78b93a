"""Live-versus-cfg drift: a running domain whose memory no longer matches its cfg.

How libxl turns a cfg into live values (xen-project/xen, tools/):

* xl/xl_parse.c: `memory` becomes b_info.target_memkb and `maxmem`
  b_info.max_memkb (both MiB × 1024); without maxmem, max = memory.
* libs/light/libxl_dom.c (libxl__build_post): xenstore memory/static-max
  is max_memkb, memory/target is target_memkb minus the "target fudge".
* libs/light/libxl_internal.h (libxl__get_targetmem_fudge): the fudge is
  video_memkb plus LIBXL_MAXMEM_CONSTANT (1024 KiB) for an HVM guest whose
  max exceeds its target.
* libs/light/libxl_domain.c (retrieve_domain_configuration): `xl list -l`
  shows target_memkb = xenstore target + that fudge, and max_memkb =
  static-max. Right after creation both equal the cfg exactly.
* libs/light/libxl_mem.c (libxl_set_memory_target): `xl mem-set X`
  stores X - videoram, so for an HVM guest with maxmem > memory the shown
  target becomes X + 1024 KiB. It never touches static-max.
* libxl_dom.c (libxl__build_pre) and libxl_mem.c: the hypervisor's own
  limit (what xentop's MAXMEM, libxl_dominfo.max_memkb and libvirt's
  info() show) is the configured max + LIBXL_MAXMEM_CONSTANT.

So a difference of up to LIBXL_MAXMEM_CONSTANT (1 MiB) is bookkeeping, not
drift; anything larger is a change made on one side only. `xl mem-set`
changes the target alone; a cfg edited since the domain started can change
both, and a new maxmem only takes effect when the domain is recreated.
"""

from __future__ import annotations

from xenaudit.hypervisor.interface import Domain
from xenaudit.hypervisor.xl_parse import LIBXL_MAXMEM_CONSTANT_KIB

#: Allowed |live - cfg| in KiB before a difference is reported (see above).
TOLERANCE_KIB = LIBXL_MAXMEM_CONSTANT_KIB

_NOT_LIVE = ("shutoff", "dying")


def format_mib(kib: int) -> str:
    return f"{kib // 1024} MiB" if kib % 1024 == 0 else f"{kib / 1024:.1f} MiB"


def drift(
    domain: Domain, cfg_memory_mib: int | None, cfg_maxmem_mib: int | None
) -> tuple[str, ...]:
    """Each way the live domain differs from its cfg, as a sentence an admin can act on."""
    if domain.is_dom0 or domain.state in _NOT_LIVE:
        return ()
    effective_max_mib = cfg_maxmem_mib if cfg_maxmem_mib is not None else cfg_memory_mib
    max_word = "maxmem" if cfg_maxmem_mib is not None else "maxmem (= memory, none set)"
    max_differs = (
        domain.max_kib is not None
        and effective_max_mib is not None
        and abs(domain.max_kib - effective_max_mib * 1024) > TOLERANCE_KIB
    )
    found: list[str] = []
    if (
        domain.target_kib is not None
        and cfg_memory_mib is not None
        and abs(domain.target_kib - cfg_memory_mib * 1024) > TOLERANCE_KIB
    ):
        live, cfg = format_mib(domain.target_kib), f"{cfg_memory_mib} MiB"
        if max_differs:
            found.append(
                f"live target {live} differs from cfg memory {cfg}: the cfg was edited "
                "since the domain started, or an `xl mem-set` was not written to the cfg"
            )
        else:
            found.append(
                f"live target {live} differs from cfg memory {cfg}: "
                "an `xl mem-set` not written to the cfg?"
            )
    if max_differs:
        assert domain.max_kib is not None and effective_max_mib is not None
        found.append(
            f"live maxmem {format_mib(domain.max_kib)} differs from cfg {max_word} "
            f"{effective_max_mib} MiB: the cfg was edited but not applied "
            "(maxmem changes need the domain to be shut down and created again)"
        )
    return tuple(found)
