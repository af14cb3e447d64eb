"""Backup and restore checks on real SQLite files: what is refused, and why."""

from __future__ import annotations

import os
import sqlite3
import stat

import pytest
from click.testing import CliRunner

from acd.cli import cli
from acd.errors import AcdError
from acd.runtime.store_sqlite import SqliteStore as CallStore
from acd.runtime.store_sqlite import backup, check, controller_lock, restore


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "acd.db"
    CallStore(path).close()
    return path


def test_a_backup_is_checked_and_never_overwrites_without_force(db, tmp_path):
    dest = tmp_path / "b.db"
    assert backup(db, dest).legs == 0 and check(dest).legs == 0
    with pytest.raises(AcdError, match="exists: give --force"):
        backup(db, dest)
    backup(db, dest, overwrite=True)
    with pytest.raises(AcdError, match="is the database itself"):
        backup(db, db, overwrite=True)
    assert not (tmp_path / "b.db.part").exists()


def test_restore_refuses_a_file_that_is_not_a_call_record_backup(db, tmp_path):
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE t (x)")
    text = tmp_path / "notes.txt"
    text.write_text("hello" * 1000)
    for bad in (other, text):
        with pytest.raises(AcdError):
            restore(bad, db)
    assert check(db).legs == 0  # untouched


def test_a_damaged_backup_is_refused(db, tmp_path):
    dest = tmp_path / "b.db"
    backup(db, dest)
    data = bytearray(dest.read_bytes())
    data[4096 : 4096 + 12] = b"\x0d\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"  # page 2 header
    dest.write_bytes(bytes(data))
    with pytest.raises(AcdError):
        restore(dest, db)


def test_restore_is_refused_while_a_controller_holds_the_database(db, tmp_path):
    dest = tmp_path / "b.db"
    backup(db, dest)
    with controller_lock(db):
        result = CliRunner().invoke(cli, ["records", "restore", "--db", str(db), str(dest)])
        assert result.exit_code == 1 and "in use by a running controller" in result.output
    result = CliRunner().invoke(cli, ["records", "restore", "--db", str(db), str(dest)])
    assert result.exit_code == 0 and "no call records, checked" in result.output


def test_a_backup_is_created_for_the_owner_only_whatever_the_umask(db, tmp_path):
    """docs/privacy.md: backups hold personal data and are created 0600, like the
    database (the copy was made with the umask's mode, 0644 under umask 022)."""
    old = os.umask(0o022)
    try:
        backup(db, tmp_path / "b.db")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "b.db").stat().st_mode) == 0o600
