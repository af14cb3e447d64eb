"""Errors of the `acd` command line: one plain line on stderr; exit 2 for usage errors,
1 for everything else a user can cause or fix (no "internal error", no Python repr)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from acd.cli import cli
from acd.runtime.store_sqlite import SqliteStore as CallStore

from ..runtime.test_store import answered


def run(*args: str):
    result = CliRunner().invoke(cli, list(args), prog_name="acd")
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "day.db"
    with CallStore(path) as store:
        store.record_call(answered(1))
    return path


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ["staffing", "--calls", "x"],
            "Error: Invalid value for '--calls': 'x' is not a valid float (see 'acd staffing -h').",
        ),
        (["--bogus"], "Error: No such option '--bogus' (see 'acd -h')."),
        (["no-such-command"], "Error: No such command 'no-such-command' (see 'acd -h')."),
        (["config", "check"], "Error: Missing argument 'FILE' (see 'acd config check -h')."),
    ],
)
def test_usage_errors_are_one_line_exit_2(args, line):
    assert run(*args) == (2, "", line + "\n")


def test_a_csv_into_a_missing_directory_is_one_line(db, tmp_path):
    target = tmp_path / "nodir" / "day.csv"
    code, _, err = run("report", "--db", str(db), "--csv", str(target))
    assert (code, err) == (1, f"Error: {target}: No such file or directory\n")


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            "staffing --calls inf --aht 180 --sl 0.8",
            "calls must be a finite number, got inf",
        ),
        (
            "staffing --calls 100 --aht nan --sl 0.8",
            "AHT must be a finite number, got nan",
        ),
        (
            "staffing --calls 100 --interval 1800 --aht 180 --min-answer-rate 0.99",
            "--min-answer-rate needs --patience (Erlang A): without it (Erlang C) no caller"
            " hangs up, so every call is answered and the target is always met",
        ),
        (
            "staffing --calls 100 --aht 180 --max-abandon 0.05",
            "--max-abandon needs --patience (Erlang A): without it (Erlang C) no caller"
            " hangs up, so every call is answered and the target is always met",
        ),
        (
            "simulate --agents 3 --aht 200 --patience 100 --calls-per-day -5",
            "calls per day must be zero or more, got -5",
        ),
        (
            "simulate --agents 3 --aht 200 --patience 100 --calls-per-day inf",
            "calls per day must be a finite number, got inf",
        ),
        (
            "simulate --agents 3 --aht 200 --patience 100 --calls-per-day 100"
            " --distribution lognormal --sd -5",
            "standard deviation of handling times must be positive, got -5",
        ),
    ],
)
def test_bad_numbers_are_one_line_exit_1(args, line):
    assert run(*args.split()) == (1, "", f"Error: {line}\n")


def test_a_report_of_a_queue_with_no_call_is_refused(db):
    code, _, err = run("report", "--db", str(db), "--queue", "nope")
    assert (code, err) == (1, f"Error: {db}: no call in queue 'nope' (queues: front-desk)\n")
    code, out, _ = run("report", "--db", str(db), "--queue", "front-desk", "--json")
    assert code == 0 and json.loads(out)["total"]["answered"] == 1


def test_a_csv_on_a_full_disk_leaves_no_half_file(db, tmp_path):
    """A file-size limit makes the write fail as a full disk would: one line, no file."""
    import sqlite3
    import subprocess
    import sys
    import textwrap

    with sqlite3.connect(db) as conn:  # no -shm file to write when reading it
        conn.execute("PRAGMA journal_mode = DELETE")
    target = tmp_path / "day.csv"
    script = textwrap.dedent(
        f"""
        import resource, signal, sys
        from acd.cli import main
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (200, 200))
        sys.argv = ["acd", "report", "--db", {str(db)!r}, "--csv", {str(target)!r}]
        main()
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert (out.returncode, out.stderr) == (1, f"Error: {target}: File too large\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["day.db"]
