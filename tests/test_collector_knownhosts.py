"""known_hosts semantics, checked against OpenSSH's own ssh-keygen where it can judge."""

from __future__ import annotations

import base64
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from xenaudit.collector.knownhosts import KnownHosts, fingerprint, key_type_of, known_hosts_name

pytestmark = pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="needs ssh-keygen")


def keygen(tmp_path: Path, name: str, kind: str = "ed25519") -> tuple[str, bytes, str]:
    """A fresh key pair: ("type base64", blob, fingerprint as ssh-keygen -l prints it)."""
    path = tmp_path / name
    subprocess.run(
        ["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", name, "-f", str(path)], check=True
    )
    kind_name, b64 = path.with_suffix(".pub").read_text().split()[:2]
    listed = subprocess.run(
        ["ssh-keygen", "-l", "-E", "sha256", "-f", str(path.with_suffix(".pub"))],
        capture_output=True,
        text=True,
        check=True,
    )
    return f"{kind_name} {b64}", base64.b64decode(b64), listed.stdout.split()[1]


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, bytes, str]]:
    tmp = tmp_path_factory.mktemp("keys")
    return {
        "a": keygen(tmp, "a"),
        "b": keygen(tmp, "b"),
        "ecdsa": keygen(tmp, "ecdsa", "ecdsa"),
    }


def hosts(tmp_path: Path, text: str, own: str | None = None) -> KnownHosts:
    path = tmp_path / "known_hosts"
    path.write_text(text)
    return KnownHosts([path], own)


def test_fingerprint_matches_ssh_keygen(keys) -> None:
    for line, blob, listed in keys.values():
        assert fingerprint(blob) == listed
        assert key_type_of(blob) == line.split()[0]


def test_port_22_uses_the_bare_name_and_others_the_bracket_form() -> None:
    assert known_hosts_name("Web1.Example.ORG", 22) == "web1.example.org"
    assert known_hosts_name("10.0.0.5", 2222) == "[10.0.0.5]:2222"


def test_plain_and_bracketed_entries(tmp_path: Path, keys) -> None:
    (a, blob_a, fp_a), (b, blob_b, _) = keys["a"], keys["b"]
    known = hosts(tmp_path, f"web1,10.0.0.5 {a}\n[10.0.0.5]:2222 {b}\n")
    assert known.check("web1", blob_a).decision == "known"
    assert known.check("WEB1", blob_a).decision == "known"
    assert known.check("10.0.0.5", blob_a).decision == "known"
    assert known.check("[10.0.0.5]:2222", blob_b).decision == "known"
    # The bare name does not vouch for other ports, nor the port entry for 22.
    assert known.check("[10.0.0.5]:2222", blob_a).decision == "changed"
    assert known.check("[web1]:2222", blob_a).decision == "new"
    verdict = known.check("unknown-host", blob_a)
    assert verdict.decision == "new" and verdict.fingerprint == fp_a


def test_hashed_entries_written_by_ssh_keygen(tmp_path: Path, keys) -> None:
    (a, blob_a, _), (b, blob_b, _) = keys["a"], keys["b"]
    path = tmp_path / "known_hosts"
    path.write_text(f"db1 {a}\n[db1]:2200 {b}\n")
    subprocess.run(["ssh-keygen", "-H", "-f", str(path)], check=True, capture_output=True)
    text = path.read_text()
    assert "db1" not in text and text.count("|1|") == 2

    known = KnownHosts([path], None)
    assert known.check("db1", blob_a).decision == "known"
    assert known.check("[db1]:2200", blob_b).decision == "known"
    assert known.check("db1", blob_b).decision == "changed"
    assert known.check("db2", blob_a).decision == "new"


def test_wildcards_and_negation(tmp_path: Path, keys) -> None:
    a, blob_a, _ = keys["a"]
    known = hosts(tmp_path, f"*.guests.example,!evil.guests.example,db? {a}\n")
    assert known.check("web.guests.example", blob_a).decision == "known"
    assert known.check("db7", blob_a).decision == "known"
    assert known.check("db70", blob_a).decision == "new"
    assert known.check("evil.guests.example", blob_a).decision == "new"
    assert known.check("guests.example", blob_a).decision == "new"


def test_a_known_key_of_another_type_counts_as_changed(tmp_path: Path, keys) -> None:
    ecdsa, _, fp_ecdsa = keys["ecdsa"]
    _, blob_a, _ = keys["a"]
    known = hosts(tmp_path, f"web1 {ecdsa}\n")
    verdict = known.check("web1", blob_a)
    assert verdict.decision == "changed"
    assert verdict.known == (fp_ecdsa,)
    assert known.known_types("web1") == ["ecdsa-sha2-nistp256"]
    assert "CHANGED" in verdict.explain("web1") and fp_ecdsa in verdict.explain("web1")


def test_revoked_keys_are_refused_for_every_host(tmp_path: Path, keys) -> None:
    a, blob_a, _ = keys["a"]
    known = hosts(tmp_path, f"web1 {a}\n@revoked old-host {a}\n")
    verdict = known.check("web1", blob_a)
    assert verdict.decision == "revoked"
    assert verdict.where.endswith(":2")


def test_cert_authority_and_junk_lines_are_ignored(tmp_path: Path, keys) -> None:
    a, blob_a, _ = keys["a"]
    _, blob_b, _ = keys["b"]
    text = (
        "# comment\n\n"
        f"@cert-authority * {a}\n"
        "web1 ssh-ed25519 !!!notbase64\n"
        "web1 ssh-rsa " + base64.b64encode(blob_b).decode() + "\n"  # type disagrees with blob
        "only-two fields\n"
        f"@unknown web1 {a}\n"
    )
    known = hosts(tmp_path, text)
    assert known.check("web1", blob_a).decision == "new"
    assert known.check("anything", blob_a).decision == "new"


def test_missing_files_are_fine_and_unreadable_ones_reported(tmp_path: Path, keys) -> None:
    directory = tmp_path / "a-directory"
    directory.mkdir()
    known = KnownHosts([tmp_path / "absent", directory], None)
    assert known.check("web1", keys["a"][1]).decision == "new"
    assert len(known.problems) == 1 and str(directory) in known.problems[0]


def test_accept_new_records_a_line_openssh_can_find(tmp_path: Path, keys) -> None:
    a, blob_a, _ = keys["a"]
    _, blob_b, _ = keys["b"]
    own = tmp_path / "state" / "xenaudit" / "known_hosts"
    known = KnownHosts([tmp_path / "absent"], str(own))

    assert known.check_or_record("[10.1.1.1]:2222", blob_a, accept_new=False).decision == "new"
    assert not own.exists()
    verdict = known.check_or_record("[10.1.1.1]:2222", blob_a, accept_new=True)
    assert verdict.decision == "known" and "recorded now" in verdict.where
    assert own.stat().st_mode & 0o777 == 0o600
    assert own.parent.stat().st_mode & 0o777 == 0o700
    assert (tmp_path / "state").stat().st_mode & 0o777 == 0o700
    assert own.read_text() == f"[10.1.1.1]:2222 {a}\n"
    found = subprocess.run(
        ["ssh-keygen", "-F", "[10.1.1.1]:2222", "-f", str(own)], capture_output=True, text=True
    )
    assert found.returncode == 0 and a.split()[1] in found.stdout

    # Recorded once; a different key later is "changed" and is not written.
    assert known.check_or_record("[10.1.1.1]:2222", blob_a, accept_new=True).decision == "known"
    assert known.check_or_record("[10.1.1.1]:2222", blob_b, accept_new=True).decision == "changed"
    assert own.read_text().count("\n") == 1
    # A new run reads the recorded key back.
    assert KnownHosts([], str(own)).check("[10.1.1.1]:2222", blob_a).decision == "known"


def test_a_key_recorded_by_another_process_meanwhile_wins(tmp_path: Path, keys) -> None:
    a = keys["a"][0]
    _, blob_b, _ = keys["b"]
    own = tmp_path / "known_hosts"
    known = KnownHosts([], str(own))
    own.write_text(f"late-host {a}\n")  # written after we loaded the (then empty) file
    verdict = known.check_or_record("late-host", blob_b, accept_new=True)
    assert verdict.decision == "changed"
    assert own.read_text() == f"late-host {a}\n"


def test_concurrent_first_sightings_record_exactly_one_key(tmp_path: Path, keys) -> None:
    own = tmp_path / "known_hosts"
    known = KnownHosts([], str(own))
    blobs = [keys["a"][1], keys["b"][1]] * 8
    verdicts = []
    barrier = threading.Barrier(len(blobs))

    def sight(blob: bytes) -> None:
        barrier.wait()
        verdicts.append(known.check_or_record("racy", blob, accept_new=True))

    threads = [threading.Thread(target=sight, args=(b,)) for b in blobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(own.read_text().splitlines()) == 1
    decisions = sorted(v.decision for v in verdicts)
    assert decisions == ["changed"] * 8 + ["known"] * 8
