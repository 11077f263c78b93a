"""`collect`: which domains are judged from Dom0 alone, and which Dom0s read their signals."""

from __future__ import annotations

from pathlib import Path

import pytest

from xenaudit.inventory.interface import InventoryError
from xenaudit.inventory.toml import load_inventory


def _load(tmp_path: Path, text: str):  # type: ignore[no-untyped-def]
    path = tmp_path / "inventory.toml"
    path.write_text(text)
    return load_inventory(path)


INVENTORY = """
[[hypervisor]]
name = "a"
[[hypervisor]]
name = "b"
backend = "xm"
collect = "hypervisor"
[[hypervisor]]
name = "c"

[domains.tenant]
collect = "hypervisor"
[domains."b/web"]
collect = "ssh"
[domains."c/appliance"]
collect = "hypervisor"
"""


def test_the_domain_wins_then_its_dom0_then_the_inventory(tmp_path: Path) -> None:
    inventory = _load(tmp_path, INVENTORY)
    assert inventory.collect == "ssh"
    assert inventory.collect_mode("tenant", "a") == "hypervisor"
    assert inventory.collect_mode("other", "a") == "ssh"
    assert inventory.collect_mode("other", "b") == "hypervisor"
    assert inventory.collect_mode("web", "b") == "ssh"
    assert inventory.collect_mode("appliance", "c") == "hypervisor"
    assert inventory.collect_mode("appliance", "a") == "ssh"
    assert inventory.hypervisors[1].backend == "xm"


def test_signals_are_read_only_where_a_domain_may_need_them(tmp_path: Path) -> None:
    inventory = _load(
        tmp_path,
        INVENTORY.replace("[domains.tenant]", "[domains.x]").replace(
            'collect = "hypervisor"\n[domains."b/web"]', 'collect = "ssh"\n[domains."b/web"]'
        ),
    )
    assert inventory.reads_signals("b") and inventory.reads_signals("c")
    assert not inventory.reads_signals("a")
    everywhere = _load(tmp_path, 'collect = "hypervisor"\n[[hypervisor]]\nname = "a"\n')
    assert everywhere.reads_signals("a") and everywhere.collect_mode("x", "a") == "hypervisor"


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('collect = "agent"\n[[hypervisor]]\nname = "a"\n', "collect"),
        ('[[hypervisor]]\nname = "a"\ncollect = "none"\n', "hypervisor[0].collect"),
        ('[[hypervisor]]\nname = "a"\n[domains.x]\ncollect = 1\n', "domains.x.collect"),
    ],
)
def test_a_bad_collect_value_names_its_key(tmp_path: Path, text: str, key: str) -> None:
    with pytest.raises(InventoryError) as caught:
        _load(tmp_path, text)
    assert caught.value.key == key
