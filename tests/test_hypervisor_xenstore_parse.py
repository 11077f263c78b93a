"""xenstore-ls and xenstore-read output, and the memory keys in it: real samples, hostile text."""

from __future__ import annotations

from pathlib import Path

import pytest

from xenaudit.hypervisor.parse_error import RawParseError
from xenaudit.hypervisor.xenstore_parse import (
    parse_xenstore_ls,
    parse_xenstore_read,
    unsanitise,
    xenstore_domains,
)


def test_flat_listing_with_permissions_and_mail_wrapping(corpus: Path) -> None:
    text = (corpus / "xenstore_ls_fp_arm_petalinux_mailwrapped.txt").read_text()
    listing = parse_xenstore_ls(text)
    assert listing.layout == "flat"
    assert listing.values["/local/domain/1/memory/target"] == "1048577"
    assert (
        listing.values["/local/domain/2/error/device/vif/0/error"] == "1 allocating event channel"
    )
    # A value whose permissions the mail moved to the next line is kept ...
    assert (
        listing.values["/local/domain/1/console/backend"] == "/local/domain/0/backend/console/1/0"
    )
    # ... a value moved to the next line is not: 12 lone permission lines, 5 split pairs.
    assert "/local/domain/1/backend/vif/2/0/frontend" not in listing.values
    assert listing.skipped_lines == 12 + 2 * 5
    domains = xenstore_domains(listing)
    assert sorted(domains) == [0, 1, 2]
    guest = domains[1]
    assert (guest.name, guest.target_kib, guest.static_max_kib) == ("guest0", 1048577, 1048576)
    # videoram "-1" means none; no balloon driver and no guest tools wrote anything.
    assert guest.videoram_kib is None and guest.feature_balloon is None
    assert guest.agent_total_kib is None and guest.balloond_meminfo is None


def test_tree_listing_of_a_xenserver_guest(corpus: Path) -> None:
    text = (corpus / "xenstore_ls_tree_xenserver_domu_rackspace.txt").read_text()
    listing = parse_xenstore_ls(text, "/local/domain/89")
    assert listing.layout == "tree" and listing.skipped_lines == 0
    assert listing.values["/local/domain/89/device/vbd/51712/backend"] == (
        "/local/domain/0/backend/vbd/89/51712"
    )
    (guest,) = xenstore_domains(listing).values()
    assert guest.domid == 89 and guest.name == "slice21006919"
    assert guest.feature_balloon is True
    assert (guest.agent_total_kib, guest.agent_free_kib) == (504076, 159156)
    assert guest.agent_updated == "Tue Jul 31 20:09:21 CDT 2012"
    # Two JSON values were cut at 80 columns by xenstore-ls.
    assert guest.truncated == (
        "vm-data/networking/40409783782e",
        "vm-data/networking/4040a147e2af",
    )
    assert listing.values["/local/domain/89/vm-data/networking/4040a147e2af"].endswith(
        '255.255.128.0",'
    )


@pytest.mark.parametrize(
    ("sanitised", "raw"),
    [
        ("plain", "plain"),
        ("a\\tb\\nc\\rd", "a\tb\nc\rd"),
        ("back\\\\slash", "back\\slash"),
        ("nul\\000bell\\007", "nul\x00bell\x07"),
        ("esc\\x1b[31m", "esc\x1b[31m"),
        ('quote"inside', 'quote"inside'),
    ],
)
def test_unsanitise_reverses_xenstore_escapes(sanitised: str, raw: str) -> None:
    assert unsanitise(sanitised) == raw


def test_value_with_quotes_ends_at_the_last_quote() -> None:
    listing = parse_xenstore_ls('/local/domain/3/name = "say "hi""\n')
    assert listing.values["/local/domain/3/name"] == 'say "hi"'


def test_unreadable_node_and_hostile_numbers() -> None:
    text = "\n".join(
        [
            '/local/domain/7 = ""',
            "/local/domain/7/name:",
            '/local/domain/7/memory/target = "12e3"',
            '/local/domain/7/memory/static-max = "99999999999999999999"',
            '/local/domain/7/data/meminfo_total = " 2048000 "',
            '/local/domain/7/data/meminfo_free = "-5"',
            '/local/domain/7/control/feature-balloon = "yes"',
            '/local/domain/7/memory/videoram = "4\\xb2"',
            '/etc/passwd = "not a domain"',
            'garbage line = "x"',
        ]
    )
    listing = parse_xenstore_ls(text)
    assert listing.values["/local/domain/7/name"] is None and listing.skipped_lines == 1
    guest = xenstore_domains(listing)[7]
    assert guest.target_kib is None and guest.static_max_kib is None
    assert guest.agent_total_kib == 2048000 and guest.agent_free_kib is None
    assert set(guest.bad_values) == {"memory/target", "memory/static-max", "data/meminfo_free"}
    assert guest.videoram_kib is None  # "4²": not a number, not a crash
    assert guest.feature_balloon is False


def test_old_xsls_raw_value_is_read_again_uncut() -> None:
    meminfo = "MemTotal:        2012884 kB\nMemFree:           41220 kB\n"
    # xsls.c printed values raw: the value's newlines break the listing.
    tree = '1 = ""\n memory = ""\n  meminfo = "' + meminfo + '"\n  target = "2097152"\n'
    listing = parse_xenstore_ls(tree, "/local/domain")
    assert "/local/domain/1/memory/meminfo" in listing.truncated
    assert listing.values["/local/domain/1/memory/target"] == "2097152"
    reread = parse_xenstore_read("/local/domain/1/memory/meminfo: " + meminfo)
    guest = xenstore_domains(listing, reread)[1]
    assert guest.balloond_meminfo == meminfo.rstrip("\n") and guest.truncated == ()
    assert guest.target_kib == 2097152


def test_a_raw_value_cannot_set_another_domains_target() -> None:
    forged = 'x\n2 = ""\n memory = ""\n  target = "1"'
    tree = (
        '1 = ""\n memory = ""\n  meminfo = "' + forged + '"\n'
        '2 = ""\n memory = ""\n  target = "4194304"\n'
    )
    listing = parse_xenstore_ls(tree, "/local/domain")
    assert "/local/domain/2/memory/target" in listing.conflicts
    assert xenstore_domains(listing)[2].target_kib is None


def test_a_re_read_only_replaces_values_the_listing_cut() -> None:
    listing = parse_xenstore_ls('/local/domain/2/memory/target = "4194304"\n')
    forged = parse_xenstore_read(
        "/local/domain/1/memory/meminfo: MemTotal: 1 kB\n/local/domain/2/memory/target: 1\n"
    )
    assert xenstore_domains(listing, forged)[2].target_kib == 4194304


def test_xenstore_read_joins_raw_multi_line_values() -> None:
    text = (
        "/local/domain/1/memory/meminfo: MemTotal: 100 kB\nMemFree: 50 kB\n"
        "/local/domain/1/memory/target: 102400\n"
    )
    listing = parse_xenstore_read(text)
    assert listing.values["/local/domain/1/memory/meminfo"] == "MemTotal: 100 kB\nMemFree: 50 kB"
    assert listing.values["/local/domain/1/memory/target"] == "102400"


def test_text_that_is_no_listing_is_an_error() -> None:
    with pytest.raises(RawParseError, match="not xenstore-ls output"):
        parse_xenstore_ls("xenstore-ls: xs_open: Permission denied\n")
