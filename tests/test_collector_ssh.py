"""SshCollector against real OpenSSH sshd stand-in guests (see tests/standin).

Expected values come from what each stand-in guest serves (its fixture
files, its host key as `ssh-keygen -l` prints it), never from the
collector's own output.
"""

from __future__ import annotations

import base64
import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from tests.localssh import free_port
from tests.standin import PROBE_USER, Fleet, GuestSpec, host_has_psi
from tests.standin import content as fixture
from xenaudit.collector.interface import GuestSnapshot
from xenaudit.collector.ssh import SshCollector
from xenaudit.collector.stream import ProbeStream
from xenaudit.parsers.guest import parse_guest

pytestmark = pytest.mark.sshd

MIB = 1024 * 1024


def collect(fleet: Fleet, targets=None, **settings) -> dict[str, GuestSnapshot]:
    collector = SshCollector(fleet.settings(**settings), global_known_hosts=None, use_agent=False)
    done: list[GuestSnapshot] = []
    snaps = list(collector.collect(targets or fleet.targets(), on_done=done.append))
    assert done == snaps, "on_done must see every snapshot, once"
    return {s.domain: s for s in snaps}


def sysvm_dict(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines())


def test_two_guests_return_their_own_sections_and_values(standin_fleet) -> None:
    small = GuestSpec(
        "small",
        meminfo=fixture.meminfo(total_kib=505_416, free_kib=12_344),
        sysvm=fixture.sysvm(swappiness="10"),
        balloon=(524_288, 520_192),
    )
    large = GuestSpec(
        "large",
        meminfo=fixture.meminfo(total_kib=2_040_000, free_kib=900_000),
        kernlog="[    5.000000] nothing to see here\n",
        sysvm=fixture.sysvm(swappiness="60", min_free_kbytes="4096"),
        balloon=None,
        pressure_memory=None,
    )
    fleet = standin_fleet(small, large)
    snaps = collect(fleet)

    assert set(snaps) == {"small", "large"}
    for spec in (small, large):
        snap = snaps[spec.name]
        assert snap.status == "ok", snap.error
        assert snap.error is None
        assert snap.host == "standin-dom0"
        assert snap.host_key_fingerprint is None
        assert snap.sections["meminfo"] == spec.meminfo
        assert snap.sections["buddyinfo"] == spec.buddyinfo
        assert snap.sections["vmstat"] == spec.vmstat
        assert snap.sections["slabinfo"] == spec.slabinfo
        assert snap.sections["kernlog"] == spec.kernlog
        assert snap.kernlog_source == "dmesg"
        # Write-only files (drop_caches, compact_memory) cannot be read and are left out.
        assert sysvm_dict(snap.sections["sysvm"]) == dict(spec.sysvm)
        # The release, the page size and the boot time (/proc/stat is the real one).
        stat = Path("/proc/stat").read_text().splitlines()
        btime = next(x for x in stat if x.startswith("btime "))
        release = f"{os.uname().release}\n{os.sysconf('SC_PAGE_SIZE')}\n{btime}\n"
        assert snap.sections["uname"] == release
        assert snap.sections["ps"].split()[:4] == ["PID", "COMMAND", "RSS", "VSZ"]
        assert len(snap.sections["ps"].splitlines()) <= 30
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", snap.collected_at)

    assert snaps["small"].sections["balloon"] == "target_kb=524288\ncurrent_kb=520192\n"
    assert snaps["small"].section_status["balloon"] == "ok"
    assert snaps["large"].section_status["balloon"] == "missing"
    assert "balloon" not in snaps["large"].sections or snaps["large"].sections["balloon"] == ""
    if host_has_psi():
        assert snaps["small"].sections["psi_memory"] == small.pressure_memory
        assert snaps["large"].section_status["psi_memory"] == "missing"


def test_the_reference_guest_parses_into_the_facts_it_was_given(standin_fleet) -> None:
    """The 512 MiB DomU that logged `swapper: page allocation failure. order:0, mode:0x20`."""
    spec = GuestSpec(
        "ref",
        meminfo=fixture.meminfo(total_kib=505_416, available_kib=38_912),
        balloon=(524_288, 516_096),
        sysvm=fixture.sysvm(min_free_kbytes="1448"),
    )
    snap = collect(standin_fleet(spec))["ref"]
    facts = parse_guest(snap.sections, snap.section_status, "ref")

    assert facts.errors == ()
    assert facts.meminfo.mem_total_kib == 505_416
    assert facts.meminfo.mem_available_kib == 38_912
    assert (facts.balloon_target_kib, facts.balloon_current_kib) == (524_288, 516_096)
    assert facts.sysvm.get_int("min_free_kbytes") == 1448
    failures = [e for e in facts.kernlog.events if e.kind == "page_alloc_failure"]
    assert [(f.process, f.order, f.gfp_mask) for f in failures] == [("swapper", 0, "0x20")]
    assert [z.zone for z in facts.buddyinfo.zones] == ["DMA", "DMA32"]
    assert facts.processes


def test_changed_host_key_is_rejected_with_the_fingerprint_seen(standin_fleet) -> None:
    fleet = standin_fleet(GuestSpec("victim"), GuestSpec("other"))
    victim, other = fleet.guest("victim"), fleet.guest("other")
    # known_hosts holds the other guest's key under the victim's name and port.
    fleet.known_hosts.write_text(
        f"[127.0.0.1]:{victim.port} {other.host_public_key}\n" + other.known_hosts_line
    )
    snaps = collect(fleet)

    snap = snaps["victim"]
    assert snap.status == "host_key_rejected"
    assert snap.host_key_fingerprint == victim.host_key_fingerprint
    assert "CHANGED" in snap.error
    assert other.host_key_fingerprint in snap.error
    assert snap.sections == {}
    assert snaps["other"].status == "ok"


def test_unknown_host_is_rejected_by_default(standin_fleet) -> None:
    fleet = standin_fleet(GuestSpec("stranger"))
    fleet.known_hosts.write_text("")
    snap = collect(fleet)["stranger"]

    assert snap.status == "host_key_rejected"
    assert snap.host_key_fingerprint == fleet.guest("stranger").host_key_fingerprint
    assert "unknown" in snap.error
    assert not Path(fleet.settings().own_known_hosts).exists()


def test_an_unreadable_known_hosts_file_is_named_in_the_refusal(
    standin_fleet, tmp_path: Path
) -> None:
    fleet = standin_fleet(GuestSpec("somewhere"))
    not_a_file = tmp_path / "known_hosts.d"
    not_a_file.mkdir()
    snap = collect(fleet, known_hosts=str(not_a_file))["somewhere"]
    assert snap.status == "host_key_rejected"
    assert f"{not_a_file}: cannot read" in snap.error


def test_hashed_known_hosts_entries_are_honoured(standin_fleet) -> None:
    fleet = standin_fleet(GuestSpec("hashed"))
    # ssh-keygen -H rewrites the file with |1|salt|hash names, as Debian's ssh does.
    subprocess.run(
        ["ssh-keygen", "-H", "-f", str(fleet.known_hosts)], check=True, capture_output=True
    )
    assert "[127.0.0.1]" not in fleet.known_hosts.read_text()

    assert collect(fleet)["hashed"].status == "ok"


def test_accept_new_records_first_seen_keys_and_still_refuses_changed_ones(
    standin_fleet,
) -> None:
    fleet = standin_fleet(GuestSpec("first"), GuestSpec("second"))
    fleet.known_hosts.write_text("")
    own = Path(fleet.settings().own_known_hosts)

    snaps = collect(fleet, host_key_policy="accept-new")
    assert {s.status for s in snaps.values()} == {"ok"}
    assert own.stat().st_mode & 0o777 == 0o600
    assert own.parent.stat().st_mode & 0o777 == 0o700
    recorded = own.read_text()
    for guest in fleet.guests:
        assert guest.known_hosts_line in recorded

    # Now the first guest's name carries the second guest's key: a changed key.
    first, second = fleet.guest("first"), fleet.guest("second")
    tampered = f"[127.0.0.1]:{first.port} {second.host_public_key}\n" + second.known_hosts_line
    own.write_text(tampered)
    snaps = collect(fleet, host_key_policy="accept-new")

    assert snaps["first"].status == "host_key_rejected"
    assert snaps["first"].host_key_fingerprint == first.host_key_fingerprint
    assert "CHANGED" in snaps["first"].error
    assert snaps["second"].status == "ok"
    assert own.read_text() == tampered, "a refused key must not be recorded"


def test_hung_dmesg_times_out_while_other_guests_finish(standin_fleet) -> None:
    fleet = standin_fleet(GuestSpec("hung", dmesg_script="sleep 3600"), GuestSpec("fine"))
    # Generous enough that the healthy guest finishes even on a loaded machine.
    snaps = collect(fleet, guest_timeout_s=6.0)

    hung = snaps["hung"]
    assert hung.status == "timeout"
    assert "guest_timeout_s=6" in hung.error
    assert "kernlog" in hung.error
    # What came before the kernel log is kept.
    assert hung.sections["meminfo"] == GuestSpec("x").meminfo
    assert hung.section_status["meminfo"] == "ok"
    assert hung.section_status["kernlog"] == "truncated"
    assert snaps["fine"].status == "ok"


def test_run_deadline_stops_guests_that_did_not_start(standin_fleet) -> None:
    fleet = standin_fleet(
        GuestSpec("hung", dmesg_script="sleep 3600"), GuestSpec("later1"), GuestSpec("later2")
    )
    # One worker: the hung guest holds it past the run deadline, so the others never start.
    snaps = collect(fleet, concurrency=1, deadline_s=2.0, guest_timeout_s=60.0)

    assert snaps["hung"].status == "timeout"
    assert "deadline_s=2" in snaps["hung"].error
    for name in ("later1", "later2"):
        assert snaps[name].status == "timeout"
        assert "not started before the run deadline" in snaps[name].error


def test_dmesg_of_one_gib_is_cut_from_its_end_and_capped(standin_fleet) -> None:
    flood = 'yes "[    1.000000] flood" | head -c 1073741824; echo "[    2.000000] last line"'
    fleet = standin_fleet(GuestSpec("flood", dmesg_script=flood))

    snap = collect(fleet, kernlog_max_bytes=1 * MIB)["flood"]
    assert snap.status == "ok", snap.error
    assert snap.section_status["kernlog"] == "truncated"
    assert len(snap.sections["kernlog"].encode()) == 1 * MIB
    assert snap.sections["kernlog"].endswith("[    2.000000] last line\n")

    snap = collect(fleet, kernlog_max_bytes=1 * MIB, max_bytes_per_guest=256 * 1024)["flood"]
    assert snap.status == "partial"
    assert "max_bytes_per_guest" in snap.error
    assert snap.section_status["kernlog"] == "truncated"
    assert snap.section_status["meminfo"] == "ok"
    assert sum(len(t.encode()) for t in snap.sections.values()) <= 256 * 1024


def test_endless_stream_is_capped_and_memory_stays_bounded(standin_fleet) -> None:
    # /dev/zero behind /proc/slabinfo: `cat` never ends and sends binary NULs.
    fleet = standin_fleet(GuestSpec("endless", binds={"/proc/slabinfo": "/dev/zero"}))
    cap = 32 * MIB
    before = _rss_kib()
    _reset_peak_rss()
    snap = collect(fleet, max_bytes_per_guest=cap)["endless"]
    peak_growth_mib = (_peak_rss_kib() - before) / 1024

    assert snap.status == "partial"
    assert snap.section_status["slabinfo"] == "truncated"
    assert snap.section_status["meminfo"] == "ok"
    assert "max_bytes_per_guest" in snap.error
    slab = snap.sections["slabinfo"]
    assert set(slab) == {"\ufffd"}, "NUL bytes must not reach the parsers"
    assert len(slab) < cap
    assert peak_growth_mib < 200, f"collector grew by {peak_growth_mib:.0f} MiB"


def test_connection_dropped_mid_output_keeps_earlier_sections(standin_fleet) -> None:
    # Print part of a log, then kill the sshd process serving this session.
    drop = """echo "[    1.000000] half of the log"
p=$PPID
while [ "$p" -gt 1 ]; do
  case "$(cat /proc/$p/comm)" in sshd*) kill -9 "$p"; exit 0;; esac
  p=$(sed 's/.*) //' /proc/$p/stat | cut -d' ' -f2)
done"""
    fleet = standin_fleet(GuestSpec("dropper", dmesg_script=drop))
    snap = collect(fleet)["dropper"]

    assert snap.status == "partial"
    assert "kernlog" in snap.error
    assert snap.section_status["kernlog"] == "truncated"
    for name in ("uname", "meminfo", "buddyinfo", "vmstat", "sysvm", "ps", "slabinfo"):
        assert snap.section_status[name] == "ok", name
    assert snap.sections["meminfo"] == GuestSpec("x").meminfo


def test_non_root_login_without_sudo_reports_denied_sources(standin_fleet) -> None:
    fleet = standin_fleet(GuestSpec("plain", login_user=PROBE_USER, kern_log="[ 1.0] kern\n"))
    snap = collect(fleet)["plain"]

    assert snap.status in ("ok", "partial")
    assert snap.section_status["slabinfo"] == "denied"
    assert snap.section_status["kernlog"] == "denied"
    assert snap.kernlog_source is None
    assert snap.sections["meminfo"] == GuestSpec("x").meminfo
    assert snap.section_status["sysvm"] == "ok"


def test_non_root_login_reads_dmesg_when_not_restricted(standin_fleet) -> None:
    spec = GuestSpec("open", login_user=PROBE_USER, dmesg_restrict=0)
    snap = collect(standin_fleet(spec))["open"]

    assert snap.status == "ok", snap.error
    assert snap.kernlog_source == "dmesg"
    assert snap.sections["kernlog"] == spec.kernlog
    assert snap.section_status["slabinfo"] == "denied"


def test_nothing_listening_is_unreachable(standin_fleet) -> None:
    fleet = standin_fleet(GuestSpec("up"))
    closed = fleet.target("up", ssh_port=free_port(), domain="down")
    snaps = collect(fleet, targets=[closed, fleet.target("up")], retries=1)

    assert snaps["down"].status == "unreachable"
    assert "refused" in snaps["down"].error.lower()
    assert snaps["up"].status == "ok"


def test_wrong_client_key_is_auth_failed(standin_fleet) -> None:
    fleet = standin_fleet(GuestSpec("locked"))
    stranger = fleet.make_client_key("stranger")
    target = fleet.target("locked", identity_file=str(stranger))
    snap = collect(fleet, targets=[target], identity_file=None)["locked"]

    assert snap.status == "auth_failed"
    assert str(stranger) in snap.error
    assert snap.host_key_fingerprint is None


def test_keys_held_by_a_running_ssh_agent_are_used(
    standin_fleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fleet = standin_fleet(GuestSpec("agent"))
    sock = tmp_path / "agent.sock"
    agent = subprocess.Popen(
        ["ssh-agent", "-D", "-a", str(sock)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        env = {**os.environ, "SSH_AUTH_SOCK": str(sock)}
        for _ in range(1000):  # wait until the agent listens (or died)
            if sock.exists() or agent.poll() is not None:
                break
            time.sleep(0.01)
        subprocess.run(["ssh-add", str(fleet.client_key)], env=env, check=True, capture_output=True)
        # No key file anywhere: only the agent can authenticate.
        monkeypatch.setenv("SSH_AUTH_SOCK", str(sock))
        monkeypatch.setenv("HOME", str(tmp_path))
        collector = SshCollector(fleet.settings(identity_file=None), global_known_hosts=None)
        (snap,) = collector.collect([fleet.target("agent", identity_file=None)])
        assert snap.status == "ok", snap.error

        without_agent = SshCollector(
            fleet.settings(identity_file=None), global_known_hosts=None, use_agent=False
        )
        (snap,) = without_agent.collect([fleet.target("agent", identity_file=None)])
        assert snap.status == "auth_failed"
        assert "no usable key" in snap.error
    finally:
        agent.kill()
        agent.wait()


def test_hostile_output_does_not_break_the_stream(standin_fleet) -> None:
    fake_marker = "\nXA" + "0" * 32 + ":Z\n\nXA" + "f" * 32 + ":B:kernlog:ok:dmesg:-\n"
    meminfo = fixture.meminfo() + fake_marker + "XAnot-a-marker:E:meminfo:0\n"
    binary = r"printf 'line one\000with nul\377\376 bad utf-8\n\033[31mred\033[0m\n'"
    fleet = standin_fleet(GuestSpec("hostile", meminfo=meminfo, dmesg_script=binary))
    snap = collect(fleet)["hostile"]

    assert snap.status == "ok", snap.error
    assert snap.sections["meminfo"] == meminfo
    kernlog = snap.sections["kernlog"]
    assert "\x00" not in kernlog
    assert kernlog.startswith("line one\ufffdwith nul\ufffd\ufffd bad utf-8\n")
    assert "\x1b[31mred" in kernlog


def test_proxyjump_through_another_guest_checks_both_host_keys(
    standin_fleet, tmp_path: Path
) -> None:
    jump_spec = GuestSpec("bastion", meminfo=fixture.meminfo(total_kib=111_111))
    inner_spec = GuestSpec("inner", meminfo=fixture.meminfo(total_kib=222_222))
    fleet = standin_fleet(jump_spec, inner_spec)
    jump, inner = fleet.guest("bastion"), fleet.guest("inner")
    config = tmp_path / "ssh_config"
    config.write_text(
        "Host inner-guest\n"
        "  HostName 127.0.0.1\n"
        f"  Port {inner.port}\n"
        f"  ProxyJump root@127.0.0.1:{jump.port}\n"
        "Host *\n"
        f"  IdentityFile {fleet.client_key}\n"
    )
    target = fleet.target("inner", ssh_host="inner-guest", ssh_port=22, identity_file=None)
    snap = collect(fleet, targets=[target], ssh_config=str(config))["inner"]
    assert snap.status == "ok", snap.error
    assert snap.sections["meminfo"] == inner_spec.meminfo

    fleet.write_known_hosts(fleet.known_hosts, [inner])
    snap = collect(fleet, targets=[target], ssh_config=str(config))["inner"]
    assert snap.status == "host_key_rejected"
    assert "jump host" in snap.error
    assert snap.host_key_fingerprint == jump.host_key_fingerprint


def test_probe_writes_nothing_on_the_guest(standin_fleet) -> None:
    fleet = standin_fleet(GuestSpec("readonly"))
    guest = fleet.guest("readonly")
    before = _tree(guest.directory)
    assert collect(fleet)["readonly"].status == "ok"
    after = _tree(guest.directory)
    # sshd itself may record the login (wtmp/btmp/lastlog under the fake /var/log).
    changed = {p for p in before.keys() | after.keys() if before.get(p) != after.get(p)}
    assert {p for p in changed if not re.search(r"varlog/(wtmp|btmp|lastlog)$", p)} == set()


def test_stream_reader_agrees_with_the_guest_on_section_boundaries() -> None:
    """The framing the probe prints (checked byte for byte) without any sshd."""
    token = "a" * 32
    marker = "\nXA" + token + ":"
    body = b"x\n\nXA" + b"b" * 32 + b":E:meminfo:0\n"
    stream = ProbeStream(token, 1 * MIB, 1 * MIB)
    raw = (
        f"{marker}B:meminfo:ok:-:-\n".encode() + body + f"{marker}E:meminfo:0\n{marker}Z\n".encode()
    )
    stream.feed(raw)
    out = stream.result()
    assert out.sections["meminfo"] == body.decode()


def _tree(root: Path) -> dict[str, str]:
    entries = {}
    for path in root.rglob("*"):
        if path.is_file() and path.name not in ("sshd.log", "sshd.pid"):
            entries[str(path.relative_to(root))] = base64.b64encode(path.read_bytes()).decode()
    return entries


def _status_kib(field: str) -> int:
    text = Path("/proc/self/status").read_text()
    return int(re.search(rf"^{field}:\s+(\d+) kB", text, re.M).group(1))


def _rss_kib() -> int:
    return _status_kib("VmRSS")


def _peak_rss_kib() -> int:
    return _status_kib("VmHWM")


def _reset_peak_rss() -> None:
    # "5" resets the peak RSS (VmHWM) of this process (see proc(5), clear_refs).
    Path("/proc/self/clear_refs").write_text("5")


def test_guests_on_several_ports_without_per_domain_tables(standin_fleet, tmp_path: Path) -> None:
    """A port in host_template, and ssh_config Host patterns, reach every guest by its name."""
    from xenaudit.collector.targets import targets_for
    from xenaudit.inventory.interface import Inventory

    specs = [
        GuestSpec("web-1", meminfo=fixture.meminfo(total_kib=301_000)),
        GuestSpec("db-1", meminfo=fixture.meminfo(total_kib=302_000)),
        GuestSpec("cache-1", meminfo=fixture.meminfo(total_kib=303_000)),
    ]
    fleet = standin_fleet(*specs)
    web, db, cache = (fleet.guest(s.name) for s in specs)
    config = tmp_path / "ssh_config"
    config.write_text(
        # Patterns, not hosts: any web-* or db-* guest would be reached the same way.
        "Host web-*.guests.test\n"
        f"  Port {web.port}\n"
        "Host db-*.guests.test\n"
        f"  Port {db.port}\n"
        "Host *.guests.test *.other.test\n"
        "  HostName 127.0.0.1\n"
    )
    settings = fleet.settings(ssh_config=str(config))
    by_pattern = Inventory(
        path="inv.toml", hypervisors=(), ssh=settings, ssh_host_template="{name}.guests.test"
    )
    by_template = Inventory(
        path="inv.toml",
        hypervisors=(),
        ssh=settings,
        ssh_host_template=f"{{name}}.other.test:{cache.port}",
    )
    targets = targets_for(by_pattern, "dom0a", ["web-1", "db-1"])
    targets += targets_for(by_template, "dom0a", ["cache-1"])
    assert [(t.ssh_host, t.ssh_port) for t in targets] == [
        ("web-1.guests.test", 22),
        ("db-1.guests.test", 22),
        ("cache-1.other.test", cache.port),
    ]
    collector = SshCollector(settings, global_known_hosts=None, use_agent=False)
    snaps = {s.domain: s for s in collector.collect(targets)}
    for spec in specs:
        snap = snaps[spec.name]
        assert snap.status == "ok", (spec.name, snap.error)
        # Each name reached its own guest: each serves its own MemTotal.
        assert snap.sections["meminfo"] == spec.meminfo
