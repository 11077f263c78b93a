"""The inventory loader: strict about keys and types, and the example documents every key."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from tests.conftest import REPO
from xenaudit.collector.targets import targets_for
from xenaudit.inventory.interface import (
    DomainOverride,
    HypervisorSpec,
    InventoryError,
    SshSettings,
    Thresholds,
)
from xenaudit.inventory.toml import load_inventory

EXAMPLE = REPO / "inventory.example.toml"


def test_example_inventory_loads() -> None:
    inventory = load_inventory(EXAMPLE)
    assert [h.name for h in inventory.hypervisors] == ["dom0a", "dom0b"]
    assert inventory.hypervisors[1].ssh_host == "dom0b.example.org"
    assert inventory.override("web01").ssh_port == 2222
    assert inventory.override("app1", "dom0b").balloon_driver is True
    assert inventory.override("app1", "dom0a").balloon_driver is None
    assert inventory.override("winsrv").skip is True
    assert inventory.ssh_host_template == "{name}.guests.example.org:2222"
    # The template's port reaches every guest without a per-domain table;
    # web01's own ssh_host comes with its own ssh_port.
    app1, web01 = targets_for(inventory, "dom0b", ["app1", "web01"])
    assert (app1.ssh_host, app1.ssh_port) == ("app1.guests.example.org", 2222)
    assert (web01.ssh_host, web01.ssh_port) == ("192.0.2.15", 2222)
    assert inventory.override("web01").ssh_port == 2222


@pytest.mark.parametrize(
    ("cls", "skip"),
    [
        (SshSettings, set()),
        (HypervisorSpec, set()),
        (DomainOverride, {"name"}),
        (Thresholds, set()),
    ],
)
def test_example_documents_every_key(cls: type, skip: set[str]) -> None:
    text = EXAMPLE.read_text()
    documented = set(re.findall(r"^#?\s*([a-z_0-9]+)\s*=", text, re.MULTILINE))
    missing = {f.name for f in dataclasses.fields(cls)} - skip - documented
    assert not missing, f"inventory.example.toml does not document {sorted(missing)}"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "inventory.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "key", "expected"),
    [
        ("", "hypervisor", "at least one"),
        ('[[hypervisor]]\nname = "a"\nbakend = "xl"\n', "hypervisor[0].bakend", "unknown key"),
        ('[[hypervisor]]\nname = "a"\nbackend = "libvirt"\n', "hypervisor[0].uri", "needs a uri"),
        (
            '[[hypervisor]]\nname = "a"\n[ssh]\nconcurrency = "many"\n',
            "ssh.concurrency",
            "whole number",
        ),
        ('[[hypervisor]]\nname = "a"\n[ssh]\nhost_template = "x"\n', "ssh.host_template", "{name}"),
        ('[[hypervisor]]\nname = "a"\n[thresholds]\nmargin = -1\n', "thresholds.margin", "non-neg"),
        (
            '[[hypervisor]]\nname = "a"\n[domains.web]\nskip = "yes"\n',
            "domains.web.skip",
            "true or",
        ),
        ('[[hypervisor]]\nname = "a"\n[thresholds]\nmargin = nan\n', "thresholds.margin", "finite"),
        ('[[hypervisor]]\nname = "a"\n[ssh]\ndeadline_s = inf\n', "ssh.deadline_s", "finite"),
        ('[[hypervisor]]\nname = "a"\n[ssh]\nport = 99999\n', "ssh.port", "1-65535"),
        ('[[hypervisor]]\nname = "a"\nssh_port = 0\n', "hypervisor[0].ssh_port", "1-65535"),
        (
            '[[hypervisor]]\nname = "a"\n[domains.web]\nssh_port = 70000\n',
            "domains.web.ssh_port",
            "1-65535",
        ),
        (
            '[[hypervisor]]\nname = "a"\n[thresholds]\nstep_mib = 0\n',
            "thresholds.step_mib",
            "least 1",
        ),
        (
            '[[hypervisor]]\nname = "a"\n[[hypervisor]]\nname = "b"\n[[hypervisor]]\nname = "a"\n',
            "hypervisor[2].name",
            "'a' is already the name of hypervisor[0]",
        ),
    ],
)
def test_bad_inventory_names_file_key_and_expectation(
    tmp_path: Path, text: str, key: str, expected: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(InventoryError) as caught:
        load_inventory(path)
    assert caught.value.path == str(path)
    assert caught.value.key == key
    assert expected in caught.value.message
    assert str(caught.value).startswith(f"{path}: {key}: ")


@pytest.mark.parametrize("where", ["ssh", "domains.web"])
def test_a_private_key_others_can_read_is_refused(tmp_path: Path, where: str) -> None:
    key = tmp_path / "id_ed25519"
    key.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    key.chmod(0o644)
    path = write(tmp_path, f'[[hypervisor]]\nname = "a"\n[{where}]\nidentity_file = "{key}"\n')
    with pytest.raises(InventoryError) as caught:
        load_inventory(path)
    assert caught.value.key == f"{where}.identity_file"
    assert "0644 are too open" in caught.value.message
    key.chmod(0o600)
    assert load_inventory(path)


def test_the_collector_refuses_an_unprotected_key_too(tmp_path: Path) -> None:
    from xenaudit.collector.credentials import KeyRing

    key = tmp_path / "id_ed25519"
    key.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    key.chmod(0o640)
    ring = KeyRing(use_agent=False)
    assert ring.file_keys([str(key)]) == []
    assert "too open" in ring.problems([str(key)])[0]


def test_file_errors_name_the_file_not_a_key(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(InventoryError) as caught:
        load_inventory(missing)
    assert str(caught.value) == f"{missing}: file not found"
    broken = write(tmp_path, "not toml = = =")
    with pytest.raises(InventoryError) as caught:
        load_inventory(broken)
    assert str(caught.value).startswith(f"{broken}: not valid TOML: ")
    assert ": -:" not in str(caught.value)
