"""`xenaudit logscan`: JSON Lines contract, summaries, stdin, gzip, bad files."""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from xenaudit.logscan import cli as logscan

REPO = Path(__file__).resolve().parent.parent


def _run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    parser = argparse.ArgumentParser()
    logscan.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["logscan", *argv])
    code = args.func(args, out, err)
    return code, out.getvalue(), err.getvalue()


def _json(argv: list[str]) -> list[dict]:
    code, out, _ = _run(["--json", *argv])
    assert code == 0
    return [json.loads(line) for line in out.splitlines()]


def test_page_alloc_failure_keys_and_values(corpus: Path) -> None:
    path = str(corpus / "pagealloc_2.6.32-358.el6_redhat_swapper_order1.log")
    (event,) = _json([path])
    assert {
        "kind",
        "file",
        "line",
        "timestamp",
        "process",
        "order",
        "gfp_mask",
        "gfp_flags",
        "gfp_flags_source",
    } <= set(event)
    assert event["kind"] == "page_alloc_failure"
    assert (event["file"], event["line"], event["timestamp"]) == (path, 1, None)
    assert (event["process"], event["order"], event["gfp_mask"]) == ("swapper", 1, "0x20")
    assert event["gfp_flags"] == ["GFP_ATOMIC", "__GFP_HIGH"]
    assert event["gfp_flags_source"] == "decoded"
    assert event["atomic"] is True


def test_printed_flags_in_json(corpus: Path) -> None:
    (event,) = _json([str(corpus / "pagealloc_5.4.19_dmesgT_order4_qemu.log")])
    assert event["timestamp"] == "Mon Apr 20 15:08:07 2020"
    assert event["gfp_flags"] == ["GFP_KERNEL", "__GFP_COMP", "__GFP_ZERO"]
    assert event["gfp_flags_source"] == "printed"


def test_oom_events_in_json(corpus: Path) -> None:
    invoked_file = str(corpus / "oom_4.15.0-108_kvm_header_only.log")
    kills_file = str(corpus / "oom_5.x_killed_and_oom_reaper_burst.log")
    sacrifice_file = str(corpus / "oom_4.x_journal_kill_process_sacrifice_child.log")
    invoked, *kills, sacrifice = _json([invoked_file, kills_file, sacrifice_file])
    assert {"kind", "file", "line", "process", "gfp_mask", "order", "oom_score_adj"} <= set(invoked)
    assert (invoked["kind"], invoked["file"], invoked["line"]) == ("oom_invoked", invoked_file, 1)
    assert (invoked["process"], invoked["gfp_mask"], invoked["order"]) == (
        "CPU 0/KVM",
        "0x15000c0",
        0,
    )
    assert invoked["oom_score_adj"] == 0
    assert [(k["file"], k["line"], k["victim_pid"]) for k in kills] == [
        (kills_file, 1, 15784),
        (kills_file, 3, 15925),
        (kills_file, 5, 15783),
        (kills_file, 7, 15934),
    ]
    assert kills[1]["victim_process"] == "(resolved)"
    assert (kills[1]["total_vm_kib"], kills[1]["anon_rss_kib"]) == (168424, 4064)
    assert (kills[1]["file_rss_kib"], kills[1]["shmem_rss_kib"]) == (3584, 0)
    assert sacrifice["kind"] == "oom_kill"
    assert (sacrifice["line"], sacrifice["victim_pid"], sacrifice["victim_process"]) == (
        2,
        27438,
        "R",
    )


def test_old_kill_without_shmem_is_null(tmp_path: Path) -> None:
    log = tmp_path / "old.log"
    log.write_text("Killed process 1234 (foo) vsz:1000kB, anon-rss:500kB, file-rss:20kB\n")
    (kill,) = _json([str(log)])
    assert (kill["total_vm_kib"], kill["anon_rss_kib"], kill["file_rss_kib"]) == (1000, 500, 20)
    assert kill["shmem_rss_kib"] is None


def test_balloon_in_json(corpus: Path) -> None:
    (event,) = _json([str(corpus / "balloon_dom0_journal_init.log")])
    assert event == {
        "kind": "balloon",
        "file": str(corpus / "balloon_dom0_journal_init.log"),
        "line": 3,
        "timestamp": "May 02 08:02:43",
        "message": "Initialising balloon driver",
    }


def test_summary_without_json(corpus: Path) -> None:
    code, out, err = _run([str(corpus / "pagealloc_2.6.32-220_el6_headers_only_summary.log")])
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].endswith("5 lines, 5 events (page_alloc_failure 5)")
    assert len(lines) == 6
    assert "line 1 [Mar 18 14:39:17]: page allocation failure in 'glusterfsd': order 1" in lines[1]
    assert "atomic" in lines[1]


def test_gzip_is_read_transparently(corpus: Path, tmp_path: Path) -> None:
    plain = corpus / "oom_5.x_killed_and_oom_reaper_burst.log"
    packed = tmp_path / "kern.log.1"  # no .gz suffix: detected by its magic bytes
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    expected = [dict(e, file=str(packed)) for e in _json([str(plain)])]
    assert _json([str(packed)]) == expected


def test_missing_file_is_reported_and_others_still_scanned(corpus: Path, tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.log")
    good = str(corpus / "balloon_arm64_dmesg_init.log")
    code, out, err = _run(["--json", missing, good])
    assert code == 2
    assert missing in err and "No such file" in err
    assert [json.loads(line)["file"] for line in out.splitlines()] == [good]


def test_broken_gzip_is_an_error_after_the_events_found(corpus: Path, tmp_path: Path) -> None:
    raw = gzip.compress((corpus / "oom_5.x_killed_and_oom_reaper_burst.log").read_bytes() * 50)
    broken = tmp_path / "broken.gz"
    broken.write_bytes(raw[: len(raw) - 20])
    code, out, err = _run(["--json", str(broken)])
    assert code == 2
    assert str(broken) in err
    assert len(out.splitlines()) > 0


def _python_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def test_stdin_dash(corpus: Path) -> None:
    data = (corpus / "pagealloc_3.19.0_i386_order4_netmap.log").read_bytes()
    done = subprocess.run(
        [sys.executable, "-m", "xenaudit.logscan", "--json", "-"],
        input=data,
        capture_output=True,
        env=_python_env(),
        check=False,
    )
    assert done.returncode == 0, done.stderr
    (event,) = [json.loads(line) for line in done.stdout.splitlines()]
    assert (event["file"], event["line"], event["process"], event["order"]) == (
        "-",
        4,
        "pkt-gen",
        4,
    )


def test_stdin_gzip(corpus: Path) -> None:
    data = gzip.compress((corpus / "balloon_pv_guest_console_no_timestamps.log").read_bytes())
    done = subprocess.run(
        [sys.executable, "-m", "xenaudit.logscan", "-"],
        input=data,
        capture_output=True,
        env=_python_env(),
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode().startswith("-: 18 lines, 1 event (balloon 1)")


@pytest.mark.parametrize("jobs", ["1", "3"])
def test_parallel_and_sequential_agree(corpus: Path, tmp_path: Path, jobs: str) -> None:
    samples = sorted(corpus.glob("*.log"))
    body = b"".join(s.read_bytes() + b"[ 1.0] noise between samples\n" * 500 for s in samples * 8)
    log = tmp_path / "big.log"
    log.write_bytes(body)
    sequential = _json(["-j", "1", str(log)])
    # Per copy of the corpus: 18 page allocation failures, 3 OOM headers, 6 kills, 3 balloon.
    assert len(sequential) == 8 * 30
    assert _json(["-j", jobs, str(log)]) == sequential


def test_main_standalone(corpus: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert logscan.main(["--json", str(corpus / "balloon_arm64_dmesg_init.log")]) == 0
    assert json.loads(capsys.readouterr().out)["line"] == 4
