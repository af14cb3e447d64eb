"""Shared test set-up: hypothesis profiles, a broker proxy and the record stores.

Profiles: ``ci`` (quick, the default under CI), ``dev`` (default elsewhere) and
``deep`` (on demand: ``HYPOTHESIS_PROFILE=deep make test``; it runs the stateful
machines for minutes, so the per-test timeout is off unless ``--timeout`` is given).
"""

import asyncio
import contextlib
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from firmware_sim.faults import FaultSpec
from firmware_sim.runner import ServedSwitch
from firmware_sim.scenario import Scenario

settings.register_profile(
    "ci", max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=100, deadline=None)
settings.register_profile("deep", max_examples=2000, deadline=None)
default = "ci" if os.environ.get("CI") else "dev"
PROFILE = os.environ.get("HYPOTHESIS_PROFILE") or default
settings.load_profile(PROFILE)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    if PROFILE == "deep" and config.getoption("timeout", None) is None:
        config.option.timeout = 0  # before pytest-timeout reads it


BROKER = ("127.0.0.1", 1883)


class BrokerProxy:
    """A TCP proxy in front of a Mosquitto broker (``upstream``, by default the machine's):
    ``stop`` cuts every connection abruptly (the broker is gone, no DISCONNECT reaches
    it), ``start`` serves again on the same port."""

    def __init__(self, upstream: tuple[str, int] = BROKER) -> None:
        self.upstream = upstream
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self._pumps: set[asyncio.Task] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, BROKER[0], self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        self._server.close()
        for writer in self._writers:
            writer.transport.abort()
        self._writers.clear()
        await self._server.wait_closed()

    async def _handle(self, reader, writer) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.transport.abort()
            return
        self._writers += [writer, up_writer]
        for src, dst in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pump(src, dst))
            self._pumps.add(task)
            task.add_done_callback(self._pumps.discard)

    @staticmethod
    async def _pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
        dst.transport.abort()


@pytest.fixture
def broker_proxy() -> BrokerProxy:
    """A proxy to the broker, not yet started (``await broker_proxy.start()``)."""
    return BrokerProxy()


SECURE_USERS = ("acd-townhall", "alice", "bob", "wallboard")


class SecureBroker:
    """A private Mosquitto with a password file and the shipped ACL
    (examples/mosquitto/acl: site ``town-hall``, prefix ``acd/v1``); each user's password
    is ``pw-<user>``."""

    def __init__(self, port: int) -> None:
        self.port = port

    @staticmethod
    def password(user: str) -> str:
        return f"pw-{user}"

    def mqtt(self, user: str, **settings):
        """The ``[mqtt]`` settings of ``user`` on this broker (``settings`` override)."""
        from acd.config import MqttConfig

        mine = {"port": self.port, "username": user, "password": self.password(user)}
        return MqttConfig(**(mine | settings))


@pytest.fixture
def secure_broker(tmp_path_factory) -> SecureBroker:
    """A fresh private Mosquitto with the documented password file and ACL, for the
    tests that send supervisor commands (skipped without mosquitto: make broker)."""
    from drivers.mosquitto import ACL_EXAMPLE, mosquitto_binary, secure_mosquitto

    if mosquitto_binary() is None:
        pytest.skip("mosquitto is not installed (make broker installs it)")
    users = {u: SecureBroker.password(u) for u in SECURE_USERS}
    directory = tmp_path_factory.mktemp("secure-mosquitto")
    with secure_mosquitto(directory, users, ACL_EXAMPLE.read_text()) as port:
        yield SecureBroker(port)


PG_SERVER = "postgresql://postgres@127.0.0.1:5432"  # trust auth (make test starts it)


@contextlib.contextmanager
def new_pg_database() -> Iterator[str]:
    """A new PostgreSQL database on 127.0.0.1:5432, dropped after: its URL."""
    import psycopg

    from acd.runtime.store_pg import scratch_database

    with contextlib.ExitStack() as stack:
        try:
            url = stack.enter_context(scratch_database(PG_SERVER, "acd_test"))
        except psycopg.OperationalError as exc:
            pytest.fail(f"no PostgreSQL on 127.0.0.1:5432 (make test starts it): {exc}")
        yield url


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """The PostgreSQL database of this test run, dropped at its end: its URL."""
    with new_pg_database() as url:
        yield url


@pytest.fixture(scope="module")
def pg_module_database() -> Iterator[str]:
    """A PostgreSQL database for one test module's module-scoped fixtures."""
    with new_pg_database() as url:
        yield url


def empty_pg(url: str) -> str:
    """Empty the database at ``url`` (every table of the acd schema gone); ``url``."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    return url


@pytest.fixture(scope="session")
def fresh_pg(pg_database: str):
    """Empties the tables of the test run's PostgreSQL database (quicker than a new
    schema) and returns its URL: a new store for each example of a hypothesis test."""
    import psycopg

    def fresh() -> str:
        with psycopg.connect(pg_database, autocommit=True) as conn:
            tables = [
                name
                for (name,) in conn.execute(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                    " AND tablename <> 'acd_schema'"
                )
            ]
            if tables:
                conn.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY")
        return pg_database

    empty_pg(pg_database)
    return fresh


class PgCluster:
    """A PostgreSQL cluster of our own (initdb, pg_ctl) on a free loopback port, in a
    directory of its own, trust auth: one a test may stop (``pg_ctl stop -m immediate``:
    a crash) and start again without touching the machine's server. As root, its
    programs run as the ``postgres`` user (initdb refuses root)."""

    def __init__(self, bin_dir: Path) -> None:
        import pwd
        import tempfile

        from drivers.mosquitto import free_port

        self.bin = bin_dir
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="acd-pg-"))
        self.data = self.dir / "data"
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres",
                  "-E", "UTF8", "--no-sync")  # fmt: skip
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(
                f"port = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.dir}'\nfsync = off\n"
            )  # fsync off: a process crash (not the machine's) loses no commit
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, program: str, *args: str) -> None:
        subprocess.run(
            [*self.as_user, str(self.bin / program), *args],
            check=True,
            capture_output=True,
            timeout=60,
        )

    def start(self) -> None:
        """Start the server and wait until it takes connections."""
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.dir / "log"), "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``immediate``: at once, as in a crash)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def remove(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


def pg_bin_dir() -> Path | None:
    """The newest PostgreSQL server programs of this machine (Debian's layout)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parts[-3]))
    return found[-1].parent if found else None


@pytest.fixture
def own_pg() -> Iterator[PgCluster]:
    """A started `PgCluster`, removed after the test (skipped without the programs)."""
    bin_dir = pg_bin_dir()
    if bin_dir is None:
        pytest.skip("no PostgreSQL server programs in /usr/lib/postgresql/*/bin (initdb, pg_ctl)")
    cluster = PgCluster(bin_dir)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.remove()


@pytest.fixture
def pg_url(pg_database: str) -> str:
    """An empty PostgreSQL database for one test."""
    return empty_pg(pg_database)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """The URL of a new, empty record store: an SQLite file, then a PostgreSQL database
    (the store and report tests run against both)."""
    if request.param == "sqlite":
        return str(tmp_path / "cdr.db")
    return request.getfixturevalue("pg_url")


@pytest.fixture
def sim_class() -> type[ServedSwitch]:
    """The class `sim_thread` serves switches with (tests/e2e: one with the controller's
    side of the clock)."""
    return ServedSwitch


@pytest.fixture
def sim_thread(sim_class: type[ServedSwitch]) -> Iterator[Callable[..., ServedSwitch]]:
    """Start a scenario's switch served from a background thread (``faults``, ``tcp``);
    every one started is stopped, in time, at the end of the test."""
    started: list[ServedSwitch] = []

    def start(
        scenario: Scenario, faults: tuple[FaultSpec, ...] = (), tcp: bool = False
    ) -> ServedSwitch:
        sim = sim_class(scenario, faults, tcp)
        started.append(sim)
        return sim

    yield start
    for sim in started:
        if sim.thread.is_alive():
            assert sim.stop()
