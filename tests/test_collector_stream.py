"""The probe script and the marker stream reader, without any SSH.

The probe is run by the local `sh` against this machine's real /proc, and
the reader is fed hand-built and random streams, including hostile ones.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xenaudit.collector.interface import SECTIONS
from xenaudit.collector.probe import PROBE_ORDER, build_probe, marker, new_token
from xenaudit.collector.stream import ProbeStream

TOKEN = "0123456789abcdef" * 2
M = "\n" + marker(TOKEN) + ":"
MIB = 1024 * 1024


def frame(sections: dict[str, bytes], *, complete: bool = True, rc: str = "0") -> bytes:
    """A stream framed exactly as the probe prints it."""
    out = f"{M}H:0\n".encode()
    for name, body in sections.items():
        out += f"{M}B:{name}:ok:-:-\n".encode() + body + f"{M}E:{name}:{rc}\n".encode()
    if complete:
        out += f"{M}Z\n".encode()
    return out


def read(data: bytes, chunk: int = 4096, max_bytes: int = 16 * MIB, kernlog_max: int = 8 * MIB):
    stream = ProbeStream(TOKEN, max_bytes, kernlog_max)
    for i in range(0, len(data), chunk):
        stream.feed(data[i : i + chunk])
    return stream.result()


# --- the probe, run by the local shell ------------------------------------------------


def run_probe_locally(tmp_path: Path, **kwargs) -> bytes:
    token = new_token()
    script = build_probe(token, kernlog_max_bytes=4096, command_timeout_s=20, **kwargs)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path)}
    env["TMPDIR"] = str(tmp_path)
    result = subprocess.run(
        ["sh", "-s"], input=script.encode(), capture_output=True, cwd=tmp_path, env=env, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return token, result.stdout


def test_local_probe_prints_every_section_in_order(tmp_path: Path) -> None:
    token, raw = run_probe_locally(tmp_path)
    stream = ProbeStream(token, 16 * MIB, 4096)
    stream.feed(raw)
    out = stream.result()

    assert out.complete and not out.capped
    assert list(out.section_status) == list(SECTIONS)  # result() lists them in SECTIONS order
    headers = [
        line.split(":")[2] for line in raw.decode(errors="replace").splitlines() if ":B:" in line
    ]
    assert headers == list(PROBE_ORDER)
    # The release, the page size and the boot time (/proc/stat is the real one).
    btime = next(x for x in Path("/proc/stat").read_text().splitlines() if x.startswith("btime "))
    release = f"{os.uname().release}\n{os.sysconf('SC_PAGE_SIZE')}\n{btime}\n"
    assert out.sections["uname"] == release
    swappiness = Path("/proc/sys/vm/swappiness").read_text().strip()
    assert f"swappiness={swappiness}\n" in out.sections["sysvm"]
    # Multi-value sysctls keep their tabs; write-only ones are skipped.
    ratio = Path("/proc/sys/vm/lowmem_reserve_ratio").read_text().strip()
    assert f"lowmem_reserve_ratio={ratio}\n" in out.sections["sysvm"]
    assert "drop_caches=" not in out.sections["sysvm"]
    assert out.sections["meminfo"].startswith("MemTotal:")
    if out.section_status["kernlog"] == "ok":
        assert len(out.sections["kernlog"].encode()) <= 4096


def test_local_probe_writes_no_files(tmp_path: Path) -> None:
    run_probe_locally(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_probe_refuses_anything_but_a_hex_token() -> None:
    with pytest.raises(ValueError):
        build_probe("abc; rm -rf /", kernlog_max_bytes=10, command_timeout_s=1)
    with pytest.raises(ValueError):
        build_probe(new_token(), kernlog_max_bytes=-1, command_timeout_s=1)


def test_tokens_are_fresh_each_time() -> None:
    assert len({new_token() for _ in range(100)}) == 100


# --- framing --------------------------------------------------------------------------


def test_text_round_trips_byte_for_byte_whatever_the_chunking() -> None:
    bodies = {
        "meminfo": b"MemTotal: 1 kB\n",
        "ps": b"no trailing newline",
        "sysvm": b"",
        "kernlog": b"\n\nblank lines around\n\n",
    }
    for chunk in (1, 2, 3, 7, 64, 1 << 20):
        out = read(frame(bodies), chunk=chunk)
        assert out.complete and out.problems == []
        assert out.sections == {k: v.decode() for k, v in bodies.items()}
        assert set(out.section_status.values()) == {"ok"}


def test_markers_without_the_token_are_just_text() -> None:
    fake = (
        b"\nXA" + b"f" * 32 + b":Z\n"
        b"\nXA" + TOKEN.encode()[:-1] + b"0:E:meminfo:0\n"
        b" XA" + TOKEN.encode() + b":Z\n"  # not at a line start: not a marker either
    )
    out = read(frame({"meminfo": fake, "vmstat": b"x 1\n"}))
    assert out.sections["meminfo"] == fake.decode()
    assert out.sections["vmstat"] == "x 1\n"
    assert out.complete


def test_malformed_marker_lines_with_the_token_are_text() -> None:
    odd = f"{M}B:meminfo:maybe:-:-\n{M}Q:what\n{M}" + "B" * 300 + "\n"
    out = read(frame({"kernlog": odd.encode()}))
    assert out.sections["kernlog"] == odd
    assert out.section_status["kernlog"] == "ok"


def test_output_ending_mid_section_keeps_what_came() -> None:
    data = frame({"meminfo": b"MemTotal: 1 kB\n"}, complete=False)
    data += f"{M}B:kernlog:ok:dmesg:-\n".encode() + b"[ 1.0] half a li"
    out = read(data)
    assert not out.complete
    assert out.section_status == {"meminfo": "ok", "kernlog": "truncated"}
    assert out.sections["kernlog"] == "[ 1.0] half a li"
    assert out.kernlog_source == "dmesg"
    assert out.problems == ["kernlog: output ended before the section did"]


def test_byte_cap_stops_reading_and_marks_the_open_section() -> None:
    data = frame({"meminfo": b"a" * 100, "slabinfo": b"b" * 10_000})
    out = read(data, chunk=333, max_bytes=2_000)
    assert out.capped and not out.complete
    assert out.bytes_read == 2_000
    assert out.section_status == {"meminfo": "ok", "slabinfo": "truncated"}
    assert set(out.sections["slabinfo"]) == {"b"}
    assert len(out.sections["slabinfo"]) < 2_000
    assert "max_bytes_per_guest" in out.problems[0]


def test_failed_commands_become_error_and_refused_sudo_denied() -> None:
    data = f"{M}B:ps:ok:-:-\nps: bad option\n{M}E:ps:1\n".encode()
    data += f"{M}B:slabinfo:ok:-:sudo\n{M}E:slabinfo:1\n{M}Z\n".encode()
    out = read(data)
    assert out.section_status == {"ps": "error", "slabinfo": "denied"}
    assert out.sections["ps"] == "ps: bad option\n"
    assert out.problems == ["ps: exit status 1"]


def test_kernel_log_longer_than_the_cap_is_cut_from_its_start() -> None:
    log = b"".join(b"[ %d.0] line %d\n" % (i, i) for i in range(1000))
    data = f"{M}B:kernlog:ok:journalctl:-\n".encode() + log + f"{M}E:kernlog:0\n{M}Z\n".encode()
    out = read(data, kernlog_max=1000)
    assert out.section_status["kernlog"] == "truncated"
    assert out.sections["kernlog"].encode() == log[-1000:]
    assert out.kernlog_source == "journalctl"
    assert out.problems == []  # cutting the log is by design, not a failure


def test_exactly_the_cap_is_not_cut() -> None:
    log = b"x" * 999 + b"\n"
    data = f"{M}B:kernlog:ok:dmesg:-\n".encode() + log + f"{M}E:kernlog:0\n{M}Z\n".encode()
    out = read(data, kernlog_max=1000)
    assert out.section_status["kernlog"] == "ok"
    assert out.sections["kernlog"].encode() == log


def test_nul_and_invalid_utf8_become_replacement_characters() -> None:
    out = read(frame({"kernlog": b"a\x00b\xff\xfec\n"}))
    assert out.sections["kernlog"] == "a\ufffdb\ufffd\ufffdc\n"


def test_unknown_and_repeated_sections_do_not_override_real_ones() -> None:
    data = f"{M}B:secrets:ok:-:-\nzzz{M}E:secrets:0\n".encode()
    data += frame({"meminfo": b"first\n"}, complete=False)
    data += f"{M}B:meminfo:ok:-:-\nsecond\n{M}E:meminfo:0\n{M}Z\n".encode()
    out = read(data)
    assert out.sections == {"meminfo": "first\n"}
    assert "meminfo: printed twice; kept the first" in out.problems


def test_data_after_the_final_marker_is_ignored() -> None:
    data = frame({"uname": b"6.1.0\n"}) + f"{M}B:meminfo:ok:-:-\nlate\n".encode()
    out = read(data)
    assert out.sections == {"uname": "6.1.0\n"}
    assert out.complete and out.problems == []


def test_text_before_the_first_section_is_reported_escaped() -> None:
    out = read(b"sh: 1: exec: sh: not found\n\x1b[2J\n")
    assert out.section_status == {}
    assert not out.complete
    assert out.preamble.startswith("sh: 1: exec: sh: not found")
    assert "\x1b" not in out.preamble


# --- hostile streams ------------------------------------------------------------------

section_names = st.sampled_from(SECTIONS)
bodies = st.binary(max_size=300).filter(lambda b: marker(TOKEN).encode() not in b)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.dictionaries(section_names, bodies, max_size=len(SECTIONS)),
    st.integers(min_value=1, max_value=97),
)
def test_any_section_text_round_trips(sections: dict[str, bytes], chunk: int) -> None:
    out = read(frame(sections), chunk=chunk)
    expected = {
        k: v.decode("utf-8", "replace").replace("\x00", "\ufffd") for k, v in sections.items()
    }
    assert out.sections == expected
    assert out.complete


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.one_of(
            st.binary(max_size=200),
            st.sampled_from(
                [
                    f"{M}B:meminfo:ok:-:-\n",
                    f"{M}B:kernlog:ok:dmesg:sudo\n",
                    f"{M}E:meminfo:0\n",
                    f"{M}E:kernlog:x\n",
                    f"{M}Z",
                    f"{M}H:1000\n",
                    M,
                    "\n",
                ]
            ).map(str.encode),
        ),
        max_size=40,
    ),
    st.integers(min_value=1, max_value=64),
    st.integers(min_value=1, max_value=4000),
)
def test_hostile_streams_never_raise_and_stay_within_the_cap(
    parts: list[bytes], chunk: int, cap: int
) -> None:
    data = b"".join(parts)
    out = read(data, chunk=chunk, max_bytes=cap, kernlog_max=500)
    assert out.bytes_read <= min(len(data), cap)
    if not out.complete:
        # Only the final marker stops reading before the data or the cap runs out.
        assert out.bytes_read == min(len(data), cap)
        assert out.capped == (len(data) >= cap)
    stored = sum(len(t.encode("utf-8", "replace")) for t in out.sections.values())
    # U+FFFD takes three bytes for each bad input byte, hence the factor.
    assert stored <= 3 * cap
    assert set(out.section_status) <= set(SECTIONS)
    assert set(out.section_status.values()) <= {"ok", "missing", "denied", "truncated", "error"}


def test_a_kernel_log_source_that_gave_nothing_gives_way_to_the_next() -> None:
    data = f"{M}H:0\n{M}B:kernlog:ok:dmesg:-\n{M}E:kernlog:1\n".encode()
    data += f"{M}B:kernlog:ok:journalctl:-\nfrom the journal\n{M}E:kernlog:0\n{M}Z\n".encode()
    out = read(data)
    assert out.sections["kernlog"] == "from the journal\n"
    assert out.section_status["kernlog"] == "ok"
    assert out.kernlog_source == "journalctl"
    assert not [p for p in out.problems if p.startswith("kernlog")]


def test_a_kernel_log_that_answered_is_never_replaced() -> None:
    data = f"{M}H:0\n{M}B:kernlog:ok:dmesg:-\nreal log\n{M}E:kernlog:0\n".encode()
    data += f"{M}B:kernlog:ok:journalctl:-\nother\n{M}E:kernlog:0\n{M}Z\n".encode()
    out = read(data)
    assert out.sections["kernlog"] == "real log\n"
    assert out.kernlog_source == "dmesg"
    assert "kernlog: printed twice; kept the first" in out.problems
