"""The MQTT bridge: publishes the controller's state and receives supervisor commands.

The controller calls synchronous, non-blocking methods (``set_agent_state``,
``set_queue_stats``, ``call_event``, ``alarm``) that only update an in-memory outbox
and wake the sender task, so a dead or slow broker never delays call routing. A
background task connects with aiomqtt, publishes the birth message and a full
retained snapshot after every (re)connect (clearing the retained topics of a previous
run that the controller no longer publishes), then whatever the outbox holds; it
reconnects with capped exponential backoff. Topics and payloads: ``acd.runtime.topics``.

Usage::

    async with MqttBridge(config.mqtt, "townhall", on_command=controller.command) as mqtt:
        mqtt.set_agent_state("7", agent_state_payload("7", status=..., ...))
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import json
import logging
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import aiomqtt

from acd import __version__
from acd.runtime.topics import (
    WILL_PAYLOAD,
    AgentCommand,
    Refusal,
    Topics,
    encode,
    parse_agent_command,
    reply_payload,
    status_payload,
    valid_topic_name,
)
from drivers.backoff import Backoff
from drivers.log_limit import RateLimitedLog
from drivers.mqtt_outbox import Outbox, Outgoing
from drivers.settings import MqttSettings
from drivers.tls import tls_context

log = logging.getLogger("acd.mqtt")

CommandHandler = Callable[[AgentCommand], "str | Awaitable[str | None] | None"]
"""Applies a valid supervisor command: returns None when accepted, else why it was refused
(``"unknown agent"``); may be a coroutine function."""

COMMAND_TIMEOUT = 5.0  # s the controller has to answer a command
CLIENT_TIMEOUT = 5.0  # s for connect and for each acknowledgement from the broker
IN_FLIGHT = 100  # publications awaiting their PUBACK at a time
SWEEP_SECONDS = 2.0  # s after connecting during which stale retained topics are cleared
KEEPALIVE = 15  # s; the broker publishes the Will after 1.5 x keepalive of silence
RECONNECT_INITIAL, RECONNECT_MAX = 0.5, 2.0
"""Reconnection backoff, s: doubling from the first to the cap (Mosquitto's clients retry
every second), so a broker restart is over for the wallboards within about 2 s."""
STATUS_INTERVAL = 5.0  # s between two controller/status updates announcing drops


_CONNECTION_ERRORS = (aiomqtt.MqttError, OSError)
"""Publication failures that say the connection is gone, not that the message is bad."""


def new_client(
    config: MqttSettings, identifier: str, *, timeout: float = CLIENT_TIMEOUT, **options: Any
) -> aiomqtt.Client:
    """An aiomqtt client (not connected yet) for the broker, credentials and TLS of
    ``config`` (`drivers.tls`); ``options`` go to `aiomqtt.Client` as they are."""
    return aiomqtt.Client(
        config.host,
        config.port,
        username=config.username,
        password=config.password,
        identifier=identifier,
        tls_context=tls_context(config),
        timeout=timeout,
        **options,
    )


def payload_bytes(message: aiomqtt.Message) -> bytes:
    """The payload of a received message as bytes (aiomqtt types it loosely)."""
    payload = message.payload
    if isinstance(payload, bytes | bytearray):
        return bytes(payload)
    return b"" if payload is None else str(payload).encode()


class MqttBridge:
    """Publisher of one site's topic tree, run as an asyncio task.

    Use it as an async context manager (or call ``start`` then ``stop``); ``stop``
    publishes ``{"online": false}`` and disconnects cleanly when connected.
    """

    def __init__(
        self,
        config: MqttSettings,
        site: str,
        *,
        on_command: CommandHandler | None = None,
        max_events: int = 1000,
        max_replies: int = 100,
        reconnect_initial: float = RECONNECT_INITIAL,
        reconnect_max: float = RECONNECT_MAX,
        status_interval: float = STATUS_INTERVAL,
        clock: Callable[[], float] = time.time,
        status_fields: Mapping[str, Any] | None = None,
        mirror: bool = True,
        on_peer: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.config = config
        self.status_fields = dict(status_fields or {})  # role, instance ... (a pair's)
        self.mirror = mirror  # False (a standby): only controller/status, no sweep
        self.on_peer = on_peer  # sees the other controller's controller/status payloads
        self.topics = Topics(config.prefix, site)
        self.on_command = on_command
        self.reconnect_initial = reconnect_initial
        self.reconnect_max = reconnect_max
        self.status_interval = status_interval
        self.clock = clock
        self.client_id = config.client_id or f"acd-{site}-{secrets.token_hex(3)}"
        self.connects = 0
        self.publishes = 0
        self.commands = 0
        self.refused = 0
        self.unpublishable = 0  # messages dropped because no broker would take them
        self.last_error: str | None = None
        self._outbox = Outbox(max_events, max_replies)
        self._seq = itertools.count(1)
        self._connected = False
        self._online_since: float | None = None  # clock time of the first birth
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._logs = {  # problems a remote party can repeat: one line per interval each
            kind: RateLimitedLog(log, logging.ERROR if kind == "bug" else logging.WARNING)
            for kind in (
                "bug",
                "refused",
                "event dropped",
                "reply dropped",
                "unpublishable",
                "impostor",
            )
        }
        self._status_counts: dict[str, int] | None = None  # as last published
        self._status_at = float("-inf")  # loop time of that publication
        self._status_again = False  # publish the status again (fields changed, a peer's)
        self._sent_statuses: deque[bytes] = deque(maxlen=8)  # ours, to know their echoes
        self._offline_at_stop = True

    # -- the controller's side: synchronous, never blocks ---------------------------

    def set_agent_state(self, agent_id: str, payload: Mapping[str, Any]) -> None:
        """Publish (retained) the state of an agent; the latest payload wins."""
        self._outbox.put_retained(self.topics.agent_state(agent_id), encode(payload))
        self._wake.set()

    def set_queue_stats(self, queue_id: str, payload: Mapping[str, Any]) -> None:
        """Publish (retained) a queue's figures, at most once per ``stats_interval``."""
        topic = self.topics.queue_stats(queue_id)
        self._outbox.put_retained(topic, encode(payload), self.config.stats_interval)
        self._wake.set()

    def call_event(self, payload: Mapping[str, Any]) -> None:
        """Publish (not retained) a call event; when too many wait, the oldest is dropped."""
        dropped = self._outbox.dropped
        self._outbox.put_event(self.topics.call_event, encode(payload))
        if self._outbox.dropped > dropped:
            self._logs["event dropped"]("mqtt: call event queue full: dropped the oldest")
        self._wake.set()

    def alarm(self, name: str, payload: Mapping[str, Any] | None) -> None:
        """Raise (retained) or, with ``None``, clear the alarm ``name``."""
        self._outbox.put_retained(
            self.topics.alarm(name), b"" if payload is None else encode(payload)
        )
        self._wake.set()

    def update_status(self, **fields: Any) -> None:
        """Change fields of ``controller/status`` (``standby=...``) and publish it again
        (at most once per second)."""
        self.status_fields.update(fields)
        self._status_again = True
        self._wake.set()

    @property
    def connected(self) -> bool:
        """True while connected with birth, snapshot and subscriptions done (commands work)."""
        return self._connected

    @property
    def drops(self) -> dict[str, int]:
        """What was dropped this run, as published in ``controller/status``."""
        return {
            "dropped_events": self._outbox.dropped,
            "dropped_replies": self._outbox.dropped_replies,
            "unpublishable": self.unpublishable,
        }

    @property
    def counters(self) -> dict[str, Any]:
        """Connects, publishes, drops, commands, refusals, backlog, last error."""
        return {
            "connected": self._connected,
            "connects": self.connects,
            "publishes": self.publishes,
            "dropped_events": self._outbox.dropped,
            "dropped_replies": self._outbox.dropped_replies,
            "commands": self.commands,
            "refused": self.refused,
            "unpublishable": self.unpublishable,
            "pending": self._outbox.pending,
            "last_error": self.last_error,
        }

    # -- life cycle -----------------------------------------------------------------

    def start(self) -> None:
        """Start the background task (in the running event loop)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"mqtt-{self.topics.site}")
            self._task.add_done_callback(_report_crash)

    async def stop(self, timeout: float = 3.0, offline: bool = True) -> None:
        """Flush, publish offline (unless ``offline`` is False: a standby becoming the
        active controller, whose own status follows) and disconnect; give up after
        ``timeout`` seconds."""
        for limited in self._logs.values():
            limited.flush()
        self._offline_at_stop = offline
        self._stop.set()
        self._wake.set()
        task, self._task = self._task, None
        if task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout)
        except TimeoutError:
            log.warning("mqtt: no clean stop within %.1f s, dropping the connection", timeout)
            for _ in range(3):
                task.cancel()
                done, _pending = await asyncio.wait({task}, timeout=1.0)
                if done:
                    break

    async def __aenter__(self) -> MqttBridge:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- the background task --------------------------------------------------------

    def _client(self) -> aiomqtt.Client:
        client = new_client(
            self.config,
            self.client_id,
            will=aiomqtt.Will(self.topics.status, encode(self._will()), qos=1, retain=True),
            keepalive=KEEPALIVE,
            max_inflight_messages=IN_FLIGHT,
        )
        client.pending_calls_threshold = IN_FLIGHT + 1  # aiomqtt warns above it
        return client

    def _will(self) -> dict[str, Any]:
        """The Will: offline, with this controller's role and instance in a pair."""
        mine = {k: self.status_fields[k] for k in ("role", "instance") if k in self.status_fields}
        return {**WILL_PAYLOAD, **mine}

    async def _run(self) -> None:
        backoff = Backoff(self.reconnect_initial, self.reconnect_max)
        while not self._stop.is_set():
            try:
                async with self._client() as client:
                    self.connects += 1
                    backoff.reset()
                    log.info("mqtt: connected to %s:%d", self.config.host, self.config.port)
                    await self._session(client)
            except aiomqtt.MqttError as exc:
                self.last_error = str(exc) or type(exc).__name__
                log.warning("mqtt: %s (retry in %.1f s)", self.last_error, backoff.delay)
            except Exception as exc:  # a bug: start a new session rather than go silent
                self.last_error = f"internal error: {type(exc).__name__}"
                self._logs["bug"](
                    "mqtt: session ended by an error (retry in %.1f s)", backoff.delay, exc_info=exc
                )
            finally:
                self._connected = False
            if self._stop.is_set():
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), backoff.delay)
            backoff.grow()

    async def _session(self, client: aiomqtt.Client) -> None:
        """Birth, snapshot, subscribe; then send and receive until stopped or cut off."""
        if self._online_since is None:
            self._online_since = self.clock()
        await self._publish(client, [self._status(True)])
        loop = asyncio.get_running_loop()
        await self._publish(client, self._outbox.snapshot(loop.time()))
        if self.on_command is not None:
            await client.subscribe(self.topics.agent_command_filter, qos=1)
        if self.on_peer is not None:
            await client.subscribe(self.topics.status, qos=1)
        if self.mirror:
            await client.subscribe([(f, 1) for f in self.topics.retained_filters])
        self._connected = True  # birth, snapshot and subscriptions are in place
        sender = asyncio.create_task(self._send(client))
        receiver = asyncio.create_task(self._receive(client))
        sweep = asyncio.create_task(self._end_sweep(client) if self.mirror else asyncio.sleep(0))
        try:
            done, _ = await asyncio.wait({sender, receiver}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sender, receiver, sweep):
                task.cancel()
            await asyncio.gather(sender, receiver, sweep, return_exceptions=True)
        for task in done:
            task.result()  # re-raises the MqttError that ended the session

    async def _send(self, client: aiomqtt.Client) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self._wake.clear()
            batch = self._outbox.take(loop.time())
            status_due = self._status_due()
            if status_due is not None and status_due <= loop.time():
                batch.append(self._status(True))  # drops to announce
            if batch:
                await self._publish(client, batch)
                continue
            if self._stop.is_set():
                if self._offline_at_stop:
                    await self._publish(client, [self._status(False)])
                return
            due = min(
                (t for t in (self._outbox.next_due(), status_due) if t is not None), default=None
            )
            wait = None if due is None else max(0.0, due - loop.time())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)

    def _status(self, online: bool) -> Outgoing:
        """The ``controller/status`` message now, with the drop counts."""
        now = self.clock()
        counts = self.drops
        payload = status_payload(
            online,
            ts=now,
            since=self._online_since if online and self._online_since is not None else now,
            seq=next(self._seq),
            version=__version__ if online else None,
            counts=counts,
        )
        payload.update(self.status_fields)
        self._status_counts, self._status_at = counts, asyncio.get_running_loop().time()
        self._status_again = False
        message = Outgoing(self.topics.status, encode(payload), True)
        self._sent_statuses.append(message.payload)
        return message

    def _status_due(self) -> float | None:
        """When the status may be published again: its fields changed (after 1 s), or the
        drop counts changed since the last one (after ``status_interval``)."""
        if self._status_again:
            return self._status_at + min(1.0, self.status_interval)
        if self._status_counts is None or self.drops == self._status_counts:
            return None
        return self._status_at + self.status_interval

    async def _publish(self, client: aiomqtt.Client, batch: list[Outgoing]) -> None:
        """Publish (QoS 1) with at most ``IN_FLIGHT`` awaiting their acknowledgement.

        Failures of the connection go back to the outbox and raise (a new session will
        send them); a message that cannot be published at all (the client refuses its
        topic or payload) is dropped and counted, so it never blocks the ones after it."""
        window = asyncio.Semaphore(IN_FLIGHT)

        async def publish(message: Outgoing) -> None:
            async with window:
                await client.publish(message.topic, message.payload, qos=1, retain=message.retain)

        results = await asyncio.gather(*map(publish, batch), return_exceptions=True)
        failed, error = [], None
        for message, result in zip(batch, results, strict=True):
            if isinstance(result, Exception) and not isinstance(result, _CONNECTION_ERRORS):
                self._unpublishable(message.topic, repr(result))
            elif isinstance(result, BaseException):
                failed.append(message)
                error = result
            else:
                self.publishes += 1
                self._outbox.sent(message)
        if failed:
            self._outbox.failed([m for m in failed if m.topic != self.topics.status])
            if isinstance(error, aiomqtt.MqttError):
                raise error
            raise aiomqtt.MqttError(f"publish failed: {error!r}")

    async def _end_sweep(self, client: aiomqtt.Client) -> None:
        """Stop receiving the site's retained topics once the broker has sent them."""
        await asyncio.sleep(SWEEP_SECONDS)
        with contextlib.suppress(aiomqtt.MqttError):  # a lost connection ends the session
            await client.unsubscribe(list(self.topics.retained_filters))

    def _peer(self, message: aiomqtt.Message) -> None:
        """Another controller's ``controller/status`` (a standby's birth, its Will ...):
        given to ``on_peer``; ours, echoed back, is not. One naming this controller that
        it did not send (any client of the broker may publish there) is answered by ours,
        published again."""
        raw = payload_bytes(message)
        try:
            payload = json.loads(raw)
        except ValueError:
            return
        mine = self.status_fields.get("instance")
        if not isinstance(payload, dict) or payload.get("instance") is None:
            return
        if payload["instance"] != mine:
            self.on_peer(payload)
        elif raw not in self._sent_statuses:
            self._logs["impostor"](
                "mqtt: %s names this controller (%s) but is not its own: published ours again",
                self.topics.status,
                mine,
            )
            self.update_status()

    def _sweep(self, message: aiomqtt.Message) -> None:
        """Clear a retained state topic the controller does not publish (a previous run's
        agent, queue or alarm); echoes of our own publications are not retained."""
        topic = str(message.topic)
        if message.retain and message.payload and topic not in self._outbox.retained:
            log.info("mqtt: clearing stale retained %s", topic)
            self._outbox.put_retained(topic, b"")
            self._wake.set()

    async def _receive(self, client: aiomqtt.Client) -> None:
        """Handle commands and the sweep; also ends the session when the connection drops.

        A bug met while handling one message is logged (at most one line per interval)
        and the message refused; the next messages are handled as usual."""
        async for message in client.messages:
            try:
                await self._handle(message)
            except Exception as exc:
                self.refused += 1
                self._logs["bug"](
                    "mqtt: error handling a message on %s", message.topic, exc_info=exc
                )
                with contextlib.suppress(Exception):  # the refusal must not end the loop
                    if message.topic.matches(self.topics.agent_command_filter):
                        self._reply(self.topics.command_error, None, "internal error")

    async def _handle(self, message: aiomqtt.Message) -> None:
        if message.topic.matches(self.topics.status):
            self._peer(message)
            return
        if not message.topic.matches(self.topics.agent_command_filter):
            self._sweep(message)
            return
        result = parse_agent_command(
            self.topics, str(message.topic), payload_bytes(message), self.config.cmd_token
        )
        if isinstance(result, AgentCommand) and message.retain:
            result = Refusal(
                "retained commands are not accepted", result.request_id, result.reply_topic
            )
        if isinstance(result, Refusal):
            self.refused += 1
            self._logs["refused"]("mqtt: command refused: %s", result.error)
            self._reply(result.reply_topic, result.request_id, result.error)
            return
        self.commands += 1
        error = await self._apply(result)
        if error is not None:
            self.refused += 1
        self._reply(result.reply_topic, result.request_id, error)

    async def _apply(self, command: AgentCommand) -> str | None:
        """Run the controller's handler; its failures become refusals, never crashes."""
        assert self.on_command is not None
        try:
            result = self.on_command(command)
            if inspect.isawaitable(result):
                result = await asyncio.wait_for(result, COMMAND_TIMEOUT)
        except TimeoutError:
            return "controller did not answer in time"
        except Exception as exc:
            log.exception("mqtt: command handler failed on %s", command)
            return f"internal error: {type(exc).__name__}"
        if result is not None and not isinstance(result, str):
            log.error("mqtt: command handler returned %r, not str | None", result)
            return "internal error: bad handler result"
        return result

    def _reply(self, topic: str, request_id: str | None, error: str | None) -> None:
        if not valid_topic_name(topic):  # the broker would cut us off: never send it
            self._unpublishable(topic, "not a valid topic name")
            return
        payload = reply_payload(
            request_id, error is None, error, ts=self.clock(), seq=next(self._seq)
        )
        dropped = self._outbox.dropped_replies
        self._outbox.put_reply(topic, encode(payload))
        if self._outbox.dropped_replies > dropped:
            self._logs["reply dropped"]("mqtt: reply queue full: dropped the oldest reply")
        self._wake.set()

    def _unpublishable(self, topic: str, why: str) -> None:
        self.unpublishable += 1
        self._logs["unpublishable"]("mqtt: dropped a message to %.80r: %s", topic, why)


def _report_crash(task: asyncio.Task[None]) -> None:
    """Log a bridge task that died of a bug (broker errors never end it)."""
    if not task.cancelled() and task.exception() is not None:
        log.error("mqtt: bridge stopped by an error", exc_info=task.exception())
