"""From inventory and ssh_config to the hops xenaudit connects through."""

from __future__ import annotations

from pathlib import Path

import pytest

from xenaudit.collector.hostnames import is_valid_host
from xenaudit.collector.interface import GuestTarget
from xenaudit.collector.sshconfig import RouteError, SshConfigView, parse_jump
from xenaudit.collector.targets import split_template, targets_for
from xenaudit.inventory.interface import InventoryError, SshSettings
from xenaudit.inventory.toml import inventory_from_mapping


def inventory(**extra):
    data = {"hypervisor": [{"name": "dom0a"}, {"name": "dom0b"}], **extra}
    return inventory_from_mapping(data, "test.toml")


# --- host names -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["web1", "web-01.example.org", "db_primary", "10.0.0.5", "fe80::1", "a" * 63, "host.example."],
)
def test_valid_host_names(name: str) -> None:
    assert is_valid_host(name)


@pytest.mark.parametrize(
    "name",
    [
        "",
        "-oProxyCommand=touch /tmp/x",
        "a b",
        "x;reboot",
        "web$(id)",
        "tab\there",
        "new\nline",
        "a" * 64,
        "-leading",
        "trailing-",
        "double..dot",
        "[::1]",
        "ünïcode",
    ],
)
def test_hostile_or_invalid_host_names(name: str) -> None:
    assert not is_valid_host(name)


# --- targets_for -------------------------------------------------------------------------


def test_template_and_global_ssh_settings_apply() -> None:
    inv = inventory(ssh={"host_template": "{name}.guests.example", "user": "audit", "port": 2200})
    targets = targets_for(inv, "dom0a", ["web1", "db1", "web1"])
    assert targets == [
        GuestTarget("web1", "dom0a", "web1.guests.example", 2200, "audit", None),
        GuestTarget("db1", "dom0a", "db1.guests.example", 2200, "audit", None),
    ]


def test_overrides_win_and_skip_leaves_the_domain_out() -> None:
    inv = inventory(
        ssh={"identity_file": "/etc/xenaudit/id_ed25519"},
        domains={
            "web1": {"ssh_host": "10.0.0.7", "ssh_port": 2222, "ssh_user": "ops"},
            "old": {"skip": True},
            "dom0b/db1": {"identity_file": "/root/.ssh/db_key"},
        },
    )
    a = {t.domain: t for t in targets_for(inv, "dom0a", ["web1", "old", "db1"])}
    assert set(a) == {"web1", "db1"}
    assert a["web1"] == GuestTarget(
        "web1", "dom0a", "10.0.0.7", 2222, "ops", "/etc/xenaudit/id_ed25519"
    )
    # The host-scoped override applies on its host only.
    assert a["db1"].identity_file == "/etc/xenaudit/id_ed25519"
    (b,) = targets_for(inv, "dom0b", ["db1"])
    assert b.identity_file == "/root/.ssh/db_key"


def test_hostile_domain_names_are_kept_but_refused_before_connecting() -> None:
    inv = inventory(ssh={"host_template": "{name}.guests.example"})
    hostile = "-oProxyCommand=sh -c reboot"
    (target,) = targets_for(inv, "dom0a", [hostile])
    assert target.domain == hostile
    assert ".guests.example" not in target.ssh_host
    with pytest.raises(RouteError, match="not a valid host name; set the domain's ssh_host"):
        SshConfigView(None).route(target, inv.ssh)


def test_an_override_rescues_a_domain_whose_name_is_not_a_host() -> None:
    inv = inventory(domains={"Web Server": {"ssh_host": "web-server.example"}})
    (target,) = targets_for(inv, "dom0a", ["Web Server"])
    assert target.ssh_host == "web-server.example"


def test_template_without_name_is_an_inventory_error() -> None:
    inv = inventory()
    broken = type(inv)(path=inv.path, hypervisors=inv.hypervisors, ssh_host_template="fixed")
    with pytest.raises(ValueError, match="does not contain"):
        targets_for(broken, "dom0a", ["web1"])


# --- ssh_config ---------------------------------------------------------------------------


def view(tmp_path: Path, text: str) -> SshConfigView:
    path = tmp_path / "config"
    path.write_text(text)
    return SshConfigView(str(path))


CONFIG = """
Host web1
    HostName 10.0.0.5
    Port 2201
    User admin
    IdentityFile ~/.ssh/web_key
    HostKeyAlias web1-alias
Host inner
    HostName 192.168.7.10
    ProxyJump jumper@bastion.example:2022
Host chain
    ProxyJump first,second:2222
Host first
    User firstuser
    ProxyJump none
Host loop1
    ProxyJump loop2
Host loop2
    ProxyJump loop1
Host legacy
    ProxyCommand nc %h %p
Host badname
    HostName "evil host"
Host *
    IdentitiesOnly yes
"""


def test_config_fills_in_what_the_target_leaves_at_defaults(tmp_path: Path) -> None:
    config = view(tmp_path, CONFIG)
    (hop,) = config.route(GuestTarget("web1", "dom0a", "web1"), SshSettings())
    assert (hop.hostname, hop.port, hop.user) == ("10.0.0.5", 2201, "admin")
    assert hop.identity_files == (str(Path.home() / ".ssh/web_key"),)
    assert hop.identities_only
    assert hop.known_hosts_name == "[web1-alias]:2201"


def test_explicit_target_values_beat_the_config(tmp_path: Path) -> None:
    config = view(tmp_path, CONFIG)
    target = GuestTarget("web1", "dom0a", "web1", ssh_port=3000, ssh_user="ops", identity_file="/k")
    (hop,) = config.route(target, SshSettings(identity_file="/global"))
    assert (hop.port, hop.user) == (3000, "ops")
    assert hop.identity_files == ("/k", str(Path.home() / ".ssh/web_key"), "/global")


def test_a_root_override_is_not_replaced_by_the_global_user() -> None:
    # targets_for already folded the inventory's user into the target.
    target = GuestTarget("web1", "dom0a", "web1", ssh_user="root")
    (hop,) = SshConfigView(None).route(target, SshSettings(user="audit"))
    assert hop.user == "root"


def test_proxyjump_hops_come_first(tmp_path: Path) -> None:
    config = view(tmp_path, CONFIG)
    jump, guest = config.route(GuestTarget("inner", "dom0a", "inner"), SshSettings())
    assert (jump.hostname, jump.port, jump.user) == ("bastion.example", 2022, "jumper")
    assert (guest.hostname, guest.port) == ("192.168.7.10", 22)
    assert guest.known_hosts_name == "192.168.7.10"


def test_proxyjump_chains_in_order(tmp_path: Path) -> None:
    config = view(tmp_path, CONFIG)
    hops = config.route(GuestTarget("chain", "dom0a", "chain"), SshSettings(user="root"))
    assert [(h.hostname, h.port, h.user) for h in hops] == [
        ("first", 22, "firstuser"),
        ("second", 2222, "root"),
        ("chain", 22, "root"),
    ]


@pytest.mark.parametrize(
    ("alias", "message"),
    [
        ("loop1", "ProxyJump loop"),
        ("legacy", "ProxyCommand is not supported"),
        ("badname", "not a valid host name"),
    ],
)
def test_unusable_routes_are_refused(tmp_path: Path, alias: str, message: str) -> None:
    config = view(tmp_path, CONFIG)
    with pytest.raises(RouteError, match=message):
        config.route(GuestTarget(alias, "dom0a", alias), SshSettings())


def test_missing_config_means_direct_connections(tmp_path: Path) -> None:
    config = SshConfigView(str(tmp_path / "absent"))
    target = GuestTarget("web1", "dom0a", "web1", ssh_user="u")
    (hop,) = config.route(target, SshSettings())
    assert (hop.hostname, hop.port, hop.user, hop.identity_files) == ("web1", 22, "u", ())


def test_unreadable_config_is_reported_with_its_path(tmp_path: Path) -> None:
    folder = tmp_path / "config-is-a-folder"
    folder.mkdir()
    config = SshConfigView(str(folder))
    with pytest.raises(RouteError, match="config-is-a-folder"):
        config.route(GuestTarget("web1", "dom0a", "web1"), SshSettings())


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("bastion", (None, "bastion", None)),
        ("ops@bastion:2022", ("ops", "bastion", 2022)),
        ("ssh://ops@bastion:2022", ("ops", "bastion", 2022)),
        ("[fe80::1]:2200", (None, "fe80::1", 2200)),
        ("me@[::1]", ("me", "::1", None)),
    ],
)
def test_parse_jump(spec: str, expected: tuple) -> None:
    assert parse_jump(spec) == expected


@pytest.mark.parametrize("spec", ["bastion:0", "bastion:http", "@bastion", "[::1", "-oX=y", "a b"])
def test_parse_jump_refuses_nonsense(spec: str) -> None:
    with pytest.raises(RouteError):
        parse_jump(spec)


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{name}", ("{name}", None)),
        ("{name}.guests.example.net:2222", ("{name}.guests.example.net", 2222)),
        ("[{name}.v6.example.net]:2200", ("{name}.v6.example.net", 2200)),
        ("{name}.example.net", ("{name}.example.net", None)),
    ],
)
def test_template_port(template: str, expected: tuple[str, int | None]) -> None:
    assert split_template(template) == expected


@pytest.mark.parametrize("template", ["{name}:0", "{name}:99999", "{name}:ssh", "[{name}]:"])
def test_template_with_a_bad_port_is_an_inventory_error(template: str) -> None:
    with pytest.raises(ValueError, match="port"):
        split_template(template)
    with pytest.raises(InventoryError, match=r"ssh\.host_template"):
        inventory(ssh={"host_template": template})


def test_template_port_reaches_guests_and_overrides_keep_their_own() -> None:
    inv = inventory(
        ssh={"host_template": "{name}.guests.example.net:2222", "port": 2200},
        domains={
            "db1": {"ssh_host": "10.0.0.9"},
            "app1": {"ssh_port": 2022},
        },
    )
    web, db, app = targets_for(inv, "dom0a", ["web1", "db1", "app1"])
    assert (web.ssh_host, web.ssh_port) == ("web1.guests.example.net", 2222)
    # Its own address, so the template's port does not apply: the global port does.
    assert (db.ssh_host, db.ssh_port) == ("10.0.0.9", 2200)
    assert (app.ssh_host, app.ssh_port) == ("app1.guests.example.net", 2022)


def test_host_patterns_apply_to_template_names(tmp_path: Path) -> None:
    config = view(
        tmp_path,
        "Host *.guests.example.net\n  User audit\n  Port 2201\n  ProxyJump bastion.example.net\n",
    )
    inv = inventory(ssh={"host_template": "{name}.guests.example.net"})
    (target,) = targets_for(inv, "dom0a", ["web1"])
    jump, guest = config.route(target, SshSettings())
    assert (guest.hostname, guest.port, guest.user) == ("web1.guests.example.net", 2201, "audit")
    assert jump.hostname == "bastion.example.net"
    # A port in the template is the inventory's word, like `ssh -p`: it beats the pattern's.
    inv = inventory(ssh={"host_template": "{name}.guests.example.net:2222"})
    (target,) = targets_for(inv, "dom0a", ["web1"])
    assert config.route(target, SshSettings())[-1].port == 2222
