"""The record store chosen by ``[store] url``: file paths and ``sqlite:///`` URLs, a
registry of backends by scheme, and nothing SQLite-specific outside its module."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest
from click.testing import CliRunner

import acd
import acd.runtime.store
from acd.cli import cli
from acd.config import load_config
from acd.core.records import CallRecord, Outcome
from acd.errors import AcdError, ConfigError
from acd.runtime.store import RecordStore, StoreOptions, open_readonly, open_store, register
from acd.runtime.store_sqlite import SqliteStore

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "town-hall.toml"


def answered(call_id: int, at: float) -> CallRecord:
    return CallRecord(call_id, 1, "front-desk", "0612345678", "3000", 3, at, at, at + 60.0,
                      Outcome.ANSWERED, at + 5.0, at + 50.0, at + 60.0, "1001", "201")  # fmt: skip


def site_with(tmp_path: Path, store_lines: str) -> Path:
    """The town hall's configuration with its ``[store]`` section replaced."""
    text = EXAMPLE.read_text(encoding="utf-8")
    head, rest = text.split("[store]\n", 1)
    tail = rest[rest.index("\n[") :]
    path = tmp_path / "site.toml"
    path.write_text(f"{head}[store]\n{store_lines}\n{tail}", encoding="utf-8")
    return path


def test_a_sqlite_file_url_names_the_file(tmp_path):
    db = tmp_path / "records" / "acd.db"
    db.parent.mkdir()
    config = load_config(site_with(tmp_path, f'url = "sqlite://{db}"'))
    assert config.store.url == f"sqlite://{db}"
    with open_store(config.store.url) as store:
        store.record_call(answered(1, 1000.0))
    assert db.is_file()
    with open_readonly(str(db)) as store:  # the plain path is the same store
        assert [r.call_id for r in store.calls()] == [1]


def test_path_is_the_older_name_of_url(tmp_path):
    config = load_config(site_with(tmp_path, 'path = "old.db"'))
    assert config.store.url == "old.db"
    with pytest.raises(ConfigError, match=r"store\.path: give url or path"):
        load_config(site_with(tmp_path, 'path = "a.db"\nurl = "b.db"'))


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ('url = "mysql://acd@db/acd"', "store.url: unknown store scheme 'mysql' (known: "),
        ('url = "postgresql://acd:secret@db/acd"', "store.url: holds a password"),
        ('url = ""', "store.url: must name a file or a database URL"),
    ],
)
def test_a_wrong_store_url_is_one_line_naming_the_key(tmp_path, line, problem):
    result = CliRunner().invoke(cli, ["config", "check", str(site_with(tmp_path, line))])
    assert result.exit_code == 1
    assert problem in result.output
    assert "secret" not in result.output and "Traceback" not in result.output


class _Counting:
    """A backend of its own scheme: SQLite files, counting what it opened."""

    def __init__(self) -> None:
        self.opened: list[str] = []

    def open(self, url: str, options: StoreOptions) -> RecordStore:
        self.opened.append(url)
        return SqliteStore(url.split("://", 1)[1], options.mask_callers, options.group)

    def open_readonly(self, url: str, options: StoreOptions) -> RecordStore:
        self.opened.append(url)
        return acd.runtime.store_sqlite.open_readonly(url.split("://", 1)[1])

    controller_lock = backup = restore = None


def test_a_registered_backend_serves_its_scheme_to_the_reports(tmp_path, monkeypatch):
    backend = _Counting()
    monkeypatch.setitem(acd.runtime.store._BACKENDS, "counting", backend)  # removed after the test
    register("counting", backend)
    url = f"counting://{tmp_path / 'c.db'}"
    with open_store(url, mask_callers=False) as store:
        store.record_call(answered(7, 1000.0))
    result = CliRunner().invoke(cli, ["report", "--db", url, "--json"])
    assert result.exit_code == 0, result.output
    assert '"calls": 1' in result.output
    assert backend.opened == [url, url]


def test_the_sqlite_store_has_every_operation_of_the_interface():
    for name, member in inspect.getmembers(RecordStore, inspect.isfunction):
        if name.startswith("_") and name not in ("__enter__", "__exit__"):
            continue
        ours = getattr(SqliteStore, name)
        assert inspect.signature(ours).parameters.keys() == (
            inspect.signature(member).parameters.keys()
        ), name


def test_nothing_sqlite_specific_outside_the_sqlite_store():
    """Only acd/runtime/store_sqlite.py imports sqlite3; SQL text lives in the store modules."""
    package = Path(acd.__file__).parent
    sql_words = ("SELECT ", "INSERT INTO", "PRAGMA ", "CREATE TABLE", "DELETE FROM")
    stores = {"store_sqlite.py", "store_sql.py", "store_pg.py"}
    for source in package.rglob("*.py"):
        tree = ast.parse(source.read_text(encoding="utf-8"))
        imported = {
            alias.name.split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.Import | ast.ImportFrom)
            for alias in (
                node.names if isinstance(node, ast.Import) else [ast.alias(node.module or "")]
            )
        }
        if source.name != "store_sqlite.py":
            assert "sqlite3" not in imported, source
        if source.name not in stores:
            strings = [
                n.value
                for n in ast.walk(tree)
                if isinstance(n, ast.Constant) and isinstance(n.value, str)
            ]
            assert not [s for s in strings if any(w in s for w in sql_words)], source


def test_an_unknown_scheme_given_to_db_is_one_line():
    result = CliRunner().invoke(cli, ["report", "--db", "mysql://db/acd"])
    assert result.exit_code == 1
    assert "unknown store scheme 'mysql'" in result.output
    with pytest.raises(AcdError, match="unknown store scheme"):
        open_store("mysql://db/acd")
