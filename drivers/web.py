"""`acd web`: the wallboard and supervisor console, an aiohttp server beside an MQTT client.

Why aiohttp: one well-kept asyncio dependency gives the HTTP server, streamed responses
for server-sent events and cookies; sessions, CSRF tokens and the login rate limit are
small enough to keep here (`acd.tools.webauth`) rather than add more packages.

The MQTT client subscribes to the trees of the visible sites (``<prefix>/+/...`` or the
listed ones), folds every message into `acd.tools.webview.WebState` and wakes the event
streams; it reconnects by itself (0.5 s doubling to 2 s, as the bridge), the pages show
"stale" meanwhile. Supervisor commands are the MQTT commands of ``docs/mqtt.md``, their
replies read on ``cmd/reply/<request_id>``.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from datetime import date, datetime
from importlib import resources
from typing import Any
from zoneinfo import ZoneInfo

import aiomqtt
from aiohttp import web

from acd.config import Config
from acd.core.pins import hash_pin, verify_pin
from acd.errors import AcdError
from acd.planning.reporting import Report, ReportSettings, day_window, store_report, to_csv
from acd.runtime.store import open_readonly
from acd.runtime.topics import CommandAction, Topics, check_id, encode
from acd.tools.monitor_view import MonitorState, configured_state
from acd.tools.webauth import LoginLimiter, Session, Sessions
from acd.tools.webreport import BYS, ReportQuery, chart, table
from acd.tools.webview import WebState
from acd.webconfig import parse_listen
from drivers.backoff import Backoff
from drivers.mqtt import RECONNECT_INITIAL, RECONNECT_MAX, new_client, payload_bytes

log = logging.getLogger("acd.web")
STATIC = resources.files("acd") / "static"
COOKIE = "acd_session"
REPLY_TIMEOUT = 5.0  # s to wait for the controller's reply to a command
HEARTBEAT = 5.0  # s between comments on an idle event stream (the page's watchdog: 15 s)
COALESCE = 0.05  # s: changes closer than this go in one event
EVENT_CACHE = 0.5  # s an encoded picture is reused by the streams
_DUMMY_HASH = hash_pin(secrets.token_hex(8))  # checked for unknown users: same time spent
SESSION: Any = web.RequestKey("session", Session) if hasattr(web, "RequestKey") else "session"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class WebServer:
    """State, MQTT client and HTTP application of one `acd web` process."""

    def __init__(self, config: Config, env: dict[str, str] | None = None) -> None:
        from drivers.mqtt_client import connection

        self.config = config
        self.mqtt = connection(config.mqtt, config.site.id, env=env).mqtt
        own = config.site.id
        self.state = WebState(
            self.mqtt.prefix,
            config.web.sites,
            new_site=lambda topics: self._new_site(topics),
            sl_thresholds={(own, q.id): q.sl_threshold for q in config.queues.values()},
        )
        self.sessions = Sessions(config.web.session_hours * 3600)
        self.limiter = LoginLimiter()
        self.client: aiomqtt.Client | None = None
        self.pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.changed = asyncio.Event()
        self.closing = False
        self._event_cache: tuple[tuple[int, int], bytes] = ((-1, 0), b"")

    def close(self) -> None:
        """End the event streams (at shutdown)."""
        self.closing = True
        self._touch()

    def _new_site(self, topics: Topics) -> MonitorState:
        own = topics.site == self.config.site.id
        return configured_state(topics, self.config if own else None)

    def _touch(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()

    # --- MQTT -----------------------------------------------------------------------

    def filters(self) -> list[str]:
        """The topic filters of the visible sites' state and command replies."""
        sites = self.config.web.sites or ("+",)
        tails = ("controller/status", "agent/+/state", "queue/+/stats", "alarm/+", "cmd/reply/+")
        return [f"{self.mqtt.prefix}/{s}/{t}" for s in sites for t in tails]

    async def run_mqtt(self) -> None:
        """Follow the broker forever, reconnecting after any loss."""
        backoff = Backoff(RECONNECT_INITIAL, RECONNECT_MAX)
        while True:
            try:
                ident = f"acd-web-{secrets.token_hex(4)}"
                async with new_client(self.mqtt, ident, timeout=REPLY_TIMEOUT) as client:
                    for f in self.filters():
                        await client.subscribe(f, qos=1)
                    self.client = client
                    backoff.reset()
                    self.state.set_broker("up")
                    self._touch()
                    log.info(
                        "web: connected to the broker at %s:%s", self.mqtt.host, self.mqtt.port
                    )
                    async for message in client.messages:
                        self._on_message(
                            str(message.topic), payload_bytes(message), bool(message.retain)
                        )
            except aiomqtt.MqttError as exc:
                if self.state.broker != "down":
                    log.warning("web: broker %s:%s lost: %s", self.mqtt.host, self.mqtt.port, exc)
            self.client = None
            self.state.set_broker("down")
            self._touch()
            await asyncio.sleep(backoff.delay)
            backoff.grow()

    def _on_message(self, topic: str, payload: bytes, retained: bool) -> None:
        _head, sep, request_id = topic.rpartition("/cmd/reply/")
        if sep:
            future = self.pending.get(request_id)
            with contextlib.suppress(ValueError):
                reply = json.loads(payload)
                if future is not None and not future.done() and isinstance(reply, dict):
                    future.set_result(reply)
            return
        if self.state.apply(topic, payload, time.time(), retained):
            self._touch()

    async def command(
        self, site: str, agent_id: str, action: CommandAction, reason: int | None
    ) -> dict[str, Any]:
        """Send one supervisor command and return the controller's reply (``ok``,
        ``error``); ``{"ok": False, "error": ...}`` when none came in time."""
        client = self.client
        if client is None:
            return {"ok": False, "error": "the broker is not reachable"}
        request_id = f"web-{secrets.token_hex(6)}"
        body: dict[str, Any] = {"action": action.value, "request_id": request_id}
        if reason is not None:
            body["reason"] = reason
        if self.mqtt.cmd_token is not None:
            body["token"] = self.mqtt.cmd_token
        future = self.pending[request_id] = asyncio.get_running_loop().create_future()
        try:
            topic = Topics(self.mqtt.prefix, site).agent_command(agent_id)
            await client.publish(topic, encode(body), qos=1, retain=False)
            async with asyncio.timeout(REPLY_TIMEOUT):
                return await future
        except TimeoutError:
            return {
                "ok": False,
                "error": f"no reply from the controller of {site} within {REPLY_TIMEOUT:g} s",
            }
        except aiomqtt.MqttError as exc:
            return {"ok": False, "error": f"broker: {exc}"}
        finally:
            self.pending.pop(request_id, None)

    # --- HTTP -----------------------------------------------------------------------

    def app(self) -> web.Application:
        """The aiohttp application (routes, session and security-header middleware)."""
        app = web.Application(middlewares=[self._session_middleware])
        app.router.add_get("/", self._page("console.html"))
        app.router.add_get("/wallboard", self._page("wallboard.html"))
        app.router.add_get("/login", self.login_form)
        app.router.add_post("/login", self.login)
        app.router.add_post("/logout", self.logout)
        app.router.add_get("/events", self.events)
        app.router.add_get("/api/state", self.api_state)
        app.router.add_post("/api/agent/{site}/{agent}/{action}", self.agent_action)
        app.router.add_get("/report", self.report_page)
        app.router.add_get("/report.csv", self.report_csv)
        app.router.add_get("/chart/today.svg", self.today_chart)
        app.router.add_get("/static/{name}", self.static)
        return app

    @web.middleware
    async def _session_middleware(
        self, request: web.Request, handler: Handler
    ) -> web.StreamResponse:
        now = time.time()
        session = self.sessions.get(request.cookies.get(COOKIE), now)
        public = request.path in ("/login",) or request.path.startswith("/static/")
        if (session is None or session.user is None) and not public:
            if request.path in ("/", "/wallboard", "/report"):
                return redirect(f"/login?next={request.path}")
            return json_error(401, "log in first")
        if session is None:
            session = self.sessions.new(now)
        request[SESSION] = session
        response = await handler(request)
        if request.cookies.get(COOKIE) != request[SESSION].sid:
            self._set_cookie(response, request[SESSION])
        h = response.headers
        h.setdefault("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'")
        h.setdefault("X-Content-Type-Options", "nosniff")
        h.setdefault("Referrer-Policy", "no-referrer")
        h.setdefault("Cache-Control", "no-store")
        return response

    def _set_cookie(self, response: web.StreamResponse, session: Session) -> None:
        if not response.prepared:
            response.set_cookie(
                COOKIE, session.sid, httponly=True, samesite="Strict", path="/",
                secure=self.config.web.secure_cookies,
                max_age=int(self.config.web.session_hours * 3600),
            )  # fmt: skip

    def _page(self, name: str) -> Handler:
        async def page(request: web.Request) -> web.Response:
            s: Session = request[SESSION]
            return web.Response(text=render(name, s), content_type="text/html")

        return page

    async def static(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        kinds = {".css": "text/css", ".js": "text/javascript"}
        kind = next((k for e, k in kinds.items() if name.endswith(e)), None)
        path = STATIC / name
        if kind is None or "/" in name or not path.is_file():
            raise web.HTTPNotFound()
        return web.Response(body=path.read_bytes(), content_type=kind)

    async def login_form(self, request: web.Request) -> web.Response:
        return login_page(request[SESSION], "")

    async def login(self, request: web.Request) -> web.Response:
        form = await request.post()
        session: Session = request[SESSION]
        if not session.csrf_ok(str(form.get("csrf", ""))):
            return login_page(session, "The form expired: please try again.", 403)
        user, password = str(form.get("username", "")), str(form.get("password", ""))
        ip = request.remote or "?"
        keys = (f"ip:{ip}", f"user:{user}")
        now = time.time()
        wait = self.limiter.retry_after(keys, now)
        if wait > 0:
            log.warning("web: login of %r from %s refused: too many failures", user[:40], ip)
            return login_page(session, f"Too many failed logins: try again in {wait:.0f} s.", 429)
        account = self.config.web.users.get(user)
        digest = account.password_hash if account else _DUMMY_HASH
        ok = await asyncio.get_running_loop().run_in_executor(None, verify_pin, password, digest)
        if not ok or account is None:
            self.limiter.failed(keys, now)
            log.warning("web: failed login for %r from %s", user[:40], ip)
            return login_page(session, "Wrong user name or password.", 401)
        self.limiter.succeeded(keys)
        self.sessions.drop(session.sid)
        request[SESSION] = self.sessions.new(now, account.name, account.role)
        log.info("web: %s (%s) logged in from %s", account.name, account.role, ip)
        target = str(request.query.get("next", "/"))
        return redirect(target if target in ("/", "/wallboard") else "/")

    async def logout(self, request: web.Request) -> web.Response:
        session: Session = request[SESSION]
        form = await request.post()
        if not session.csrf_ok(str(form.get("csrf", ""))):
            return json_error(403, "bad CSRF token")
        log.info("web: %s logged out", session.user)
        self.sessions.drop(session.sid)
        request[SESSION] = self.sessions.new(time.time())
        return redirect("/login")

    async def api_state(self, request: web.Request) -> web.Response:
        return web.json_response(self.state.snapshot(time.time()))

    async def events(self, request: web.Request) -> web.StreamResponse:
        """Server-sent events: the whole picture at once, then again after each change
        (coalesced over `COALESCE` s); a comment every `HEARTBEAT` s when idle."""
        session: Session = request[SESSION]
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"}
        )
        await response.prepare(request)
        with contextlib.suppress(ConnectionResetError):  # the page went away: normal
            await response.write(b"retry: 1000\n\n")
            sent = -1
            while not self.closing and self.sessions.get(session.sid, time.time()) is session:
                changed = self.changed  # taken first: a change from now on wakes us
                if self.state.version != sent:
                    sent = self.state.version
                    await response.write(self._state_event())
                try:
                    await asyncio.wait_for(changed.wait(), HEARTBEAT)
                    await asyncio.sleep(COALESCE)
                except TimeoutError:
                    await response.write(b"event: ping\ndata: {}\n\n")
        return response

    async def _report(self, request: web.Request) -> tuple[ReportQuery, Report]:
        """The report the page asks for, read from the store off the loop; `ValueError`
        or `AcdError` saying what is wrong."""
        config = self.config
        tz = ZoneInfo(config.site.timezone)
        query = ReportQuery.parse(dict(request.query), self._today(), sorted(config.queues))

        def read() -> Report:
            settings = ReportSettings.from_config(config, queue=query.queue)
            since, until = day_window(query.first, tz)[0], day_window(query.last, tz)[1]
            options = {"password_env": config.store.password_env}
            with open_readonly(config.store.url, **options) as store:
                return store_report(store, settings, since, until)

        return query, await asyncio.get_running_loop().run_in_executor(None, read)

    def _today(self) -> date:
        """The site's day on its controller's clock (a simulated day's in a demo), else
        on ours."""
        state = self.state.sites.get(self.config.site.id)
        now = state.controller_time(time.time()) if state is not None else time.time()
        return datetime.fromtimestamp(now, ZoneInfo(self.config.site.timezone)).date()

    async def report_page(self, request: web.Request) -> web.Response:
        """``/report``: a day range of the site's store as a table and a chart."""
        session: Session = request[SESSION]
        today = self._today().isoformat()
        values = {"from": request.query.get("from", today), "to": request.query.get("to", "")}
        raw = {"chart": "", "table": ""}
        error, title, params = "", self.config.site.id, ""
        by, queue = request.query.get("by", "hour"), request.query.get("queue", "")
        try:
            query, report = await self._report(request)
        except (ValueError, AcdError) as exc:
            error = str(exc)
        else:
            raw = {"chart": chart(report, query.by), "table": table(report, query.by)}
            values = {"from": str(query.first), "to": str(query.last)}
            title = f"{self.config.site.id}, {query.queue or 'all queues'}, {report.span_text()}"
            params = query.params()
        raw["by_options"] = _options(BYS, by)
        raw["queue_options"] = _options(("", *sorted(self.config.queues)), queue, {"": "all"})
        page = render(
            "report.html", session, raw, title=title, error=error, params=params, **values
        )
        return web.Response(text=page, content_type="text/html", status=400 if error else 200)

    async def today_chart(self, request: web.Request) -> web.Response:
        """``/chart/today.svg``: today's figures per hour against the target, as an image
        for the console (the report page's chart of today)."""
        try:
            query, report = await self._report(request)
        except (ValueError, AcdError) as exc:
            return json_error(400, str(exc))
        return web.Response(text=chart(report, query.by), content_type="image/svg+xml")

    async def report_csv(self, request: web.Request) -> web.Response:
        """``/report.csv``: the same rows as CSV (what ``acd report --csv`` writes)."""
        try:
            query, report = await self._report(request)
        except (ValueError, AcdError) as exc:
            return json_error(400, str(exc))
        name = f"acd-{self.config.site.id}-{query.first}-{query.last}-{query.by}.csv"
        return web.Response(
            text=to_csv(report, query.by),
            content_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    def _state_event(self) -> bytes:
        """The ``state`` event of the current picture, encoded once for every stream
        (100 wallboards cost one snapshot, not 100); made again after a change or when
        older than `EVENT_CACHE` s (its ``time`` sets the pages' clock)."""
        key = (self.state.version, int(time.monotonic() / EVENT_CACHE))
        if self._event_cache[0] != key:
            data = json.dumps(self.state.snapshot(time.time()), separators=(",", ":"))
            self._event_cache = (key, f"event: state\ndata: {data}\n\n".encode())
        return self._event_cache[1]

    async def agent_action(self, request: web.Request) -> web.Response:
        session: Session = request[SESSION]
        if session.role != "supervisor":
            log.warning("web: %s (%s) tried %s: refused", session.user, session.role, request.path)
            return json_error(403, "only a supervisor may act on agents")
        if not session.csrf_ok(request.headers.get("X-CSRF-Token")):
            return json_error(403, "bad CSRF token")
        site, agent_id = request.match_info["site"], request.match_info["agent"]
        try:
            check_id("site", site)
            action = CommandAction(request.match_info["action"])
            body = await request.json() if request.can_read_body else {}
            reason = body.get("reason") if isinstance(body, dict) else None
            if reason is not None and (not isinstance(reason, int) or isinstance(reason, bool)):
                raise ValueError("reason must be an integer")
        except ValueError as exc:
            return json_error(400, str(exc))
        reply = await self.command(site, agent_id, action, reason)
        extra = f" (reason {reason})" if reason is not None else ""
        outcome = "accepted" if reply.get("ok") else f"refused: {reply.get('error')}"
        log.info(
            "web: %s set agent %s of %s %s%s: %s",
            session.user,
            agent_id,
            site,
            action.value,
            extra,
            outcome,
        )
        return web.json_response({"ok": bool(reply.get("ok")), "error": reply.get("error")})


def _options(values, chosen: str, labels: dict[str, str] | None = None) -> str:
    """``<option>`` elements, ``chosen`` selected."""
    labels = labels or {}
    return "".join(
        f'<option value="{html.escape(v)}"{" selected" if v == chosen else ""}>'
        f"{html.escape(labels.get(v, v))}</option>"
        for v in values
    )


def redirect(location: str) -> web.Response:
    """A 303 to ``location`` (a path of ours)."""
    return web.Response(status=303, headers={"Location": location})


def json_error(status: int, message: str) -> web.Response:
    """A JSON ``{"ok": false, "error": ...}`` response."""
    return web.json_response({"ok": False, "error": message}, status=status)


def render(name: str, session: Session, raw: dict[str, str] | None = None, **values: str) -> str:
    """A page of ``acd/static`` with ``{{user}}``, ``{{role}}``, ``{{csrf}}`` (and
    ``values``) filled in, HTML-escaped; ``raw`` values are HTML made by us."""
    text = (STATIC / name).read_text()
    fields = {
        "user": session.user or "",
        "role": session.role or "",
        "csrf": session.csrf,
        **values,
    }
    for key, value in fields.items():
        text = text.replace("{{" + key + "}}", html.escape(value))
    for key, value in (raw or {}).items():
        text = text.replace("{{" + key + "}}", value)
    return text


def login_page(session: Session, error: str, status: int = 200) -> web.Response:
    """The login form, with ``error`` shown when not empty."""
    return web.Response(
        text=render("login.html", session, error=error), content_type="text/html", status=status
    )


async def serve(
    config: Config,
    listen: str,
    stop: asyncio.Event,
    env: dict[str, str] | None = None,
    listening: asyncio.Event | None = None,
) -> None:
    """Run `acd web` on ``listen`` (``host:port``) until ``stop`` is set; ``env`` in
    place of the process's environment for the broker credentials; ``listening`` is set
    once it accepts connections."""
    host, port = parse_listen(listen)
    server = WebServer(config, env)
    runner = web.AppRunner(server.app(), access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    sites = ", ".join(config.web.sites) or "every site"
    log.info(
        "web: listening on http://%s:%d/ (%s under %s/)", host, port, sites, server.mqtt.prefix
    )
    mqtt = asyncio.create_task(server.run_mqtt())
    if listening is not None:
        listening.set()
    try:
        await stop.wait()
    finally:
        server.close()
        mqtt.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await mqtt
        await runner.cleanup()
