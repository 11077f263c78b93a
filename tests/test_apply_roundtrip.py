"""apply, then undo: the cfgs change exactly as reviewed and come back byte for byte."""

from __future__ import annotations

import fcntl
import os
import subprocess
from pathlib import Path

import pytest

from tests.test_apply_support import (
    CORPUS_CFGS,
    Guest,
    cli_command,
    declare_name,
    file_mode,
    log_records,
    make_report,
    run_apply,
    sha256,
    subprocess_env,
)
from xenaudit.xlcfg import parse


@pytest.fixture
def scratch(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "root"
    root.mkdir()
    return root, tmp_path / "report"


def corpus_guests(corpus: Path) -> list[Guest]:
    guests = []
    for index, name in enumerate(CORPUS_CFGS):
        data = (corpus / name).read_bytes()
        old = parse(data, name)
        memory = (old.memory_mib or 512) + 256
        guests.append(
            Guest(
                name=f"g{index}",
                cfg=data,
                memory_mib=memory,
                maxmem_mib=memory + 128 * (index % 2),
                cfg_memory_mib=old.memory_mib,
                cfg_maxmem_mib=old.maxmem_mib,
            )
        )
    return guests


def test_apply_then_undo_restores_every_corpus_cfg_byte_for_byte(
    scratch: tuple[Path, Path], corpus: Path
) -> None:
    root, report = scratch
    guests = corpus_guests(corpus)
    make_report(report, root, guests)

    assert run_apply(report, "--root", root, "--yes") == 0
    for guest in guests:
        path = root / guest.logical.lstrip("/")
        changed = path.read_bytes()
        assert changed != guest.cfg
        cfg = parse(changed, guest.logical)
        assert (cfg.memory_mib, cfg.maxmem_mib) == (guest.memory_mib, guest.maxmem_mib)
        backups = list(path.parent.glob(f"{path.name}.xenaudit-*.bak"))
        assert len(backups) == 1 and backups[0].read_bytes() == guest.cfg

    assert run_apply(report, "--root", root, "--yes", "--undo") == 0
    for guest in guests:
        assert (root / guest.logical.lstrip("/")).read_bytes() == guest.cfg


def test_apply_leaves_everything_but_the_memory_lines_alone(
    scratch: tuple[Path, Path], corpus: Path
) -> None:
    root, report = scratch
    data = (corpus / "xlcfg_babrakov_krs23.ru.cfg").read_bytes()
    guest = Guest("krs", data, memory_mib=1536, maxmem_mib=2048, cfg_memory_mib=1024)
    make_report(report, root, [guest])

    assert run_apply(report, "--root", root, "--yes") == 0
    old, new = parse(guest.cfg, "old"), parse((root / "etc/xen/krs.cfg").read_bytes(), "new")
    assert set(new.keys()) == set(old.keys()) | {"maxmem"}
    for key in old:
        if key not in ("memory", "maxmem"):
            assert new.settings()[key] == old.settings()[key], key


@pytest.mark.skipif(os.geteuid() != 0, reason="changing a file's owner needs root")
def test_owner_mode_and_group_are_kept_through_apply_and_undo(
    scratch: tuple[Path, Path], corpus: Path
) -> None:
    root, report = scratch
    data = (corpus / "xlcfg_babrakov_zabbix.cfg").read_bytes()
    guest = Guest("zabbix", data, memory_mib=768, maxmem_mib=1024)
    make_report(report, root, [guest])
    path = root / "etc/xen/zabbix.cfg"
    os.chown(path, 1234, 2345)
    path.chmod(0o640)

    assert run_apply(report, "--root", root, "--yes") == 0
    info = os.stat(path)
    assert (info.st_uid, info.st_gid, file_mode(path)) == (1234, 2345, 0o640)
    backup = next(path.parent.glob("zabbix.cfg.xenaudit-*.bak"))
    backup_info = os.stat(backup)
    assert (backup_info.st_uid, backup_info.st_gid, file_mode(backup)) == (1234, 2345, 0o640)

    assert run_apply(report, "--root", root, "--yes", "--undo") == 0
    info = os.stat(path)
    assert (info.st_uid, info.st_gid, file_mode(path)) == (1234, 2345, 0o640)
    assert path.read_bytes() == data


def test_stale_cfg_is_skipped_and_the_exit_is_non_zero(
    scratch: tuple[Path, Path], corpus: Path
) -> None:
    root, report = scratch
    fresh = Guest("fresh", (corpus / "xlcfg_babrakov_zabbix.cfg").read_bytes(), 768, 768)
    stale = Guest("stale", (corpus / "xlcfg_babrakov_ubuntu.cfg.b").read_bytes(), 1536, 1536)
    make_report(report, root, [fresh, stale])
    edited = stale.cfg.replace(b"vcpus = 2", b"vcpus = 4")
    (root / "etc/xen/stale.cfg").write_bytes(edited)

    assert run_apply(report, "--root", root, "--yes") == 1
    assert (root / "etc/xen/stale.cfg").read_bytes() == edited
    assert not list((root / "etc/xen").glob("stale.cfg.xenaudit-*"))
    # The other domain still went ahead.
    assert parse((root / "etc/xen/fresh.cfg").read_bytes(), "f").memory_mib == 768


def test_second_apply_of_the_same_report_says_already_applied(
    scratch: tuple[Path, Path], corpus: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, report = scratch
    guest = Guest("web", (corpus / "xlcfg_babrakov_zabbix.cfg").read_bytes(), 768, 768)
    make_report(report, root, [guest])
    assert run_apply(report, "--root", root, "--yes") == 0
    applied = (root / "etc/xen/web.cfg").read_bytes()
    first = capsys.readouterr().out
    # Under --root the file written is named as it is on disk.
    assert f"applied: {(root / 'etc/xen/web.cfg').resolve()}" in first

    assert run_apply(report, "--root", root, "--yes") == 0
    again = capsys.readouterr().out
    assert "already applied" in again and "stale" not in again
    assert (root / "etc/xen/web.cfg").read_bytes() == applied
    assert len(list((root / "etc/xen").glob("web.cfg.xenaudit-*.bak"))) == 1
    # A cfg whose memory was changed again since is stale, not "already applied".
    (root / "etc/xen/web.cfg").write_bytes(applied.replace(b"memory = 768", b"memory = 640"))
    assert run_apply(report, "--root", root, "--yes") == 1
    assert "stale" in capsys.readouterr().out


def test_action_log_records_who_what_and_both_hashes(
    scratch: tuple[Path, Path], corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, report = scratch
    guest = Guest("web", (corpus / "xlcfg_babrakov_zabbix.cfg").read_bytes(), 768, 1024)
    make_report(report, root, [guest])
    monkeypatch.setenv("SUDO_USER", "alice")

    assert run_apply(report, "--root", root, "--yes") == 0
    records = [r for r in log_records(root) if r["event"] == "apply"]
    assert [r["result"] for r in records] == ["started", "applied"]
    final = records[-1]
    new_bytes = (root / "etc/xen/web.cfg").read_bytes()
    assert final["sudo_user"] == "alice"
    assert final["user"]
    assert final["file"] == "/etc/xen/web.cfg"
    assert final["old_sha256"] == sha256(guest.cfg)
    assert final["new_sha256"] == sha256(new_bytes)
    backup = root / final["backup"].lstrip("/")
    assert backup.read_bytes() == guest.cfg
    assert final["backup"].startswith("/etc/xen/web.cfg.xenaudit-")
    assert final["report_sha256"] == sha256((report / "report.json").read_bytes())
    assert file_mode(root / "var/lib/xenaudit") == 0o700


def test_state_dir_option_is_taken_under_root(scratch: tuple[Path, Path], corpus: Path) -> None:
    root, report = scratch
    guest = Guest("web", (corpus / "xlcfg_babrakov_zabbix.cfg").read_bytes(), 768, 768)
    make_report(report, root, [guest])

    assert run_apply(report, "--root", root, "--yes", "--state-dir", "/srv/xa") == 0
    assert (root / "srv/xa/apply-log.jsonl").is_file()
    # undo must look in the same place.
    assert run_apply(report, "--root", root, "--yes", "--undo") == 0
    assert (root / "etc/xen/web.cfg").read_bytes() != guest.cfg
    assert run_apply(report, "--root", root, "--yes", "--undo", "--state-dir", "/srv/xa") == 0
    assert (root / "etc/xen/web.cfg").read_bytes() == guest.cfg


def test_undo_refuses_a_file_edited_after_apply(scratch: tuple[Path, Path], corpus: Path) -> None:
    root, report = scratch
    guest = Guest("web", (corpus / "xlcfg_babrakov_zabbix.cfg").read_bytes(), 768, 768)
    make_report(report, root, [guest])
    assert run_apply(report, "--root", root, "--yes") == 0
    path = root / "etc/xen/web.cfg"
    edited = path.read_bytes() + b"# admin was here\n"
    path.write_bytes(edited)

    assert run_apply(report, "--root", root, "--yes", "--undo") == 1
    assert path.read_bytes() == edited


def test_undo_after_undo_and_with_no_apply_has_nothing_to_do(
    scratch: tuple[Path, Path], corpus: Path
) -> None:
    root, report = scratch
    guest = Guest("web", (corpus / "xlcfg_babrakov_zabbix.cfg").read_bytes(), 768, 768)
    make_report(report, root, [guest])
    assert run_apply(report, "--root", root, "--yes", "--undo") == 0
    assert run_apply(report, "--root", root, "--yes") == 0
    assert run_apply(report, "--root", root, "--yes", "--undo") == 0
    assert run_apply(report, "--root", root, "--yes", "--undo") == 0
    assert (root / "etc/xen/web.cfg").read_bytes() == guest.cfg
    undo = [r for r in log_records(root) if r["event"] == "undo"]
    assert len(undo) == 1 and undo[0]["restored_sha256"] == sha256(guest.cfg)


def test_apply_undo_apply_again_then_undo_uses_the_latest_backup(
    scratch: tuple[Path, Path], corpus: Path
) -> None:
    root, report = scratch
    guest = Guest("web", (corpus / "xlcfg_babrakov_zabbix.cfg").read_bytes(), 768, 768)
    make_report(report, root, [guest])
    for _ in range(2):
        assert run_apply(report, "--root", root, "--yes") == 0
        assert run_apply(report, "--root", root, "--yes", "--undo") == 0
        assert (root / "etc/xen/web.cfg").read_bytes() == guest.cfg


def test_domain_filter_applies_only_the_named_domains(
    scratch: tuple[Path, Path], corpus: Path
) -> None:
    root, report = scratch
    data = (corpus / "xlcfg_babrakov_zabbix.cfg").read_bytes()
    guests = [Guest(n, data, 768, 768) for n in ("a", "b", "c")]
    make_report(report, root, guests)

    assert run_apply(report, "--root", root, "--yes", "--domain", "a", "--domain", "dom0a/c") == 0
    a, b, c = (g.cfg for g in guests)
    assert (root / "etc/xen/b.cfg").read_bytes() == b
    assert (root / "etc/xen/a.cfg").read_bytes() != a
    assert (root / "etc/xen/c.cfg").read_bytes() != c
    assert run_apply(report, "--root", root, "--yes", "--domain", "nosuch") == 2


def test_dry_run_shows_the_diff_and_changes_nothing(
    scratch: tuple[Path, Path], corpus: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, report = scratch
    guest = Guest("web", (corpus / "xlcfg_babrakov_zabbix.cfg").read_bytes(), 768, 1024)
    make_report(report, root, [guest])

    assert run_apply(report, "--root", root, "--dry-run") == 0
    out = capsys.readouterr().out
    assert "-memory = 512" in out and "+memory = 768" in out and "+maxmem = 1024" in out
    assert (root / "etc/xen/web.cfg").read_bytes() == guest.cfg
    assert not list((root / "etc/xen").glob("*.bak"))
    # Nothing written at all, not even the state directory.
    assert not (root / "var").exists()


def test_a_recommendation_that_does_not_fit_the_host_is_not_applied(
    scratch: tuple[Path, Path], corpus: Path
) -> None:
    root, report = scratch
    guest = Guest("big", (corpus / "xlcfg_babrakov_zabbix.cfg").read_bytes(), 4096, 4096)
    guest.fits = False
    make_report(report, root, [guest])
    assert run_apply(report, "--root", root, "--yes") == 1
    assert (root / "etc/xen/big.cfg").read_bytes() == guest.cfg


def test_a_diff_whose_result_is_not_the_recommendation_is_refused(
    scratch: tuple[Path, Path], corpus: Path
) -> None:
    root, report = scratch
    data = declare_name((corpus / "xlcfg_babrakov_zabbix.cfg").read_bytes(), "web")
    from tests.test_apply_support import memory_diff

    guest = Guest("web", data, 768, 768, diff=memory_diff("/etc/xen/web.cfg", data, 700, 700))
    make_report(report, root, [guest])
    assert run_apply(report, "--root", root, "--yes") == 1
    assert (root / "etc/xen/web.cfg").read_bytes() == data


def test_without_a_terminal_or_yes_apply_refuses(scratch: tuple[Path, Path], corpus: Path) -> None:
    root, report = scratch
    guest = Guest("web", (corpus / "xlcfg_babrakov_zabbix.cfg").read_bytes(), 768, 768)
    make_report(report, root, [guest])
    done = subprocess.run(
        [*cli_command(), str(report), "--root", str(root)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=subprocess_env(),
        timeout=120,
    )
    assert done.returncode == 2
    assert "--yes" in done.stderr and "terminal" in done.stderr
    assert (root / "etc/xen/web.cfg").read_bytes() == guest.cfg
    assert not (root / "var/lib/xenaudit/apply-log.jsonl").exists()


def test_unreadable_report_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "report.json").write_text('{"schema_version": 2, "domains": []}')
    assert run_apply(tmp_path, "--root", tmp_path, "--yes") == 2
    (tmp_path / "report.json").write_text("{not json")
    assert run_apply(tmp_path, "--root", tmp_path, "--yes") == 2
    assert run_apply(tmp_path / "missing", "--root", tmp_path, "--yes") == 2


def test_report_without_patches_is_nothing_to_do(tmp_path: Path) -> None:
    (tmp_path / "report.json").write_text(
        '{"schema_version": 1, "hosts": [], "domains": '
        '[{"name": "ok", "host": "h", "patch": null, "recommendation": null}]}'
    )
    assert run_apply(tmp_path, "--root", tmp_path, "--yes") == 0


def test_a_second_apply_while_one_runs_is_refused(scratch: tuple[Path, Path], corpus: Path) -> None:
    root, report = scratch
    guest = Guest("web", (corpus / "xlcfg_babrakov_zabbix.cfg").read_bytes(), 768, 768)
    make_report(report, root, [guest])
    state = root / "var/lib/xenaudit"
    state.mkdir(parents=True)
    with (state / "apply.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        assert run_apply(report, "--root", root, "--yes") == 2
        assert (root / "etc/xen/web.cfg").read_bytes() == guest.cfg
    assert run_apply(report, "--root", root, "--yes") == 0


def test_a_torn_last_log_line_does_not_stop_undo(scratch: tuple[Path, Path], corpus: Path) -> None:
    root, report = scratch
    guest = Guest("web", (corpus / "xlcfg_babrakov_zabbix.cfg").read_bytes(), 768, 768)
    make_report(report, root, [guest])
    assert run_apply(report, "--root", root, "--yes") == 0
    with (root / "var/lib/xenaudit/apply-log.jsonl").open("a") as log:
        log.write('{"event": "apply", "id": "x", "res')

    # The torn line is reported (exit 1) but the real apply is still undone,
    # and the undo's own line is not glued onto the torn one.
    assert run_apply(report, "--root", root, "--yes", "--undo") == 1
    assert (root / "etc/xen/web.cfg").read_bytes() == guest.cfg
    assert [r["event"] for r in log_records(root, skip_torn=True)][-1] == "undo"
    assert run_apply(report, "--root", root, "--yes") == 0
    assert run_apply(report, "--root", root, "--yes", "--undo") == 1
    assert (root / "etc/xen/web.cfg").read_bytes() == guest.cfg
