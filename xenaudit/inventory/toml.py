"""Load an inventory from TOML, rejecting anything we do not understand.

Typos in a nightly job's inventory would otherwise be silently ignored, so
every unknown key and every wrong type is an `InventoryError` that names the
file, the dotted key and what was expected.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin

from xenaudit.collector.keyfile import unprotected_key
from xenaudit.collector.targets import split_template
from xenaudit.inventory.interface import (
    DomainOverride,
    HypervisorSpec,
    Inventory,
    InventoryError,
    SshSettings,
    Thresholds,
)

T = TypeVar("T")


def load_inventory(path: str | Path) -> Inventory:
    """Read and validate an inventory file."""
    path_str = str(path)
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InventoryError(path_str, "", "file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InventoryError(path_str, "", f"cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise InventoryError(path_str, "", f"not valid TOML: {exc}") from None
    return inventory_from_mapping(data, path_str)


def inventory_from_mapping(data: Mapping[str, Any], path: str) -> Inventory:
    """Build an inventory from already-parsed TOML (also used by the demo)."""
    known = {
        "state_dir",
        "ssh",
        "hypervisor",
        "domains",
        "thresholds",
        "guest_snapshot_dir",
        "collect",
    }
    _reject_unknown(data, known, "", path)

    hypervisors_raw = data.get("hypervisor", [])
    if not isinstance(hypervisors_raw, list) or not hypervisors_raw:
        raise InventoryError(path, "hypervisor", "expected at least one [[hypervisor]] table")
    hypervisors = []
    for index, table in enumerate(hypervisors_raw):
        key = f"hypervisor[{index}]"
        spec = _build(HypervisorSpec, table, key, path)
        _check_port(spec.ssh_port, f"{key}.ssh_port", path)
        if spec.backend == "libvirt" and not spec.uri:
            raise InventoryError(path, f"{key}.uri", "the libvirt backend needs a uri")
        if spec.backend == "snapshot" and not spec.snapshot_dir:
            raise InventoryError(path, f"{key}.snapshot_dir", "the snapshot backend needs one")
        hypervisors.append(spec)
    first_with: dict[str, int] = {}
    for index, spec in enumerate(hypervisors):
        if spec.name in first_with:
            raise InventoryError(
                path,
                f"hypervisor[{index}].name",
                f"{spec.name!r} is already the name of hypervisor[{first_with[spec.name]}]; "
                "each hypervisor needs a unique name",
            )
        first_with[spec.name] = index

    ssh_table = dict(_table(data, "ssh", path))
    host_template = ssh_table.pop("host_template", "{name}")
    if not isinstance(host_template, str) or "{name}" not in host_template:
        raise InventoryError(path, "ssh.host_template", "expected a string containing {name}")
    try:
        split_template(host_template)
    except ValueError as exc:
        raise InventoryError(path, "ssh.host_template", str(exc)) from None
    ssh = _build(SshSettings, ssh_table, "ssh", path)
    if ssh.concurrency < 1:
        raise InventoryError(path, "ssh.concurrency", "expected a whole number of at least 1")
    if not 1 <= ssh.kernlog_keep_events <= 100_000:
        raise InventoryError(
            path, "ssh.kernlog_keep_events", "expected a whole number from 1 to 100000"
        )
    _check_port(ssh.port, "ssh.port", path)
    _check_key(ssh.identity_file, "ssh.identity_file", path)

    domains: dict[str, DomainOverride] = {}
    for name, table in _table(data, "domains", path).items():
        if not isinstance(table, Mapping):
            raise InventoryError(path, f"domains.{name}", "expected a table")
        override = _build(DomainOverride, {"name": name, **table}, f"domains.{name}", path)
        if override.ssh_port is not None:
            _check_port(override.ssh_port, f"domains.{name}.ssh_port", path)
        _check_key(override.identity_file, f"domains.{name}.identity_file", path)
        domains[name] = override

    thresholds = _build(Thresholds, _table(data, "thresholds", path), "thresholds", path)
    for name in ("step_mib", "decrease_min_nights"):
        if getattr(thresholds, name) < 1:
            raise InventoryError(
                path, f"thresholds.{name}", "expected a whole number of at least 1"
            )
    for key in ("state_dir", "guest_snapshot_dir"):
        if key in data and not isinstance(data[key], str):
            raise InventoryError(path, key, "expected a string (a directory path)")
    collect = data.get("collect", Inventory.collect)
    if collect not in ("ssh", "hypervisor"):
        raise InventoryError(path, "collect", f"expected 'ssh' or 'hypervisor', got {collect!r}")
    return Inventory(
        path=path,
        hypervisors=tuple(hypervisors),
        ssh=ssh,
        ssh_host_template=host_template,
        domains=domains,
        thresholds=thresholds,
        state_dir=data.get("state_dir", Inventory.state_dir),
        guest_snapshot_dir=data.get("guest_snapshot_dir"),
        collect=collect,
    )


def _check_port(port: int, key: str, path: str) -> None:
    if not 1 <= port <= 65535:
        raise InventoryError(path, key, f"expected a TCP port (1-65535), got {port}")


def _check_key(identity_file: str | None, key: str, path: str) -> None:
    """Refuse a private key others can read, as OpenSSH does (a missing one is found later)."""
    if identity_file is None:
        return
    problem = unprotected_key(os.path.expanduser(identity_file))
    if problem is not None:
        raise InventoryError(path, key, problem)


def _table(data: Mapping[str, Any], key: str, path: str) -> Mapping[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, Mapping):
        raise InventoryError(path, key, "expected a table")
    return value


def _reject_unknown(table: Mapping[str, Any], known: set[str], prefix: str, path: str) -> None:
    for key in table:
        if key not in known:
            expected = ", ".join(sorted(known))
            raise InventoryError(
                path, f"{prefix}{key}", f"unknown key (expected one of: {expected})"
            )


def _build(cls: type[T], table: Any, keypath: str, path: str) -> T:
    """Instantiate a frozen dataclass from a TOML table, checking every value's type."""
    if not isinstance(table, Mapping):
        raise InventoryError(path, keypath, "expected a table")
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    _reject_unknown(table, fields, f"{keypath}.", path)
    values = {}
    for key, value in table.items():
        values[key] = _check(value, hints[key], f"{keypath}.{key}", path)
    missing = [
        f.name
        for f in dataclasses.fields(cls)  # type: ignore[arg-type]
        if f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
        and f.name not in values
    ]
    if missing:
        raise InventoryError(path, f"{keypath}.{missing[0]}", "required key is missing")
    return cls(**values)


def _check(value: Any, hint: Any, key: str, path: str) -> Any:
    origin = get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = get_args(hint)
        for option in options:
            try:
                return _check(value, option, key, path)
            except InventoryError:
                continue
        raise InventoryError(path, key, f"expected {_describe(hint)}, got {value!r}")
    if origin is Literal:
        if value in get_args(hint):
            return value
        choices = " or ".join(repr(v) for v in get_args(hint))
        raise InventoryError(path, key, f"expected {choices}, got {value!r}")
    if hint is type(None):
        if value is None:
            return None
    elif hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            if value < 0:
                raise InventoryError(path, key, f"expected a non-negative number, got {value}")
            return value
    elif hint is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise InventoryError(path, key, f"expected a finite number, got {value}")
            if value < 0:
                raise InventoryError(path, key, f"expected a non-negative number, got {value}")
            return float(value)
    elif hint is str and isinstance(value, str):
        return value
    raise InventoryError(path, key, f"expected {_describe(hint)}, got {value!r}")


def _describe(hint: Any) -> str:
    origin = get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in get_args(hint) if a is not type(None))
    if origin is Literal:
        return " or ".join(repr(v) for v in get_args(hint))
    return {bool: "true or false", int: "a whole number", float: "a number", str: "a string"}.get(
        hint, str(hint)
    )
