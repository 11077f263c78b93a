"""Report and snapshot JSON is read strictly: what a forger could use is refused."""

from __future__ import annotations

import pytest

from xenaudit import strictjson
from xenaudit.snapshots import SnapshotFileError, load_json


def test_a_repeated_key_is_refused_not_last_wins() -> None:
    with pytest.raises(ValueError, match="duplicate key 'memory_mib'"):
        strictjson.loads('{"memory_mib": 512, "memory_mib": 65536}')


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_non_numbers_are_refused(constant: str) -> None:
    with pytest.raises(ValueError, match="not a JSON number"):
        strictjson.loads(f'{{"free_kib": {constant}}}')


def test_plain_json_reads_as_json() -> None:
    assert strictjson.loads('{"a": [1, 2.5, null, "x"], "b": {"a": 1}}') == {
        "a": [1, 2.5, None, "x"],
        "b": {"a": 1},
    }


def test_a_snapshot_with_a_repeated_key_is_a_snapshot_error() -> None:
    with pytest.raises(SnapshotFileError, match="duplicate key"):
        load_json(b'{"name": "web1", "name": "web2"}')
