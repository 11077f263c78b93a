"""The few cfg values this stage needs, read with the project's xl.cfg parser.

`name`, `memory` and `maxmem` of a domain cfg (to find it and compare it with
the live domain) and `autoballoon` from xl.conf, all read exactly as xl
reads them, through `xenaudit.xlcfg`.
"""

from __future__ import annotations

from dataclasses import dataclass

from xenaudit.xlcfg.config import parse
from xenaudit.xlcfg.errors import CfgSyntaxError


class CfgReadError(Exception):
    """A cfg file xl would refuse. The message names the file, line and column."""


@dataclass(frozen=True)
class CfgFacts:
    name: str | None
    memory_mib: int | None
    #: The effective ceiling: maxmem, or memory when maxmem is not set (as xl_parse.c).
    maxmem_mib: int | None


def read_cfg_facts(text: str, filename: str) -> CfgFacts:
    try:
        config = parse(text, filename)
    except CfgSyntaxError as exc:
        raise CfgReadError(str(exc)) from None
    return CfgFacts(name=config.name, memory_mib=config.memory_mib, maxmem_mib=config.maxmem_mib)


def read_autoballoon(text: str, filename: str) -> str:
    """xl.conf's autoballoon as xl resolves the setting: "on", "off" or "auto".

    xl accepts "on"/"1" and "off"/"0"; anything else (or nothing) leaves its
    default, "auto" (tools/xl/xl.c, parse_global_config).
    """
    try:
        value = parse(text, filename).get_string("autoballoon")
    except CfgSyntaxError as exc:
        raise CfgReadError(str(exc)) from None
    return {"on": "on", "1": "on", "off": "off", "0": "off"}.get(value or "", "auto")
