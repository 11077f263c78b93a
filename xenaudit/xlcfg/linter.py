"""Problems in a parsed xl.cfg that xl would not reject outright, but that matter.

Each check names where its rule comes from:

=============================  ========  ======================================
code                           severity  source
=============================  ========  ======================================
unknown-key                    warning   not in xl.cfg(5) nor read by xl_parse.c
                                         (xl ignores it silently; xen-tools adds
                                         ``home``, ``dhcp``...)
xm-leftover                    warning   xm-era settings xl ignores: keys it only
                                         warns about, ``kernel=".../hvmloader"``
                                         on HVM, ``vfb`` entries with ``type=``
deprecated-key                 info      ``builder`` (Xen 4.10), ``altp2mhvm``
overridden                     info      an assignment shadowed by a later ``=``
non-integer-memory             error     memory/maxmem that xlu_cfg_get_long
                                         refuses; xl then ignores the key
maxmem-below-memory            error     xl.cfg(5): maxmem must be >= memory
hvm-maxmem-above-memory        warning   xl.cfg(5): a pre-ballooned HVM guest
                                         needs a balloon driver or it crashes
                                         (populate-on-demand); libxl starts PVH
                                         guests in the same mode
                                         (libxl_create.c, pod_enabled)
passthrough-pod                error     libxl refuses a non-PV domain with an
                                         IOMMU (pci=, dtdev= or passthrough=
                                         other than "disabled") in PoD mode
vnuma-pod                      error     libxl refuses PoD with vnuma=
invalid-type                   error     type=/builder= xl refuses
=============================  ========  ======================================
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Literal

from xenaudit.xlcfg.config import XlConfig
from xenaudit.xlcfg.errors import CfgValueError
from xenaudit.xlcfg.options import (
    DEPRECATED,
    IGNORED_WITH_WARNING,
    KNOWN_KEYS,
    XM_ONLY,
)
from xenaudit.xlcfg.syntax import Assignment, Atom

Severity = Literal["error", "warning", "info"]


@dataclass(frozen=True, slots=True)
class LintProblem:
    line: int
    column: int
    code: str
    severity: Severity
    message: str


def _at(cfg: XlConfig, a: Assignment, code: str, severity: Severity, message: str) -> LintProblem:
    line, column = cfg.position(a.key_start)
    return LintProblem(line, column, code, severity, message)


def _key_problems(cfg: XlConfig) -> list[LintProblem]:
    out: list[LintProblem] = []
    for key in cfg:
        setting = cfg.setting(key)
        assert setting is not None
        first = setting.assignments[0]
        if key in IGNORED_WITH_WARNING:
            out.append(_at(cfg, first, "xm-leftover", "warning", IGNORED_WITH_WARNING[key]))
        elif key not in KNOWN_KEYS:
            if key in XM_ONLY:
                msg = f"unknown key `{key}': an xm option that xl ignores"
            else:
                msg = f"unknown key `{key}': not an xl.cfg option, xl ignores it"
            out.append(_at(cfg, first, "unknown-key", "warning", msg))
        if key in DEPRECATED:
            out.append(_at(cfg, first, "deprecated-key", "info", DEPRECATED[key]))
        winner = setting.assignment
        history = setting.assignments
        for i, a in enumerate(history[:-1]):
            if any(b.op == "=" for b in history[i + 1 :]):
                line, _ = cfg.position(winner.key_start)
                out.append(
                    _at(cfg, a, "overridden", "info", f"`{key}' is set again on line {line}")
                )
    return out


def passthrough_of(cfg: XlConfig) -> str | None:
    """How the cfg passes hardware through, as libxl decides it; None when it does not.

    libxl turns passthrough "default" (or absent) into "enabled" when pci= or
    dtdev= lists devices, and "disabled" otherwise; any other explicit value
    than "disabled" gives the domain an IOMMU.
    """
    devices = [
        item
        for key in ("pci", "dtdev")
        for item in (cfg.get_list(key) or [])
        if item not in ("", [])
    ]
    mode = cfg.get_string("passthrough")
    if mode is not None and mode != "default":
        if mode == "disabled":
            return None
        return f'passthrough = "{mode}"' + (f", {len(devices)} device(s)" if devices else "")
    if devices:
        return f"pci/dtdev = {len(devices)} device(s)"
    return None


def _memory_problems(cfg: XlConfig, guest: str | None) -> list[LintProblem]:
    out: list[LintProblem] = []
    for key in ("memory", "maxmem"):
        read = cfg.read_long(key)
        if read.problem not in (None, "absent"):
            setting = cfg.setting(key)
            assert setting is not None and read.message is not None
            out.append(
                _at(
                    cfg,
                    setting.assignment,
                    "non-integer-memory",
                    "error",
                    f"{read.message}; xl ignores it",
                )
            )
    memory = cfg.get_long("memory")
    maxmem = cfg.get_long("maxmem")
    if memory is not None and maxmem is not None:
        maxmem_setting = cfg.setting("maxmem")
        assert maxmem_setting is not None
        where = maxmem_setting.assignment
        if maxmem < memory:
            out.append(
                _at(
                    cfg,
                    where,
                    "maxmem-below-memory",
                    "error",
                    f"maxmem ({maxmem}) is below memory ({memory}); xl.cfg(5) requires"
                    " maxmem >= memory",
                )
            )
        elif maxmem > memory and guest in ("hvm", "pvh"):
            passthrough = passthrough_of(cfg)
            if passthrough is not None:
                out.append(
                    _at(
                        cfg,
                        where,
                        "passthrough-pod",
                        "error",
                        f"{guest.upper()} guest with passthrough ({passthrough}) and maxmem"
                        f" {maxmem} > memory {memory}: libxl refuses to create it (IOMMU"
                        " required for device passthrough but not supported together with"
                        " PoD); set maxmem = memory",
                    )
                )
            else:
                out.append(
                    _at(
                        cfg,
                        where,
                        "hvm-maxmem-above-memory",
                        "warning",
                        f"{guest.upper()} guest starts pre-ballooned (maxmem {maxmem} > memory"
                        f" {memory}): libxl runs it in populate-on-demand mode, and without a"
                        " balloon driver in the guest it will crash",
                    )
                )
            vnuma = cfg.setting("vnuma")
            if vnuma is not None:
                out.append(
                    _at(
                        cfg,
                        where,
                        "vnuma-pod",
                        "error",
                        f"vnuma= with maxmem {maxmem} > memory {memory}: libxl refuses PoD and"
                        " vNUMA together",
                    )
                )
    return out


def _xm_value_problems(cfg: XlConfig, guest: str | None) -> list[LintProblem]:
    out: list[LintProblem] = []
    kernel = cfg.get_string("kernel")
    if guest == "hvm" and kernel is not None and posixpath.basename(kernel) == "hvmloader":
        setting = cfg.setting("kernel")
        assert setting is not None
        out.append(
            _at(
                cfg,
                setting.assignment,
                "xm-leftover",
                "warning",
                'kernel=".../hvmloader" is how xm booted HVM guests; xl ignores it'
                " (use firmware_override only for a non-default firmware)",
            )
        )
    vfb = cfg.setting("vfb")
    if vfb is not None and not isinstance(vfb.assignment.value, Atom):
        for item in cfg.get_list("vfb") or []:
            if isinstance(item, str) and any(
                part.strip(" ").startswith("type=") for part in item.split(",")
            ):
                out.append(
                    _at(
                        cfg,
                        vfb.assignment,
                        "xm-leftover",
                        "warning",
                        "vfb entry uses xm's type=vnc/type=sdl, which xl ignores;"
                        " write vnc=1 or sdl=1",
                    )
                )
                break
    return out


def lint(cfg: XlConfig) -> list[LintProblem]:
    """Every problem found, sorted by position."""
    problems: list[LintProblem] = []
    guest: str | None
    try:
        guest = cfg.guest_type
    except CfgValueError as e:
        guest = None
        # Point at the key at fault: an unknown type=, else builder= (unknown
        # or contradicting type=).
        t = cfg.get_string("type")
        bad_type = t is not None and not any(v.startswith(t) for v in ("hvm", "pv", "pvh"))
        s = cfg.setting("type" if bad_type else "builder")
        assert s is not None
        problems.append(_at(cfg, s.assignment, "invalid-type", "error", str(e)))
    problems += _key_problems(cfg)
    problems += _memory_problems(cfg, guest)
    problems += _xm_value_problems(cfg, guest)
    return sorted(problems, key=lambda p: (p.line, p.column, p.code))
