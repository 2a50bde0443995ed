"""Files holding secrets or personal data are 0600, or 0640 when a group reads them,
whatever the umask; an existing file open to every local account is closed to them with a
warning, and one whose group was given access keeps it."""

import logging
import os
import sqlite3
import stat
from pathlib import Path

import pytest

from iotruntime.private_files import (
    create_private_file,
    make_private_dirs,
    withdraw_world_access,
    write_private_file,
)
from iotruntime.sqlite_files import open_sqlite


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(params=[0o022, 0o000, 0o077], ids=["umask 022", "umask 000", "umask 077"])
def umask(request):
    """Files are made under this umask, the test's own restored after."""
    before = os.umask(request.param)
    yield request.param
    os.umask(before)


@pytest.mark.parametrize(("group_read", "expected"), [(False, 0o600), (True, 0o640)])
def test_a_new_file_is_0600_or_0640_whatever_the_umask(tmp_path, umask, group_read, expected):
    path = tmp_path / "police.sqlite"
    create_private_file(path, group_read=group_read)
    assert (mode(path), path.read_bytes()) == (expected, b"")


@pytest.mark.parametrize(("group_read", "expected"), [(False, 0o700), (True, 0o750)])
def test_new_directories_are_0700_or_0750_whatever_the_umask(tmp_path, umask, group_read, expected):
    deepest = tmp_path / "var" / "lib" / "edge-agent"
    make_private_dirs(deepest, group_read=group_read)
    made = [tmp_path / "var", tmp_path / "var" / "lib", deepest]
    assert [mode(d) for d in made] == [expected] * 3


def test_an_existing_directory_keeps_its_mode(tmp_path):
    tmp_path.chmod(0o755)
    make_private_dirs(tmp_path)
    assert mode(tmp_path) == 0o755


@pytest.mark.parametrize(("group_read", "expected"), [(False, 0o600), (True, 0o640)])
def test_a_file_open_to_every_account_is_brought_down_to_its_own_mode_with_a_warning(
    tmp_path, caplog, group_read, expected
):
    path = tmp_path / "users.sqlite"
    path.write_bytes(b"token hashes")
    path.chmod(0o664)  # a umask of 002 did that, not a person
    with caplog.at_level(logging.WARNING):
        create_private_file(path, group_read=group_read)
    assert (mode(path), path.read_bytes()) == (expected, b"token hashes")
    assert f"{path} was open to every local account (mode 0664); now {expected:04o}" in (
        caplog.text
    )


def test_a_file_already_closed_to_others_is_left_as_its_operator_set_it(tmp_path, caplog):
    path = tmp_path / "police.sqlite"
    path.write_bytes(b"")
    path.chmod(0o640)  # a backup job's group reads it
    with caplog.at_level(logging.WARNING):
        create_private_file(path)
    assert (mode(path), caplog.text) == (0o640, "")


def test_a_file_this_account_cannot_change_is_named_with_the_command_that_closes_it(
    tmp_path, caplog, monkeypatch
):
    path = tmp_path / "outbox.sqlite"
    path.write_bytes(b"")
    path.chmod(0o644)

    def not_the_owner(self: Path, mode: int) -> None:
        raise PermissionError(1, "Operation not permitted", str(self))

    monkeypatch.setattr(Path, "chmod", not_the_owner)
    with caplog.at_level(logging.WARNING):
        withdraw_world_access(path)
    assert f"only its owner can change that: chmod 0600 {path}" in caplog.text


@pytest.mark.parametrize(("group_read", "expected"), [(False, 0o600), (True, 0o640)])
def test_a_replaced_file_is_whole_and_closed_to_others_whatever_the_umask(
    tmp_path, umask, group_read, expected
):
    path = tmp_path / "status.json"
    path.write_text("old")
    path.chmod(0o644)  # as an older version left it
    stale = tmp_path / ".status.json.part"
    stale.write_text("half of a crashed write")
    stale.chmod(0o666)
    write_private_file(path, b'{"new": true}', group_read=group_read)
    assert (path.read_bytes(), mode(path)) == (b'{"new": true}', expected)
    assert not stale.exists()


def test_a_link_planted_in_place_of_the_part_file_is_not_written_through(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text("not yours")
    (tmp_path / ".status.json.part").symlink_to(elsewhere)
    with pytest.raises(OSError, match="Too many levels of symbolic links"):
        write_private_file(tmp_path / "status.json", b"{}")
    assert elsewhere.read_text() == "not yours"


@pytest.mark.parametrize(("group_read", "expected"), [(False, 0o600), (True, 0o640)])
def test_sqlite_gives_its_wal_and_shm_the_databases_mode_whatever_the_umask(
    tmp_path, umask, group_read, expected
):
    path = tmp_path / "state" / "outbox.sqlite"
    db = open_sqlite(path, group_read=group_read)
    db.execute("CREATE TABLE t (x)")
    files = [path, path.with_name("outbox.sqlite-wal"), path.with_name("outbox.sqlite-shm")]
    assert [mode(f) for f in files] == [expected] * 3
    assert mode(path.parent) == expected | 0o100 | (0o010 if group_read else 0)
    db.close()


def test_a_world_readable_database_and_its_wal_and_shm_from_an_older_version_are_closed(
    tmp_path,
):
    path = tmp_path / "spool.sqlite"
    older = sqlite3.connect(path, isolation_level=None)
    older.execute("PRAGMA journal_mode=WAL")
    older.execute("CREATE TABLE t (x)")
    files = [path, path.with_name("spool.sqlite-wal"), path.with_name("spool.sqlite-shm")]
    for f in files:
        f.chmod(0o644)
    db = open_sqlite(path)
    assert [mode(f) for f in files] == [0o600, 0o600, 0o600]
    assert db.execute("SELECT count(*) FROM t").fetchone() == (0,)
    db.close()
    older.close()
