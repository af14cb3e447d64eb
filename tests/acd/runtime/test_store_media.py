"""The call-record store on awkward media: a read-only mount, a full disk.

Each case must end in one plain line naming the file and the problem (exit 1 from the
command line), with nothing half-made left behind.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
from click.testing import CliRunner

from acd.cli import cli
from acd.runtime.store_sqlite import SqliteStore as CallStore
from acd.runtime.store_sqlite import open_readonly

from .test_store import answered


@pytest.fixture
def read_only_copy(tmp_path):
    """A directory holding a valid call-record database, mounted read-only (as root; a
    directory without write permission otherwise)."""
    src, ro = tmp_path / "src", tmp_path / "ro"
    src.mkdir()
    ro.mkdir()
    with CallStore(src / "day.db") as store:
        store.record_call(answered(1))
    if os.geteuid() == 0:
        mounted = subprocess.run(["mount", "--bind", str(src), str(ro)], capture_output=True)
        if mounted.returncode:
            pytest.skip(f"cannot bind-mount here: {mounted.stderr.decode().strip()}")
        try:
            subprocess.run(["mount", "-o", "remount,bind,ro", str(ro)], check=True)
            yield ro
        finally:
            subprocess.run(["umount", str(ro)], check=True)
    else:
        src.chmod(0o555)
        try:
            yield src
        finally:
            src.chmod(0o755)


def test_a_database_on_read_only_media_is_read(read_only_copy):
    db = read_only_copy / "day.db"
    with open_readonly(db) as store:
        assert [r.call_id for r in store.calls()] == [1]
    result = CliRunner().invoke(cli, ["report", "--db", str(db), "--json"])
    assert result.exit_code == 0, result.output
    assert '"answered": 1' in result.output


def test_creating_a_database_on_a_full_disk_is_one_line_and_leaves_nothing(tmp_path):
    """A file-size limit makes SQLite's writes fail as on a full disk (no root needed)."""
    db = tmp_path / "day.db"
    script = textwrap.dedent(
        f"""
        import resource, signal
        from acd.errors import AcdError
        from acd.runtime.store_sqlite import SqliteStore as CallStore
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
        try:
            CallStore({str(db)!r})
        except AcdError as exc:
            print(exc)
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert out.returncode == 0 and not out.stderr, out.stderr
    (line,) = out.stdout.splitlines()  # SQLite says "disk I/O error" when the limit bites
    assert line == f"{db}: cannot write the call-record database: disk I/O error"
    assert list(tmp_path.iterdir()) == []


def test_a_file_that_is_not_sqlite_is_named_as_such(tmp_path):
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"\x00garbage, not SQLite\xff" * 200)
    result = CliRunner().invoke(cli, ["report", "--db", str(garbage)])
    assert result.exit_code == 1
    assert result.stderr == f"Error: {garbage}: not a call-record database (not an SQLite file)\n"
    assert garbage.read_bytes() == b"\x00garbage, not SQLite\xff" * 200


def test_charts_into_a_read_only_directory_are_one_line(read_only_copy):
    pytest.importorskip("matplotlib")
    charts = read_only_copy / "charts"
    result = CliRunner().invoke(
        cli, ["report", "--db", str(read_only_copy / "day.db"), "--plot", str(charts)]
    )
    assert result.exit_code == 1
    reason = "Read-only file system" if os.geteuid() == 0 else "Permission denied"
    assert result.stderr == f"Error: {charts}: {reason}\n"
