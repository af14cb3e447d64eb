"""`acd records backup` of a database a running `acd run` writes, `restore` refused while
it runs (and a second controller on the same database refused), accepted once stopped."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.timeout(90)


def legs(db) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            return conn.execute("SELECT count(*) FROM calls").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def acd(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "acd", *args], capture_output=True, text=True, timeout=30
    )


def test_backup_while_running_restore_refused_until_stopped(kit, sim_thread, tmp_path):
    sim = sim_thread(kit.hour_scenario(volume=60, speed=600))
    db, copy = tmp_path / "acd.db", tmp_path / "copy.db"
    with open(tmp_path / "run.log", "wb") as log:
        proc = subprocess.Popen(
            sim.run_command(kit.CONFIG, db), stdout=subprocess.DEVNULL, stderr=log
        )
        try:
            end = time.monotonic() + 40
            while legs(db) < 5:
                assert time.monotonic() < end and proc.poll() is None, "no records stored"
                time.sleep(0.05)
            done = acd("records", "backup", "--db", str(db), str(copy))
            assert done.returncode == 0, done.stderr
            assert "call legs from" in done.stdout and "checked" in done.stdout
            saved = legs(copy)
            assert saved >= 5
            with sqlite3.connect(copy) as conn:
                assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)

            refused = acd("records", "restore", "--db", str(db), str(copy))
            assert refused.returncode == 1
            assert refused.stderr.strip().endswith(
                "in use by a running controller: stop it first (systemctl stop acd)"
            )
            second = subprocess.run(
                sim.run_command(kit.CONFIG, db), capture_output=True, text=True, timeout=30
            )
            assert second.returncode == 1 and "in use by a running controller" in second.stderr
            while legs(db) <= saved:  # the controller keeps writing
                assert time.monotonic() < end, "no record after the backup"
                time.sleep(0.05)
        finally:
            assert kit.stop_process(proc) == 0
    before = legs(db)
    done = acd("records", "restore", "--db", str(db), str(copy))
    assert done.returncode == 0, done.stderr
    assert legs(db) == saved and legs(tmp_path / "acd.db.before-restore") == before > saved
