"""Legs routed by the switch's fallback (cti-protocol §9.7): stored with their flag,
counted by `acd report` (text and JSON), in an SQLite file and in PostgreSQL."""

from __future__ import annotations

import dataclasses
import json
import sqlite3

from click.testing import CliRunner

from acd.cli import cli
from acd.core.records import Outcome
from acd.runtime.store import open_store
from acd.runtime.store_sqlite import SqliteStore as CallStore
from acd.runtime.store_sqlite import migrate

from ..runtime.test_store import T0, answered


def fallback_day(db) -> None:
    with open_store(str(db)) as store:
        store.record_call(answered(1))
        store.record_call(dataclasses.replace(answered(2, at=T0 + 60), fallback=True))
        gone = dataclasses.replace(
            answered(3, at=T0 + 90),
            fallback=True,
            outcome=Outcome.ABANDONED,
            answered_at=None,
            released_at=None,
            wrapup_end=None,
            agent_id=None,
            rings=(),
            ended_at=T0 + 150,
        )
        store.record_call(gone)


def test_fallback_legs_are_stored_with_their_flag(store_url):
    fallback_day(store_url)
    with open_store(store_url) as store:
        assert [(r.call_id, r.fallback) for r in store.calls()] == [
            (1, False),
            (2, True),
            (3, True),
        ]


def test_a_database_of_the_previous_schema_gets_the_column_unset(tmp_path):
    db = tmp_path / "old.db"
    conn = sqlite3.connect(db)
    version = migrate(conn, upto=5)
    conn.close()
    assert version == 5
    with CallStore(db) as store:
        store.record_call(answered(1))
        assert [r.fallback for r in store.calls()] == [False]


def test_acd_report_shows_how_many_calls_the_fallback_handled(store_url, tmp_path):
    fallback_day(store_url)
    result = CliRunner().invoke(cli, ["report", "--db", store_url, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["fallback"] == {"calls": 2, "answered": 1, "abandoned": 1}
    text = CliRunner().invoke(cli, ["report", "--db", store_url]).output
    assert "Switch fallback (controller gone): 2 calls, 1 answered, 1 abandoned." in text
    plain = tmp_path / "plain.db"
    with CallStore(plain) as store:
        store.record_call(answered(1))
    text = CliRunner().invoke(cli, ["report", "--db", str(plain)]).output
    assert "fallback" not in text
