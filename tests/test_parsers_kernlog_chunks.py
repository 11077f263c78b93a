"""The byte-block and parallel scanners give exactly the line-by-line result."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from xenaudit.logscan import parallel as logscan_parallel
from xenaudit.parsers.kernlog import (
    ChunkScan,
    iter_kernlog_chunks,
    iter_kernlog_events,
    parse_kernlog,
)
from xenaudit.parsers.kernscan import Scanner

NOISE = [
    "e1000e: eth0 NIC Link is Up 1000 Mbps Full Duplex, Flow Control: Rx/Tx",
    "[UFW BLOCK] IN=eth0 OUT= SRC=10.1.2.3 DST=10.1.2.4 LEN=60 PROTO=TCP SPT=1 DPT=22",
    "EXT4-fs (xvda1): re-mounted. Opts: errors=remount-ro",
    "usb 1-1: new high-speed USB device number 3 using xhci_hcd",
    "Out of memory: Kill process 77 (java) score 900 or sacrifice child",
    "virtio_balloon virtio3: Out of puff! Can't get 1 pages",
    "warn_alloc: 3 callbacks suppressed",
    "",
]


def _mixed_log(corpus: Path, seed: int, reps: int = 6) -> bytes:
    """Corpus kernel logs (all kinds) shuffled among noise lines, with timestamps."""
    rng = random.Random(seed)
    samples = sorted(corpus.glob("*.log"))
    lines: list[str] = []
    for _ in range(reps):
        rng.shuffle(samples)
        for sample in samples:
            for _ in range(rng.randrange(0, 40)):
                lines.append(f"[{rng.randrange(10**6)}.000000] {rng.choice(NOISE)}")
            lines.extend(sample.read_text(errors="replace").splitlines())
    return ("\n".join(lines) + "\n").encode()


@pytest.mark.parametrize("size", [1, 7, 100, 4096, 1 << 20])
def test_any_block_size_gives_the_line_by_line_result(corpus, size: int) -> None:
    data = _mixed_log(corpus, seed=size)
    expected = parse_kernlog(data.decode("utf-8", "replace"))
    assert len(expected.events) > 50
    blocks = [data[i : i + size] for i in range(0, len(data), size)]
    assert tuple(iter_kernlog_chunks(blocks)) == expected.events
    if size == 1 << 20:  # and each line fed on its own, through the general path
        lines = data.split(b"\n")[:-1]
        assert tuple(iter_kernlog_events(line + b"\n" for line in lines)) == expected.events


def _regions(data: bytes, cuts: list[int], warmup: int):
    """Scan data as ChunkScan regions cut at the line starts after ``cuts``."""
    starts = [0]
    for cut in sorted(cuts):
        start = data.find(b"\n", cut) + 1
        if starts[-1] < start < len(data):
            starts.append(start)
    events = []
    offset = 0
    for index, start in enumerate(starts):
        stop = starts[index + 1] if index + 1 < len(starts) else None
        origin = 0 if index == 0 else data.rfind(b"\n", 0, max(0, start - warmup)) + 1
        scanner = Scanner(head_lines=64 if origin == 0 else 0)
        scan = ChunkScan(scanner, origin=origin, emit_from=start, stop_at=stop)
        found = list(scan.run([data[origin:]]))
        assert scan.line_at_emit is not None and scan.line_at_stop is not None
        events += [logscan_parallel._shift(e, offset - scan.line_at_emit) for e in found]
        offset += scan.line_at_stop - scan.line_at_emit
    return events, offset


@pytest.mark.parametrize("seed", range(6))
def test_regions_add_up_to_the_sequential_scan(corpus, seed: int) -> None:
    data = _mixed_log(corpus, seed)
    expected = parse_kernlog(data)
    rng = random.Random(seed)
    cuts = [rng.randrange(len(data)) for _ in range(rng.randrange(1, 12))]
    events, lines = _regions(data, cuts, warmup=64 << 10)
    assert lines == expected.lines_read
    assert tuple(events) == expected.events


def test_parallel_file_scan_matches(corpus, tmp_path: Path, monkeypatch) -> None:
    data = _mixed_log(corpus, seed=99, reps=10)
    path = tmp_path / "kern.log"
    path.write_bytes(data)
    expected = parse_kernlog(data)
    monkeypatch.setattr(logscan_parallel, "WARMUP", 32 << 10)
    for workers in (2, 3, 5):
        events, summary = logscan_parallel.scan_file_parallel(str(path), workers)
        assert tuple(events) == expected.events
        assert (summary.lines_read, summary.truncated) == (expected.lines_read, False)


def test_parallel_scan_reports_a_cut_first_line(tmp_path: Path) -> None:
    path = tmp_path / "kern.log"
    body = "".join(f"[{i}.0] noise line {i}\n" for i in range(20000))
    path.write_text("567890] cut here\n" + body)
    _, summary = logscan_parallel.scan_file_parallel(str(path), 3)
    assert summary.truncated
    assert summary.lines_read == 20001


def test_default_workers_scale_with_size() -> None:
    assert logscan_parallel.default_workers(1 << 20) == 1
    assert logscan_parallel.default_workers(10 << 30) >= 1
