"""One controller of a hot-standby pair (``[ha] enabled = true``; docs/operations.md,
Running a pair).

Two ``acd run`` share a PostgreSQL store and the PBX link through a serial device
server. `Pair.run` loops over two phases until stopped:

- **standby**: try to take the lease (`acd.runtime.store.Lease`) every
  ``check_interval`` s (after losing touch with the database, not for ``fence_after``
  s once it is back: the active one takes its own again first); meanwhile publish
  ``{"role": "standby", "active": <holder>}`` on ``controller/status`` (no other topic:
  the active controller owns the site's tree) and log who is active.
- **active**: once the lease is held, end the pair's store sessions (a former holder's
  stuck transaction holds row locks), wait ``fence_after`` s (a previous holder that
  lost its session without dying has closed the link by then), then run a fresh
  `acd.runtime.controller.Controller` holding the lease: it opens the link,
  resynchronises by snapshot, restores the agent sessions and the legs in progress
  from the store, and checks the lease while it runs. It ends either stopped (the
  lease released after the port is closed) or fenced (the lease lost: the link closed
  at once), and then the loop goes back to standby with a new lease session.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from acd.config import Config
from acd.errors import AcdError
from acd.runtime.clock import Clock
from acd.runtime.controller import Controller
from acd.runtime.store import Lease, LeaseLost
from drivers.mqtt import MqttBridge
from drivers.systemd import Notifier

log = logging.getLogger("acd.controller")


class Pair:
    """Standby, then active when the lease is ours, then standby again if it is lost.

    ``new_lease()`` makes a lease session (not yet held); ``new_controller(lease,
    notifier)`` a controller with its own store, run while the lease is held."""

    def __init__(
        self,
        config: Config,
        new_lease: Callable[[], Lease],
        new_controller: Callable[[Lease, Notifier], Controller],
        *,
        clock: Clock | None = None,
        mqtt: bool = True,
        notifier: Notifier | None = None,
    ) -> None:
        self.config = config
        self.new_lease = new_lease
        self.new_controller = new_controller
        self.clock = clock or Clock.real_time()
        self.use_mqtt = mqtt and config.mqtt.enabled
        self.notifier = notifier or Notifier()
        self.terms = 0  # times this controller became active
        self.controller: Controller | None = None  # the one running while active

    async def run(self, stop: asyncio.Event) -> None:
        """Standby and active in turn until ``stop`` is set."""
        ha = self.config.ha
        try:
            while not stop.is_set():
                lease = await self._standby(stop)
                if lease is None:
                    return
                log.info(
                    "lease taken: %s is the active controller; opening the PBX link in"
                    " %.1f s (a previous holder has closed it by then)",
                    lease.instance,
                    ha.fence_after,
                )
                try:
                    fenced = await asyncio.wait_for(
                        asyncio.to_thread(lease.fence_others), ha.lease_timeout
                    )
                except (LeaseLost, TimeoutError) as exc:
                    log.error("lease: the pair's store sessions not ended: %s", exc)
                else:
                    if fenced:
                        log.info("database sessions of %s ended", ", ".join(fenced))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), ha.fence_after)
                if stop.is_set():
                    await asyncio.to_thread(lease.close)
                    return
                controller = self.new_controller(lease, self.notifier)
                self.controller = controller
                self.terms += 1
                term = asyncio.Event()  # set by stop, or by the controller when fenced
                relay = asyncio.create_task(_relay(stop, term))
                try:
                    await controller.run(term)  # it releases the lease, after the port
                except (LeaseLost, TimeoutError) as exc:  # lost before the port opened
                    log.error("lease lost before the link was opened: %s", exc or "no answer")
                except AcdError as exc:  # the port: the other controller may reach it
                    log.error("%s: back to standby", exc)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), self.config.link.reconnect_max)
                finally:
                    relay.cancel()
                    self.controller = None
                    if controller.fenced is None and controller.store is not None:
                        controller.store.close()  # a fenced one closes its own, later
        finally:
            self.notifier.notify(STOPPING=1, STATUS="stopping")
            self.notifier.close()

    async def _standby(self, stop: asyncio.Event) -> Lease | None:
        """Try for the lease every ``check_interval`` s until it is held (returned) or
        ``stop`` (None); say who is active meanwhile (log, MQTT, systemd)."""
        ha = self.config.ha
        loop = asyncio.get_running_loop()
        lease = self.new_lease()
        executor = ThreadPoolExecutor(1, thread_name_prefix="acd-lease")
        bridge = None  # started once the holder is known: one birth, naming it
        taken = None
        seen: object = ()  # the holder last reported
        problem = None
        wait_until = 0.0  # after an outage: the active one takes its lease again first
        self.notifier.notify(READY=1, STATUS=f"standby: {lease.instance} waits for the lease")
        try:
            while not stop.is_set():
                started = loop.time()
                call = functools.partial(loop.run_in_executor, executor)
                try:
                    if problem is not None:  # the database was out of reach: back?
                        await asyncio.wait_for(call(lease.connect), 2 * ha.lease_timeout)
                        log.info(
                            "standby: the database answers again; the lease is not tried"
                            " for %g s (the active controller takes its own again first)",
                            ha.fence_after,
                        )
                        wait_until = loop.time() + ha.fence_after
                        problem = None
                    if loop.time() >= wait_until and await asyncio.wait_for(
                        call(lease.acquire), 2 * ha.lease_timeout
                    ):
                        executor.shutdown(wait=False)
                        taken = lease
                        return lease
                    holder = await asyncio.wait_for(call(lease.holder), 2 * ha.lease_timeout)
                except (LeaseLost, TimeoutError) as exc:
                    if str(exc) != problem:
                        problem = str(exc)
                        log.error("standby: %s", problem or "the database does not answer")
                    if isinstance(exc, TimeoutError):  # a call is stuck: a new session
                        _let_go(lease, executor, wait=False)
                        lease = self.new_lease()
                        executor = ThreadPoolExecutor(1, thread_name_prefix="acd-lease")
                    holder = None
                if holder == lease.instance and seen != holder:
                    log.warning(
                        "standby: the lease is held by a controller also named %s: give"
                        " each of the pair its own [ha] instance (or --instance)",
                        holder,
                    )
                if holder != seen:
                    seen = holder
                    log.info(
                        "standby: %s waits; the active controller is %s",
                        lease.instance,
                        holder or "unknown (none holds the lease)",
                    )
                    self.notifier.notify(STATUS=f"standby: active is {holder or 'unknown'}")
                    if bridge is not None:
                        bridge.update_status(active=holder)
                if bridge is None and self.use_mqtt:
                    bridge = MqttBridge(
                        self.config.mqtt,
                        self.config.site.id,
                        clock=lambda: self.clock.at(loop.time()),
                        status_fields={
                            "role": "standby",
                            "instance": lease.instance,
                            "active": holder,
                        },
                        mirror=False,
                    )
                    bridge.start()
                if self.notifier.watchdog_interval is not None:
                    self.notifier.notify(WATCHDOG=1)
                wait = started + ha.check_interval - loop.time()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), max(0.0, wait))
            _let_go(lease, executor, wait=False)
            return None
        finally:
            if bridge is not None:  # taking over: its status as the active one follows
                await bridge.stop(offline=taken is None)


async def _relay(stop: asyncio.Event, term: asyncio.Event) -> None:
    """Set ``term`` when ``stop`` is set."""
    await stop.wait()
    term.set()


def _let_go(lease: Lease, executor: ThreadPoolExecutor, wait: bool) -> None:
    """Close ``lease`` in ``executor``, the thread of its calls, after the one in
    progress (which may be stuck on a dead connection: then ``wait=False``)."""
    executor.submit(lease.close)
    executor.shutdown(wait=wait)
