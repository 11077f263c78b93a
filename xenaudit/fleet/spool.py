"""Action rows kept on disk while the merge reads hundreds of reports.

The fleet lists its actions most severe first across every Dom0. Holding
every row of a large fleet in memory would make memory grow with the fleet,
so rows go to one temporary file per severity and kind as each report is
read (a bucket sort: within a bucket they stay in input order) and are
streamed back when the outputs are written. Rows of reports that end up left out (an
older run of the same Dom0) are dropped on the way back.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
from collections.abc import Iterator, Mapping
from typing import IO

from xenaudit.analysis.interface import SEVERITY_ORDER
from xenaudit.fleet.actions import KINDS
from xenaudit.fleet.interface import ActionRows, FleetAction

_FIELDS = [f.name for f in dataclasses.fields(FleetAction) if f.name != "dom0"]


class SpooledActions(ActionRows):
    def __init__(self) -> None:
        # One file per (severity, kind), made when its first row comes; closed by close()
        # or with the object, since the rows outlive any one block.
        self._files: dict[tuple[str, str], IO[bytes]] = {}
        self._counts: dict[int, int] = {}
        self._folders: Mapping[int, str] = {}

    def add(self, source_index: int, row: FleetAction) -> None:
        values = [getattr(row, name) for name in _FIELDS]
        line = json.dumps([source_index, *values], ensure_ascii=True) + "\n"
        key = (row.severity, row.kind)
        if key not in self._files:
            self._files[key] = tempfile.TemporaryFile(prefix="xenaudit-merge-")  # noqa: SIM115
        self._files[key].write(line.encode("ascii"))
        self._counts[source_index] = self._counts.get(source_index, 0) + 1

    def keep(self, folders: Mapping[int, str]) -> None:
        """Only rows of these inputs are read back, each under its folder in the fleet."""
        self._folders = dict(folders)
        for handle in self._files.values():
            handle.flush()

    def count(self, source_index: int) -> int:
        return self._counts.get(source_index, 0)

    def __len__(self) -> int:
        return sum(n for index, n in self._counts.items() if index in self._folders)

    def _order(self) -> list[tuple[str, str]]:
        """Most severe first; within a severity, kinds in report.html's order."""
        rank = {kind: i for i, kind in enumerate(KINDS)}
        return sorted(
            self._files,
            key=lambda k: (-SEVERITY_ORDER.index(k[0]), rank.get(k[1], len(rank)), k[1]),
        )

    def __iter__(self) -> Iterator[FleetAction]:
        for key in self._order():
            handle = self._files[key]
            handle.seek(0)
            for line in handle:
                index, *values = json.loads(line)
                folder = self._folders.get(index)
                if folder is not None:
                    yield FleetAction(dom0=folder, **dict(zip(_FIELDS, values, strict=True)))

    def close(self) -> None:
        for handle in self._files.values():
            handle.close()
