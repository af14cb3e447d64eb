"""The pair's loop (`acd.runtime.pair.Pair`) with a lease and controllers of the test's
own: standby until the lease is free, the takeover wait, a term that ends fenced goes
back to standby on a new lease session, a stop ends it; a holder of the same name is
called out. The real lease and controller: test_lease_pg, test_controller, e2e."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

from acd.config import Config, read_toml
from acd.runtime.pair import Pair
from drivers.systemd import Notifier

ROOT = Path(__file__).resolve().parents[3]


def pair_config() -> Config:
    data = read_toml(ROOT / "examples" / "town-hall.toml")
    data["store"]["url"] = "postgresql://acd@db.example/acd"
    data["ha"] = {"enabled": True, "check_interval": 0.05, "lease_timeout": 1.0}
    return Config.from_dict(data, "site.toml")


class Lease:
    """Free after ``busy`` tries; held by ``holder`` until then."""

    def __init__(self, log: list[str], busy: int, holder: str = "pc-b") -> None:
        self.instance = "pc-a"
        self.log = log
        self.busy = busy
        self.other = holder
        self.closed = False

    def connect(self) -> None:
        pass

    def acquire(self) -> bool:
        self.busy -= 1
        self.log.append("try")
        return self.busy < 0

    def confirm(self) -> None:
        pass

    def holder(self) -> str | None:
        return self.other

    def fence_others(self) -> list[str]:
        self.log.append("fence others")
        return [self.other]

    def close(self) -> None:
        self.closed = True


class Term:
    """A controller run: fenced after a moment, the first time; else until stopped."""

    def __init__(self, log: list[str], fenced: bool) -> None:
        self.log = log
        self.will_fence = fenced
        self.fenced: str | None = None
        self.store = None

    async def run(self, stop: asyncio.Event) -> None:
        self.log.append("run")
        if self.will_fence:
            await asyncio.sleep(0.05)
            self.fenced = "lease lost"
            stop.set()  # as Controller.fence does
        await stop.wait()
        self.log.append("ended")


def test_standby_takes_over_goes_back_to_standby_when_fenced_and_stops(caplog):
    log: list[str] = []
    leases: list[Lease] = []
    terms: list[Term] = []

    def new_lease() -> Lease:
        leases.append(Lease(log, busy=2 if not leases else 1))
        return leases[-1]

    def new_controller(lease, notifier) -> Term:
        terms.append(Term(log, fenced=not terms))
        return terms[-1]

    pair = Pair(pair_config(), new_lease, new_controller, mqtt=False, notifier=Notifier({}))

    async def main() -> float:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        task = asyncio.create_task(pair.run(stop))
        while pair.terms < 2:
            await asyncio.sleep(0.01)
        took = loop.time()
        stop.set()
        await asyncio.wait_for(task, 5)
        return took

    with caplog.at_level(logging.INFO, logger="acd"):
        asyncio.run(main())
    # standby (two tries refused), lease: other sessions ended, then the term; fenced:
    # a new lease session, refused once, taken, and the second term until the stop
    assert log == [
        *("try", "try", "try", "fence others", "run", "ended"),
        *("try", "try", "fence others", "run", "ended"),
    ]
    assert pair.terms == 2 and terms[0].fenced and terms[1].fenced is None
    assert "standby: pc-a waits; the active controller is pc-b" in caplog.text
    assert caplog.text.count("lease taken: pc-a is the active controller") == 2
    assert "database sessions of pc-b ended" in caplog.text


def test_a_holder_with_this_controller_s_own_name_is_called_out(caplog):
    lease = Lease([], busy=10**6, holder="pc-a")
    pair = Pair(pair_config(), lambda: lease, None, mqtt=False, notifier=Notifier({}))

    async def main() -> None:
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(0.2, stop.set)
        await pair.run(stop)

    with caplog.at_level(logging.WARNING, logger="acd"):
        asyncio.run(main())
    assert caplog.text.count("held by a controller also named pc-a") == 1
    for _ in range(100):  # given up at the stop, in its thread
        if lease.closed:
            break
        time.sleep(0.01)
    assert lease.closed


def test_a_stop_during_the_takeover_wait_closes_the_lease_and_runs_no_term():
    lease = Lease([], busy=0)
    pair = Pair(pair_config(), lambda: lease, None, mqtt=False, notifier=Notifier({}))

    async def main() -> None:
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(0.2, stop.set)  # fence_after is longer
        await asyncio.wait_for(pair.run(stop), 5)

    asyncio.run(main())
    assert lease.closed and pair.terms == 0 and lease.log == ["try", "fence others"]
