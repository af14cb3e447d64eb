"""The controller: the asyncio runtime around the engine.

It wires the PBX port (`drivers.serial_link`), the PBX driver named by ``[link]
protocol`` (`acd.runtime.pbx`: for ``acd-cti`` the link layer `protocols.link.Link` and the
`acd.runtime.bridge.Bridge`, and through it the engine), the call-record store
(`acd.runtime.store.RecordStore`) and MQTT (`drivers.mqtt.MqttBridge`):

- Bytes from the port feed the link; messages go through the bridge; the requests the
  bridge returns go straight back to the link and the port (routing first). The
  notifications are collected and written to the store (records, agent changes, the
  agent sessions and the legs in progress: one batch of `acd.outbox.Outbox`, one
  transaction) by one writer thread, so that a disk sync never stalls routing; commits
  that queue up are grouped. Only once acknowledged (committed, or in the outbox spool
  while the store fails: the ``store-down`` alarm) are they logged and published.
- One timer (``loop.call_at``) serves the link's and the bridge's deadlines; engine
  time runs on an `acd.runtime.clock.Clock` of event-loop time (real time, or a scaled
  simulated day for the demo).
- On link down: alarm, state kept, the link resets by itself; a lost port (cable
  pulled, device server gone) is reopened with capped exponential backoff: a line
  fault never ends the controller. While the link is down the engine's timers wait
  and its requests are dropped (no ring can time out against a switch that cannot
  hear); on link up the bridge resynchronises, and the engine catches up.
- A PIN is checked (scrypt, ~30 ms) in a thread of its own, never on the loop: the
  engine asks with ``VerifyPin`` and gets ``PinChecked``; routing goes on meanwhile.
  A locked PIN raises the ``pin-locked-<agent>`` alarm until the lock ends.
- MQTT is never on the call path: publishing only fills an outbox; a dead broker does
  not delay routing. At start every agent's state and every queue's figures go into
  it, so that each (re)connection's retained snapshot has them all. Supervisor
  commands become ``SetAgentStatus`` events.
- Retention: at start and once a day, call detail older than ``[store] retention_days``
  is purged in the writer thread, its figures kept (`acd.runtime.retention`), and rotated
  capture files older than ``capture_retention_days`` are deleted.
- Agent sessions are restored from the store at start. ``run`` returns when ``stop``
  is set: notifications flushed, sessions saved, offline published, port closed. The
  port keeper, the silent-line watch, the daily purge and the watchdog feeder run on
  one `asyncio.TaskGroup`: none outlives ``run``, and a failure in one ends the run
  with its error (after the same shutdown) instead of being lost.
- In a hot-standby pair (``lease`` given, `acd.runtime.pair`): the lease is confirmed
  before the port is opened and every ``[ha] check_interval`` while running; when it
  is lost, or not confirmed for ``fence_after`` s, the port is closed at once (`fence`:
  every request and write checks that deadline first) and ``run`` ends with ``fenced``
  set, the sessions and legs left to the controller taking over. The lease is
  released after the port is closed.

Only opening the port at start is fatal (`AcdError`): a wrong URL is a configuration
error, reported at once; once running, the port is retried with a logged error.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import math
import time
from collections import deque
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import fields, replace
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from acd.config import Config, instance_problem
from acd.core.agents import AgentStatus
from acd.core.calendar import midnight
from acd.core.call_steps import CallStep
from acd.core.commands import (
    AgentChanged,
    CallEnded,
    Notification,
    PinLocked,
    QueueChanged,
    QueueFigures,
    Refused,
    VerifyPin,
)
from acd.core.engine import Engine
from acd.core.events import PinChecked, SetAgentStatus
from acd.core.pins import verify_pin
from acd.core.records import Outcome
from acd.runtime.alarms import AlarmChange, Alarms
from acd.runtime.clock import Clock
from acd.runtime.outbox import Outbox, Written
from acd.runtime.pbx import RequestFailed, Resynced, Step, SwitchLink, SwitchSession, driver
from acd.runtime.retention import DAY, cutoff, purge, purge_captures
from acd.runtime.store import Lease, LeaseLost, RecordStore
from acd.runtime.topics import (
    LINK_DOWN_ALARM,
    STORE_DOWN_ALARM,
    AgentCommand,
    CommandAction,
    agent_state_payload,
    alarm_payload,
    call_event_payload,
    pin_locked_alarm,
    queue_stats_payload,
)
from drivers.backoff import Backoff
from drivers.log_limit import RateLimitedLog
from drivers.mqtt import CommandHandler, MqttBridge
from drivers.serial_link import Capture, SerialPort, open_port
from drivers.systemd import Notifier
from protocols.errors import LocalProtocolError
from protocols.link import BadMessage, LinkDown, LinkUp, MessageReceived

log = logging.getLogger("acd.controller")

_FIGURES = tuple(f.name for f in fields(QueueFigures) if f.name != "queue")
"""The `QueueFigures` that ``queue/<id>/stats`` carries (the queue is in the topic)."""

UNAUTHENTICATED = (
    "the controller's broker connection is not authenticated (set mqtt.username and"
    " password_env, or cert_file; mqtt.allow_anonymous_commands = true only in a lab)"
)
"""Why every supervisor command is refused over an anonymous broker connection."""

_ACTIONS = {
    CommandAction.READY: AgentStatus.READY,
    CommandAction.NOT_READY: AgentStatus.NOT_READY,
    CommandAction.LOGOUT: AgentStatus.LOGGED_OUT,
}


class Controller:
    """The running ACD (see the module docstring). ``await run(stop)`` until stopped."""

    def __init__(
        self,
        config: Config,
        *,
        url: str | None = None,
        store: RecordStore | None = None,
        extensions: Iterable[str] | None = None,
        clock: Clock | None = None,
        mqtt: bool = True,
        capture: Capture | None = None,
        reconnect_initial: float = 0.5,
        silent_warning: float = 30.0,
        notifier: Notifier | None = None,
        spool: Path | None = None,
        lease: Lease | None = None,
    ) -> None:
        self.config = config
        self.lease = lease  # [ha]: the lease held (acd.runtime.store.Lease), checked while running
        self.fenced: str | None = None  # why the link was closed for want of the lease
        self.standby: str | None = None  # [ha]: the standby controller heard on MQTT
        self._peer_log = {  # what a client of the broker can repeat at will
            "refused": RateLimitedLog(log, logging.WARNING),
            "came": RateLimitedLog(log, logging.INFO),
            "gone": RateLimitedLog(log, logging.WARNING),
        }
        self.url = url or config.link.url
        self.store = store
        self.outbox = Outbox(store, spool, group=config.store.group) if store is not None else None
        self._spool_log = RateLimitedLog(log, logging.ERROR)  # tried again with each write
        self.clock = clock or Clock.real_time()
        self.use_mqtt = mqtt and config.mqtt.enabled
        self.capture = capture
        self.reconnect_initial = reconnect_initial
        self.silent_warning = silent_warning  # s between "no switch answers" alarms
        self.notifier = notifier or Notifier()
        self.stall_limit = 2.0  # s a deadline may be overdue before the watchdog starves
        self.port_lost_grace = 0.5  # s: a port lost this close to a stop raises no alarm
        self.engine = Engine(config, self.clock.start)
        if extensions is None:
            extensions = config.link.extensions
        self.driver = driver(config.link.protocol)
        self.bridge: SwitchSession = self.driver.session(
            self.engine, config.link, extensions, self.clock.speed
        )
        self.link: SwitchLink | None = None
        self.port: SerialPort | None = None
        self.mqtt: MqttBridge | None = None
        self.link_is_up = False
        self.counters = dict.fromkeys(
            (
                "messages_in",
                "requests_out",
                "requests_dropped",
                "bad_messages",
                "records",
                "agent_changes",
                "link_ups",
                "link_downs",
                "port_opens",
                "port_losses",
                "store_errors",
            ),
            0,
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._notes: list[Notification] = []
        self._flush_scheduled = False
        self._committing = False
        self._unacked: deque[tuple[int, list[Notification]]] = deque()  # batches in the outbox
        self._retry: asyncio.TimerHandle | None = None
        self._writer_closed = False
        self._store_down_since: float | None = None  # loop time the store failed
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="acd-store")
        self._pin_checker = ThreadPoolExecutor(1, thread_name_prefix="acd-pin")
        self._port_lost = asyncio.Event()
        self._closing = False
        self._seq = itertools.count(1)
        self.alarms = Alarms(config.alarms, config.queues)
        self._tz = ZoneInfo(config.site.timezone)
        self._day: date | None = None  # the local day calls_today counts
        self._calls_today: dict[str, int] = {}  # agent -> answered legs that ended today
        self._agents: dict[str, AgentChanged] = {}  # agent -> latest state published
        self._lease_until = math.inf  # loop time until which the lease is known to be ours
        self._stop: asyncio.Event | None = None

    # --- life cycle -----------------------------------------------------------------

    def now(self) -> float:
        """Engine time now."""
        return self.clock.at(self._loop.time() if self._loop else time.monotonic())

    async def run(self, stop: asyncio.Event) -> None:
        """Open the port (`AcdError` if impossible), run until ``stop`` is set, shut down."""
        self._loop = asyncio.get_running_loop()
        self._stop = stop
        if self.lease is not None:
            self._lease_until = self._loop.time() + self.config.ha.fence_after
            self._lease_checker = ThreadPoolExecutor(1, thread_name_prefix="acd-lease")
            try:
                await self._confirm_lease()
            except (LeaseLost, TimeoutError):  # the port is not opened
                self._release_lease(wait=False)
                raise
        try:
            if self.outbox is not None:
                # a previous run's records first (in a pair, not its sessions: not the latest)
                replayed = self.outbox.replay(state=self.lease is None)
                if replayed:
                    log.info(
                        "outbox %s: %d batches of call records a previous run could not"
                        " store are written",
                        self.outbox.spool,
                        replayed,
                    )
            await self._open()
        except BaseException:
            if self.lease is not None:  # the other controller may do better
                self._release_lease(wait=False)
            raise
        if self.store is not None:
            self._count_calls_today()
        if self.use_mqtt:
            pair = {}
            if self.lease is not None:
                pair = {"role": "active", "instance": self.lease.instance, "standby": None}
            self.mqtt = MqttBridge(
                self.config.mqtt,
                self.config.site.id,
                on_command=self._commands(),
                clock=self.now,
                status_fields=pair,
                on_peer=self._peer if pair else None,
            )
            self.mqtt.start()
            for note in self.engine.agent_states():
                self._publish_agent(note)
            now = self.now()
            for queue in self.config.queues:  # every queue's figures are in the snapshot
                self._publish_queue(self.engine.queue_figures(queue), now)
        if self.store is not None:
            legs = self.store.load_legs()
            if legs:
                log.info(
                    "%d calls were in progress: their legs go on when they are found", len(legs)
                )
            self.engine.continue_legs(legs)
            sessions = self.store.load_sessions()
            if sessions:
                log.info("restoring %d agent sessions", len(sessions))
                self._take(self.bridge.restore(sessions, self.now()))
                self._pump()
        try:
            # the background tasks end with ``stop``; one that fails ends the run (the
            # others cancelled, the shutdown done) with its error, never silently
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self._watch_link(stop, self.silent_warning))
                tasks.create_task(self._retention(stop))
                tasks.create_task(self._feed_watchdog(stop))
                if self.lease is not None:
                    tasks.create_task(self._keep_lease(stop))
                self.notifier.notify(READY=1, STATUS=self._status())
                await self._keep_port(stop)
        finally:
            if self.lease is None:
                self.notifier.notify(STOPPING=1, STATUS="stopping")
            else:  # one term of a pair: the process goes on (acd.runtime.pair says STOPPING)
                self.notifier.notify(STATUS=self._status())
            await self._shutdown()
            self.notifier.close()

    def health(self) -> str | None:
        """None while the link pump keeps up, else what is wrong: a deadline of the link
        (heartbeat, retry, reset) or of the engine passed ``stall_limit`` s ago unhandled."""
        due = self._next_due()
        late = self._loop.time() - due if due is not None else 0.0
        if late > self.stall_limit:
            return f"link pump stalled: a deadline is {late:.1f} s overdue"
        return None

    async def _feed_watchdog(self, stop: asyncio.Event) -> None:
        """``WATCHDOG=1`` every half ``WATCHDOG_USEC`` while `health` is good: a hung event
        loop or link pump stops the feeding, and systemd restarts the service."""
        every = self.notifier.watchdog_interval
        if every is None:
            return
        sick = False
        while not stop.is_set():
            problem = self.health()
            if problem is None:
                self.notifier.notify(WATCHDOG=1)
            elif not sick:
                log.error("watchdog not fed: %s", problem)
            sick = problem is not None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every)

    def reload(self, path: str) -> bool:
        """Re-read the configuration file and apply it in place (SIGHUP): see
        ``Engine.reload``. A file that fails the check, or a change the live state
        forbids, is refused with one log line and the running configuration stays.
        ``[site]``, ``[link]``, ``[mqtt]`` and ``[store]`` changes wait for a restart."""
        from acd.config import load_config
        from acd.config_diff import changes, restart_needed
        from acd.core.engine import ReloadRefused
        from acd.errors import AcdError

        self.notifier.notify(RELOADING=1, STATUS="reloading the configuration")
        try:
            try:
                new = load_config(path)
            except (AcdError, OSError) as exc:
                log.error("reload refused, the running configuration stays: %s", exc)
                return False
            old = self.config
            kept = restart_needed(old, new)
            new = replace(new, site=old.site, link=old.link, mqtt=old.mqtt, store=old.store)
            try:
                step = self.bridge.reload(new, self.now())
            except ReloadRefused as exc:
                log.error("reload refused, the running configuration stays: %s", exc)
                return False
            self.config = new
            self.alarms.reconfigure(new.alarms, new.queues)
            self._take(step)
            self._pump()
            done = changes(old, new)
            log.info("configuration reloaded from %s: %s", path, "; ".join(done) or "no changes")
            if kept:
                log.warning("changes to [%s] need a restart: not applied", "], [".join(kept))
            return True
        finally:
            self.notifier.notify(READY=1, STATUS=self._status())

    # --- the lease of a pair ([ha]) -------------------------------------------------

    async def _confirm_lease(self) -> None:
        """One lease check (in the lease thread): sent now, it extends the lease to now +
        ``fence_after`` once answered; `LeaseLost` if the session lost it (the lock is
        taken again on a new session if it is free), `TimeoutError` at the deadline."""
        sent = self._loop.time()
        run = functools.partial(self._loop.run_in_executor, self._lease_checker)
        left = self._lease_until - sent
        try:
            await asyncio.wait_for(run(self.lease.confirm), left)
        except LeaseLost as exc:
            while True:  # the session died (database restarted): take the lock again
                log.warning("%s: taking the lease again", exc)
                sent = self._loop.time()
                try:
                    held = await asyncio.wait_for(run(self.lease.acquire), self._lease_until - sent)
                except LeaseLost as again:
                    exc = again
                    await asyncio.sleep(min(0.2, max(0.0, self._lease_until - self._loop.time())))
                    if self._loop.time() >= self._lease_until:
                        raise TimeoutError from None
                    continue
                if not held:
                    raise LeaseLost("the lease was taken by another controller") from None
                log.info("lease taken again by %s", self.lease.instance)
                break
        self._lease_until = sent + self.config.ha.fence_after

    async def _keep_lease(self, stop: asyncio.Event) -> None:
        """Check the lease every ``check_interval`` s; fence (`fence`) as soon as it is
        lost or not confirmed for ``fence_after`` s."""
        ha = self.config.ha
        while not stop.is_set():
            started = self._loop.time()
            try:
                await self._confirm_lease()
            except TimeoutError:
                self.fence(f"the database did not confirm the lease for {ha.fence_after:g} s")
                return
            except LeaseLost as exc:
                self.fence(str(exc))
                return
            wait = started + ha.check_interval - self._loop.time()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), max(0.0, wait))

    def fence(self, reason: str) -> None:
        """The lease is lost: close the PBX link at once (no request goes out after
        this), and end the run; the caller goes back to standby."""
        if self.fenced is not None:
            return
        self.fenced = reason
        log.error(
            "lease lost (%s): %s closes the PBX link now and goes back to standby",
            reason,
            self.lease.instance,
        )
        self.link = None
        port, self.port = self.port, None
        if port is not None:
            port.abort()
        if self.link_is_up:
            self._link_down("lease lost: this controller stopped routing")
        if self._stop is not None:
            self._stop.set()

    def _lease_expired(self) -> bool:
        """True (and the link closed) once the lease may be someone else's."""
        if self._loop.time() < self._lease_until:
            return False
        self.fence(f"the database did not confirm the lease for {self.config.ha.fence_after:g} s")
        return True

    def _peer(self, payload: dict) -> None:
        """A standby's ``controller/status`` (birth, stop or Will): note it in ours and
        publish ours again, so that the retained status is the active one's.

        Any client of the broker may publish there: a payload naming no valid instance
        is refused, and the lines saying a standby came or went are rate-limited (one
        flapping at the broker's pace would otherwise write one line per message)."""
        instance = payload.get("instance")
        if not isinstance(instance, str) or instance_problem(instance) is not None:
            self._peer_log["refused"](
                "mqtt: controller/status refused: instance %.80r is no controller's name",
                instance,
            )
            return
        if payload.get("online") is True and payload.get("role") == "standby":
            if instance != self.standby:
                self._peer_log["came"]("standby controller %s is waiting", instance)
            self.standby = instance
        elif instance == self.standby:
            self._peer_log["gone"]("standby controller %s is gone", instance)
            self.standby = None
        if self.mqtt is not None:
            self.mqtt.update_status(standby=self.standby)

    def _status(self) -> str:
        """The one-line state systemd shows (``systemctl status``)."""
        if self.fenced is not None:
            return f"lease lost: {self.fenced}"
        if self.link_is_up:
            return f"link up on {self.url}"
        if self.link is None:
            return f"PBX port {self.url} not open"
        return f"waiting for the switch on {self.url}"

    async def _watch_link(self, stop: asyncio.Event, every: float) -> None:
        """While the port is open but no switch answers, say so every ``every`` s (log
        line and link-down alarm): a silent line is a wiring or settings problem."""
        silent = 0.0
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every)
            if self.link_is_up or self.link is None:
                silent = 0.0
                continue
            silent += every
            self._alarm(
                LINK_DOWN_ALARM,
                True,
                "critical",
                f"no answer from the switch on {self.url} for {silent:.0f} s: check the cable,"
                f" baud rate and parity (acd port test {self.url})",
            )

    async def _retention(self, stop: asyncio.Event) -> None:
        """At start, then once a day (engine time): purge the call detail older than
        ``[store] retention_days`` (figures kept) and the rotated capture files older
        than ``capture_retention_days``, in the store's writer thread."""
        while not stop.is_set():
            try:
                await self._loop.run_in_executor(self._writer, self._purge)
            except Exception as exc:  # a full disk ...: try again tomorrow
                log.error("retention: purge failed: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), DAY / self.clock.speed)

    def _purge(self) -> None:
        cfg = self.config.store
        if self.store is not None and cfg.retention_days:
            before = cutoff(self.now(), cfg.retention_days, self.config.site.timezone)
            deleted = purge(self.store, before, self.config)
            if any(deleted.values()):
                day = datetime.fromtimestamp(before, self._tz).date()
                log.info(
                    "retention: purged before %s: %d call legs, %d queue-log rows,"
                    " %d agent changes (figures kept)",
                    day,
                    deleted["calls"],
                    deleted["queue_log"],
                    deleted["agent_changes"],
                )
        path = getattr(self.capture, "path", None)
        if path is not None and cfg.capture_retention_days:
            for old in purge_captures(path, cfg.capture_retention_days):
                log.info("retention: capture file %s deleted", old)

    async def _keep_port(self, stop: asyncio.Event) -> None:
        backoff = Backoff(self.reconnect_initial, self.config.link.reconnect_max)
        while not stop.is_set():
            stopped = asyncio.ensure_future(stop.wait())
            lost = asyncio.ensure_future(self._port_lost.wait())
            try:
                await asyncio.wait({stopped, lost}, return_when=asyncio.FIRST_COMPLETED)
            finally:  # also when cancelled (a failed sibling task)
                stopped.cancel()
                lost.cancel()
            while self._port_lost.is_set() and not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), backoff.delay)
                if stop.is_set():
                    break
                try:
                    await self._open()
                    backoff.reset()
                except Exception as exc:  # AcdError, or any OS refusal: retry
                    log.error("%s (retry in %.1f s)", exc, backoff.grow())

    async def _open(self) -> None:
        if self.fenced is not None or (self.lease is not None and self._lease_expired()):
            return  # never reopened without the lease
        cfg = self.config.link
        self.port = await open_port(self.url, cfg, self._on_data, self._on_port_lost, self.capture)
        self._port_lost.clear()
        self.counters["port_opens"] += 1
        log.info("PBX port %s open (%d baud, parity %s)", self.url, cfg.baudrate, cfg.parity)
        now = self._loop.time()
        self.link = self.driver.link(cfg)
        self.link.start(now)
        self._pump()

    async def _shutdown(self) -> None:
        self._closing = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        for _ in range(1000):  # commit what is left (bounded: 10 s)
            self._flush()
            if not self._committing and not self._notes:
                break
            if self.fenced is not None:  # the database may be out of reach: no wait
                ended = sum(type(n) is CallEnded for n in self._notes)
                if ended:
                    log.error("%d call records NOT stored: the lease was lost first", ended)
                break
            await asyncio.sleep(0.01)
        self._pin_checker.shutdown(wait=False, cancel_futures=True)
        if self.fenced is not None:
            # the new active owns the sessions now; a commit may hang on a connection
            # the partition killed: the store is closed after it, in the writer thread
            if self.store is not None:
                self._writer.submit(self.store.close)
            self._writer_closed = True
            self._writer.shutdown(wait=False)
        else:
            self._writer.shutdown(wait=True)
            self._writer_closed = True
            if self.store is not None:
                self._save_at_stop()
        for limited in (*self._peer_log.values(), self._spool_log):
            limited.flush()
        if self.mqtt is not None:
            await self.mqtt.stop()
        if self.port is not None:
            await self.port.close()
        if self.lease is not None:  # once the port is closed: a standby may open it now
            self._release_lease(wait=self.fenced is None)
        log.info("controller stopped")

    def _release_lease(self, wait: bool) -> None:
        """Close the lease session in the lease thread, after the check in progress (a
        fenced controller's may be stuck on a dead connection: not waited for)."""
        self._lease_checker.submit(self.lease.close)
        self._lease_checker.shutdown(wait=wait)

    def _save_at_stop(self) -> None:
        """Complete the records of the legs in wrap-up (the wrap-up ends with the stop:
        a restarted controller has the agents idle), and save the legs in progress and
        the sessions: one last batch, after any the outbox holds, into the store (tried
        once more whatever the backoff) or else its spool."""
        now = self.now()
        cut = self.engine.wrapups_in_progress(now, "wrap-up cut short by the controller's stop")
        notes, self._notes = self._notes, []  # not flushed in time, if any
        batch = self.outbox.batch(
            now,
            [*notes, *(CallEnded(now, record) for record in cut)],
            self.engine.export_sessions(),
            self.engine.drain_legs(),
        )
        self._unacked.append((batch.seq, notes))
        try:
            state = self.outbox.put(batch, force=True)
        except Exception as exc:  # a fault of the outbox itself
            log.error("call records: outbox write failed at stop: %s", exc, exc_info=exc)
            state = Written(0, self.outbox.waiting)
        while self._unacked:
            seq, acked = self._unacked.popleft()
            self._report(acked, seq <= state.acked)
        stored = state.acked >= batch.seq
        if state.waiting:
            where = self.outbox.spool if state.spooled == state.waiting else None
            if where is not None:
                log.warning(
                    "call-record store unreachable at stop (%s): %d batches of records wait in"
                    " the outbox %s, written when the controller starts again",
                    state.down,
                    state.waiting,
                    where,
                )
            else:
                self.counters["store_errors"] += 1
                log.error(
                    "call records NOT stored at stop: %d batches lost (store: %s; spool: %s)",
                    state.waiting - state.spooled,
                    state.down,
                    state.spool_error or "none",
                )
        if not stored:
            return
        for record in cut:
            log.info(
                "call %d leg %d: wrap-up of %s cut short by the stop, record completed",
                record.call_id,
                record.leg,
                record.agent_id,
                extra={"call_id": record.call_id, "queue": record.queue},
            )

    # --- the port and the link ------------------------------------------------------

    def _on_data(self, data: bytes) -> None:
        if self.link is not None and not self._closing:  # stopping: the next run resyncs
            self.link.receive_data(data, self._loop.time())
            self._pump()

    def _on_port_lost(self, exc: Exception | None) -> None:
        if self._closing or self.fenced is not None:
            return
        self.counters["port_losses"] += 1
        log.warning("PBX port %s lost: %s", self.url, exc or "closed")
        self.link = None
        if self.link_is_up:
            # Ctrl-C at a terminal running the simulated switch too may stop the switch
            # a moment before the controller: its port going away is no alarm then.
            self._link_down("port lost", self.port_lost_grace)
        self._port_lost.set()

    def _link_down(self, reason: str, grace: float = 0.0) -> None:
        """The link is down: the engine and MQTT are told, and ``grace`` s later (unless
        the controller is stopping by then) the link-down alarm is raised."""
        self.link_is_up = False
        self.counters["link_downs"] += 1
        self.bridge.link_down()
        log.warning("link down: %s", reason)
        self.notifier.notify(STATUS=f"link down: {reason}")
        if grace > 0:
            self._loop.call_later(grace, self._link_down_alarm, f"PBX link down: {reason}")
        else:
            self._link_down_alarm(f"PBX link down: {reason}")

    def _link_down_alarm(self, message: str) -> None:
        if not self._closing and not self.link_is_up:
            self._alarm(LINK_DOWN_ALARM, True, "critical", message)

    def _pump(self) -> None:
        """Handle the link's events, write what it has to send, re-arm the timer."""
        link = self.link
        if link is None:
            self._reschedule()
            return
        while (event := link.next_event()) is not None:
            if isinstance(event, MessageReceived):
                self.counters["messages_in"] += 1
                self._take(self.bridge.from_switch(event.message, self.now()))
            elif isinstance(event, LinkUp):
                self.link_is_up = True
                self.counters["link_ups"] += 1
                log.info("link up")
                self.notifier.notify(STATUS=self._status())
                self._alarm(LINK_DOWN_ALARM, False)
                self._take(self.bridge.link_up(self.now()))
            elif isinstance(event, LinkDown):
                self._link_down(event.reason)
            elif isinstance(event, BadMessage):
                self.counters["bad_messages"] += 1
                log.warning("bad message from the switch: %s", event.error)
                self._take(self.bridge.invalid(event.payload, event.error))
        data = link.data_to_send()
        if data and self.port is not None:
            if self.lease is not None and self._lease_expired():
                return
            self.port.write(data)
        self._reschedule()

    def _next_due(self) -> float | None:
        """Event-loop time of the next link or engine deadline (None: none)."""
        due = []
        if self.link is not None and (d := self.link.next_deadline()) is not None:
            due.append(d)
        if self.link_is_up and (d := self.bridge.next_deadline()) is not None:
            due.append(self.clock.when(d))  # engine timers wait while the link is down
        return min(due) if due else None

    def _reschedule(self) -> None:
        when = self._next_due()
        if self._timer is not None:
            if when is not None and self._timer.when() == when:
                return
            self._timer.cancel()
            self._timer = None
        if when is not None:
            self._timer = self._loop.call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        now = self._loop.time()
        if self.link is not None:
            self.link.handle_timer(now)
        if not self.link_is_up:
            self._pump()
            return
        engine_now = self.clock.at(now)
        due = self.bridge.next_deadline()
        if due is not None and due - engine_now < 1e-3 * self.clock.speed:
            engine_now = max(engine_now, due)  # loop timers may fire a hair early
        self._take(self.bridge.advance(engine_now))
        self._pump()

    # --- steps: requests now, notifications once per loop turn ----------------------

    def _take(self, step: Step) -> None:
        if step.requests and self.lease is not None:
            self._lease_expired()  # fences: the requests are dropped below
        link = self.link
        for request in step.requests:
            if link is None or not self.link_is_up:
                self.counters["requests_dropped"] += 1
                continue  # the resync when the link is up again covers these
            try:
                link.send(request, self._loop.time())
                self.counters["requests_out"] += 1
            except LocalProtocolError as exc:
                log.error("request %s not sent: %s", request, exc)
        for check in step.checks:
            self._check_pin(check)
        if step.notes:
            self._notes.extend(step.notes)
            if not self._flush_scheduled:
                self._flush_scheduled = True
                self._loop.call_soon(self._flush)

    def _check_pin(self, check: VerifyPin) -> None:
        """Hash the PIN in the PIN thread; the engine gets ``PinChecked`` on the loop."""
        future = self._loop.run_in_executor(
            self._pin_checker, verify_pin, check.pin, check.pin_hash
        )
        future.add_done_callback(lambda f: self._pin_checked(check, f))

    def _pin_checked(self, check: VerifyPin, future: asyncio.Future) -> None:
        if self._closing or future.cancelled():
            return
        ok = future.exception() is None and future.result()
        self._take(self.bridge.command(PinChecked(self.now(), check.check, ok)))
        self._pump()

    def _flush(self) -> None:
        """Start writing the notifications collected, unless a write is in flight (then
        they join the next one: a group commit). Runs once per loop turn."""
        self._flush_scheduled = False
        if self._committing or not self._notes:
            return
        notes, self._notes = self._notes, []
        if self.outbox is None or self._writer_closed:
            self._report(notes, self.outbox is None)  # closed: after the last batch
            return
        # a fenced controller's sessions and legs are the new active one's now
        changed = self.fenced is None and any(type(n) is AgentChanged for n in notes)
        sessions = self.engine.export_sessions() if changed else None
        legs = self.engine.drain_legs() if self.fenced is None else {}
        batch = self.outbox.batch(self.now(), notes, sessions, legs)
        self._unacked.append((batch.seq, notes))
        self._write(self.outbox.put, batch)

    def _write(self, method, *args) -> None:
        """Run an outbox write in the writer thread; `_written` takes its result."""
        self._committing = True
        future = self._loop.run_in_executor(self._writer, method, *args)
        future.add_done_callback(self._written)

    def _written(self, future: asyncio.Future) -> None:
        self._committing = False
        if future.cancelled():
            return
        error = future.exception()
        if error is not None:  # a fault of the outbox itself: say it, the batches wait
            log.error("call records: outbox write failed: %s", error, exc_info=error)
        else:
            self._outbox_state(future.result())
        self._flush()

    def _outbox_state(self, state: Written) -> None:
        """Raise or clear the store-down alarm; report the batches acknowledged; retry
        what waits when the backoff says."""
        if state.down is not None:
            self.counters["store_errors"] += 1
        where = (
            f"in the spool {self.outbox.spool}"
            if state.spooled == state.waiting and self.outbox.spool is not None
            else "in memory only (a crash loses them)"
        )
        if state.spool_error is not None:
            self._spool_log(
                "call records: the outbox spool cannot be written: %s", state.spool_error
            )
        if state.waiting and self._store_down_since is None:
            self._store_down_since = self._loop.time()
            log.error(
                "call-record store unreachable: %s; records wait %s, routing goes on",
                state.down,
                where,
            )
            self._alarm(
                STORE_DOWN_ALARM,
                True,
                "critical",
                f"call-record store unreachable: {state.down}; records wait {where}",
                state.waiting,
            )
        elif not state.waiting and self._store_down_since is not None:
            log.info(
                "call-record store back after %.1f s: every waiting record written",
                self._loop.time() - self._store_down_since,
            )
            self._store_down_since = None
            self._alarm(STORE_DOWN_ALARM, False)
        while self._unacked and self._unacked[0][0] <= state.acked:
            self._report(self._unacked.popleft()[1], True)
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        if state.waiting and not self._closing:
            self._retry = self._loop.call_later(state.retry_in or 0.0, self._retry_due)

    def _retry_due(self) -> None:
        self._retry = None
        if not self._committing and not self._closing:
            self._write(self.outbox.retry)

    def _report(self, notes: list[Notification], stored: bool) -> None:
        """Log and publish notifications (records only once stored)."""
        if stored:
            self._count_answered(notes)
        for note in notes:
            kind = type(note)
            if kind is CallStep:
                self._call_step(note)
            elif kind is CallEnded:
                self.counters["records"] += 1
                self._call_ended(note, stored)
            elif kind is AgentChanged:
                self.counters["agent_changes"] += 1
                log.info(
                    "agent %s %s %s at %s",
                    note.agent_id,
                    note.status,
                    note.state,
                    note.device or "-",
                    extra={"agent_id": note.agent_id, "call_id": note.call_id},
                )
                self._publish_agent(note)
            elif kind is QueueChanged:
                self._queue_changed(note)
            elif kind is Refused:
                log.info("engine refused %s: %s", note.event, note.reason)
            elif kind is PinLocked:
                self._pin_locked(note)
            elif kind is RequestFailed:
                log.warning("request %s failed: %s", note.request, note.error)
            elif kind is Resynced:
                log.info(
                    "resynchronised: %d calls, %d extensions, logged out %s,"
                    " connected calls taken over %s",
                    note.calls,
                    note.devices,
                    ",".join(note.logged_out) or "-",
                    ",".join(map(str, note.adopted)) or "-",
                )
                if note.unverified:
                    log.warning(
                        "logins of %s were keyed while the controller could not hear (no"
                        " PIN checked): not accepted, their handsets asked to log in again",
                        ",".join(note.unverified),
                    )
                if note.unadopted:
                    log.warning(
                        "calls %s are connected at handsets but were never answered here:"
                        " their ends will not be recorded",
                        ",".join(map(str, note.unadopted)),
                    )

    def _call_ended(self, note: CallEnded, stored: bool) -> None:
        r = note.record
        log.log(
            logging.INFO if stored else logging.WARNING,
            "call %d leg %d in %s: %s after %.0f s%s%s%s",
            r.call_id,
            r.leg,
            r.queue,
            r.outcome,
            r.wait,
            f" with {r.agent_id}" if r.agent_id else "",
            " (switch fallback)" if r.fallback else "",
            "" if stored else " (record NOT stored)",
            extra={"call_id": r.call_id, "queue": r.queue, "outcome": str(r.outcome)},
        )
        if not stored:
            return
        if r.offered(self.config.acd.short_abandon):
            answered = r.outcome is Outcome.ANSWERED
            self._alarm_changed(self.alarms.leg_ended(r.queue, r.ended_at, answered))
        self._call_event(
            "ended",
            r.call_id,
            r.ended_at,
            r.arrived_at,
            r.caller,
            queue_id=r.queue,
            agent_id=r.agent_id,
            leg=r.leg,
            outcome=r.outcome,
            wait_s=round(r.wait, 3),
        )

    def _call_step(self, note: CallStep) -> None:
        self._call_event(
            note.event,
            note.call_id,
            note.at,
            note.offered_at,
            note.caller,
            queue_id=note.queue,
            agent_id=note.agent_id,
            device=note.device,
        )

    def _call_event(
        self, event: str, call_id: int, at: float, since: float, caller: str | None, **fields
    ) -> None:
        """Publish a call step on ``event/call``, the caller masked per ``store.mask_callers``."""
        if self.mqtt is not None:
            self.mqtt.call_event(
                call_event_payload(
                    event,
                    str(call_id),
                    ts=at,
                    since=since,
                    seq=next(self._seq),
                    caller=caller,
                    mask_caller=self.config.store.mask_callers,
                    **fields,
                )
            )

    # --- calls answered today, per agent --------------------------------------------

    def _today(self, at: float) -> date:
        """The local day of engine time ``at``; a new day starts the counts afresh."""
        day = datetime.fromtimestamp(at, self._tz).date()
        if day != self._day:
            self._day = day
            self._calls_today = {}
        return day

    def _count_calls_today(self) -> None:
        """Count the answered legs stored today (the counts survive a restart)."""
        start = midnight(self._today(self.now()), self.config.site.timezone)
        for r in self.store.calls(since=start - 86400.0):
            if r.outcome is Outcome.ANSWERED and r.agent_id and r.ended_at >= start:
                self._calls_today[r.agent_id] = self._calls_today.get(r.agent_id, 0) + 1

    def _count_answered(self, notes: list[Notification]) -> None:
        """Count the answered legs among stored ``notes``; republish the agents whose
        count changed and whose state does not change in the same notes."""
        counted = set()
        for note in notes:
            if type(note) is CallEnded and note.record.outcome is Outcome.ANSWERED:
                agent = note.record.agent_id
                if agent:
                    self._today(note.record.ended_at)
                    self._calls_today[agent] = self._calls_today.get(agent, 0) + 1
                    counted.add(agent)
        if counted:
            counted.difference_update(n.agent_id for n in notes if type(n) is AgentChanged)
            for agent in sorted(counted & self._agents.keys()):
                self._publish_agent(self._agents[agent])

    # --- MQTT and alarms ------------------------------------------------------------

    def _commands(self) -> CommandHandler:
        """`command`, unless the broker connection is anonymous: then a refusal of every
        command, as anyone on the broker could send them, or, when the configuration
        says it is a lab (``allow_anonymous_commands``), `command` with a warning."""
        mqtt = self.config.mqtt
        if mqtt.authenticated:
            return self.command
        if mqtt.allow_anonymous_commands:
            log.warning(
                "mqtt: supervisor commands accepted from anyone on the broker: the connection"
                " is not authenticated and mqtt.allow_anonymous_commands = true (a lab set-up)"
            )
            return self.command
        log.warning("mqtt: supervisor commands refused: %s", UNAUTHENTICATED)
        return lambda cmd: UNAUTHENTICATED

    def command(self, cmd: AgentCommand) -> str | None:
        """Apply a supervisor command; None if done, else why it was refused."""
        if cmd.agent_id not in self.config.agents:
            return f"unknown agent {cmd.agent_id!r}"
        event = SetAgentStatus(self.now(), cmd.agent_id, _ACTIONS[cmd.action], cmd.reason or 0)
        step = self.bridge.command(event)
        refusals = [n for n in step.notes if isinstance(n, Refused)]
        self._take(step)
        self._pump()
        outcome = f"refused: {refusals[0].reason}" if refusals else "done"
        log.info("supervisor command %s %s: %s", cmd.action, cmd.agent_id, outcome)
        return refusals[0].reason if refusals else None

    def _pin_locked(self, note: PinLocked) -> None:
        """Raise ``pin-locked-<agent>`` for the lock's length (cleared by a timer)."""
        name = pin_locked_alarm(note.agent_id)
        length = note.until - note.at
        message = (
            f"agent {note.agent_id}: {note.attempts} wrong PINs in a row at {note.device},"
            f" PIN locked for {length:.0f} s"
        )
        self._alarm(name, True, "warning", message, note.attempts)
        self._loop.call_later(length / self.clock.speed, self._lock_over, name, note.until)

    def _lock_over(self, name: str, until: float) -> None:
        if self.now() >= until - 1e-3 and not self._closing:
            self._alarm(name, False)

    def _publish_agent(self, note: AgentChanged) -> None:
        if self.mqtt is None:
            return
        self._agents[note.agent_id] = note
        self._today(note.at)  # a new day resets the counts
        payload = agent_state_payload(
            note.agent_id,
            status=note.status,
            state=note.state,
            ts=note.at,
            since=note.since,
            seq=next(self._seq),
            reason=note.reason if note.status is AgentStatus.NOT_READY else None,
            device=note.device,
            call_id=None if note.call_id is None else str(note.call_id),
            calls_today=self._calls_today.get(note.agent_id, 0),
        )
        self.mqtt.set_agent_state(note.agent_id, payload)

    def _publish_queue(self, f: QueueFigures, at: float) -> None:
        """Publish (retained) a queue's figures at engine time ``at``."""
        if self.mqtt is None:
            return
        figures = {name: getattr(f, name) for name in _FIGURES}
        figures["longest_wait"] = round(f.longest_wait, 3)
        figures["answer_rate"] = f.answered / f.offered if f.offered else None
        day = datetime.fromtimestamp(at, self._tz).date()
        since = midnight(day, self.config.site.timezone)
        self.mqtt.set_queue_stats(
            f.queue, queue_stats_payload(f.queue, figures, ts=at, since=since, seq=next(self._seq))
        )

    def _queue_changed(self, note: QueueChanged) -> None:
        f = note.figures
        self._publish_queue(f, note.at)
        self._alarm_changed(self.alarms.queue_figures(f, note.at))

    def _alarm(
        self,
        name: str,
        active: bool,
        severity: str = "warning",
        message: str = "",
        value: float | None = None,
        threshold: float | None = None,
    ) -> None:
        """Raise (again) or clear ``name`` now."""
        change = self.alarms.set(name, active, self.now(), severity, message, value, threshold)
        self._alarm_changed(change)

    def _alarm_changed(self, change: AlarmChange | None) -> None:
        """Log and publish an alarm raised or cleared."""
        if change is None:
            return
        if not change.active:
            log.info("alarm %s cleared", change.name)
            if self.mqtt is not None:
                self.mqtt.alarm(change.name, None)
            return
        log.warning("alarm %s: %s", change.name, change.message)
        if self.mqtt is not None:
            payload = alarm_payload(
                change.name,
                severity=change.severity,
                message=change.message,
                ts=self.now(),
                since=change.since,
                seq=next(self._seq),
                value=change.value,
                threshold=change.threshold,
            )
            self.mqtt.alarm(change.name, payload)
