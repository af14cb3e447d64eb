"""`acd web`'s pure parts (state, grades, sessions, login limit, [web] section), its
HTTP rules without a browser (aiohttp's test client, no broker) and `acd web` options."""

from __future__ import annotations

import asyncio
import json
import re

import pytest
from aiohttp import CookieJar
from aiohttp.test_utils import TestClient, TestServer
from click.testing import CliRunner

from acd.cli import cli
from acd.config import Config
from acd.core.pins import hash_pin, verify_pin
from acd.errors import ConfigError
from acd.tools.webauth import LoginLimiter, Sessions
from acd.tools.webview import WebState, grade

HASH = hash_pin("right-password", n=2**10)


def test_grades_against_the_target():
    assert grade(0.9, 0.8) == "green" and grade(0.8, 0.8) == "green"
    assert grade(0.76, 0.8) == "amber"
    assert grade(0.74, 0.8) == "red"
    assert grade(None, 0.8) is None and grade(0.5, None) is None


def agent(status: str, ts: int = 1000) -> bytes:
    return json.dumps({"status": status, "state": "idle", "ts": ts, "since": ts}).encode()


def test_state_follows_the_visible_sites_only():
    state = WebState("acd/v1", sites=("lyon", "issy"))
    assert state.apply("acd/v1/lyon/agent/7/state", agent("ready"), 1.0)
    assert not state.apply("acd/v1/marseille/agent/7/state", agent("ready"), 1.0)
    assert not state.apply("other/lyon/agent/7/state", agent("ready"), 1.0)
    assert not state.apply("acd/v1/lyon/event/call", b"{}", 1.0)
    snap = state.snapshot(2.0)
    assert [s["site"] for s in snap["sites"]] == ["lyon"]
    assert snap["sites"][0]["agents"][0]["status"] == "ready"


def test_every_site_when_none_listed_and_queues_graded():
    state = WebState("acd/v1", sl_thresholds={("issy", "q"): 20.0})
    stats = {"offered": 10, "answered": 9, "answered_in_sl": 7, "answer_rate": 0.9, "ts": 5}
    state.apply("acd/v1/issy/queue/q/stats", json.dumps({**stats, "target": 0.8}).encode(), 1.0)
    state.apply("acd/v1/lyon/queue/q/stats", json.dumps(stats).encode(), 1.0)
    issy, lyon = state.snapshot(1.0)["sites"]
    q = issy["queues"][0]
    assert (q["rate_grade"], q["sl_grade"], q["sl_threshold"], q["ts"]) == ("green", "red", 20.0, 5)
    assert lyon["queues"][0]["rate_grade"] is None  # no target known for lyon


def test_a_reconnection_forgets_the_old_picture():
    state = WebState("acd/v1")
    state.apply("acd/v1/issy/agent/7/state", agent("ready"), 1.0)
    state.set_broker("down")
    assert state.snapshot(1.0)["broker"] == "down"
    assert state.snapshot(1.0)["sites"][0]["agents"]  # still shown, marked stale
    before = state.version
    state.set_broker("up")
    assert state.version > before
    assert state.snapshot(1.0)["sites"][0]["agents"] == []  # the retained state comes again


def test_sessions_expire_and_anonymous_ones_go_first():
    sessions = Sessions(lifetime=10, limit=2)
    user = sessions.new(0, "sam", "supervisor")
    anon = sessions.new(1)
    assert sessions.get(user.sid, 5) is user and user.csrf_ok(user.csrf)
    assert not user.csrf_ok(anon.csrf) and not user.csrf_ok(None)
    sessions.new(2)  # the limit: the anonymous one goes, not the user's
    assert sessions.get(anon.sid, 3) is None and sessions.get(user.sid, 3) is user
    assert sessions.get(user.sid, 10) is None  # expired


def test_login_limiter_counts_failures_per_key_within_the_window():
    limiter = LoginLimiter(attempts=3, window=60)
    keys = ("ip:1.2.3.4", "user:sam")
    for t in range(3):
        assert limiter.retry_after(keys, t) == 0
        limiter.failed(keys, t)
    assert limiter.retry_after(keys, 3) == pytest.approx(57)
    assert limiter.retry_after(("ip:5.6.7.8", "user:sam"), 3) > 0  # the user, from elsewhere
    assert limiter.retry_after(("ip:5.6.7.8", "user:val"), 3) == 0
    assert limiter.retry_after(keys, 61) == 0
    limiter.failed(keys, 61)
    limiter.succeeded(keys)
    assert limiter.retry_after(keys, 62) == 0


def web_config(**web) -> Config:
    users = {"sam": {"role": "supervisor", "password_hash": HASH}}
    return Config.from_dict({"web": {"users": users, **web}})


def test_web_section_read_and_checked():
    cfg = web_config(listen="127.0.0.1:9000", sites=["issy", "lyon"])
    assert cfg.web.listen == "127.0.0.1:9000" and cfg.web.sites == ("issy", "lyon")
    assert cfg.web.users["sam"].role == "supervisor" and cfg.web.secure_cookies
    assert Config.from_dict({}).web.listen == "127.0.0.1:8080"
    bad = [
        ({"listen": "8080"}, "web.listen: must be HOST:PORT"),
        ({"sites": ["a/b"]}, "web.sites: not a site id"),
        ({"users": {"x": {"role": "boss", "password_hash": HASH}}}, "web.users.x.role"),
        ({"users": {"x": {"role": "viewer", "password_hash": "pw"}}}, "web.users.x.password_hash"),
        ({"users": {"x": {"role": "viewer", "password_hash": HASH, "pw": 1}}}, "web.users.x.pw"),
        ({"colour": "red"}, "web.colour: unknown key"),
    ]
    for section, message in bad:
        with pytest.raises(ConfigError, match=re.escape(message)):
            Config.from_dict({"web": section})


def test_config_diff_never_shows_a_password_hash():
    from acd.config_diff import changes

    other = hash_pin("other-password", n=2**10)
    new = Config.from_dict({"web": {"users": {"sam": {"role": "viewer", "password_hash": other}}}})
    (line,) = changes(web_config(), new)
    assert line == "web.users: {sam (supervisor)} → {sam (viewer)}"
    assert "scrypt" not in line


def test_hash_password_prints_a_hash_that_verifies():
    result = CliRunner().invoke(cli, ["web", "hash-password"], input="correct horse\n")
    assert result.exit_code == 0, result.output
    assert verify_pin("correct horse", result.output.strip())
    short = CliRunner().invoke(cli, ["web", "hash-password"], input="short\n")
    assert short.exit_code == 1 and "at least 8 characters" in short.output


def test_acd_web_refuses_a_configuration_without_users_and_a_bad_listen(tmp_path):
    path = tmp_path / "site.toml"
    path.write_text("[site]\nid = 'issy'\n")
    result = CliRunner().invoke(cli, ["web", "--config", str(path)])
    assert result.exit_code == 1 and "no [web.users.NAME]" in result.output
    path.write_text(f"[web.users.sam]\nrole = 'viewer'\npassword_hash = '{HASH}'\n")
    result = CliRunner().invoke(cli, ["web", "--config", str(path), "--listen", "nowhere"])
    assert result.exit_code == 1 and "--listen must be HOST:PORT" in result.output


async def _client(config: Config) -> TestClient:
    """A client of the app (its cookie jar takes cookies of an IP address)."""
    from drivers.web import WebServer

    server = TestServer(WebServer(config, env={}).app())
    client = TestClient(server, cookie_jar=CookieJar(unsafe=True))
    await client.start_server()
    return client


def _csrf(page: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', page).group(1)


def test_http_rules_login_csrf_rate_limit_and_roles():
    async def main():
        client = await _client(web_config())
        try:
            r = await client.get("/login")
            cookie = r.headers["Set-Cookie"]
            assert all(
                x in cookie for x in ("acd_session=", "HttpOnly", "SameSite=Strict", "Secure")
            )
        finally:
            await client.close()

        client = await _client(web_config(secure_cookies=False))  # the client's http
        try:
            r = await client.get("/", allow_redirects=False)
            assert (r.status, r.headers["Location"]) == (303, "/login?next=/")
            assert (await client.get("/events")).status == 401
            assert (await client.post("/api/agent/issy/7/ready")).status == 401
            page = await (await client.get("/login")).text()
            form = {"username": "sam", "password": "right-password"}
            assert (await client.post("/login", data=form)).status == 403  # no CSRF token
            for _ in range(5):
                bad = {**form, "password": "wrong", "csrf": _csrf(page)}
                assert (await client.post("/login", data=bad)).status == 401
            r = await client.post("/login", data={**form, "csrf": _csrf(page)})
            assert r.status == 429 and "Too many failed logins" in await r.text()
        finally:
            await client.close()

        client = await _client(web_config(secure_cookies=False))
        try:
            page = await (await client.get("/login")).text()
            data = {"username": "sam", "password": "right-password", "csrf": _csrf(page)}
            r = await client.post("/login?next=//evil.example", data=data, allow_redirects=False)
            assert (r.status, r.headers["Location"]) == (303, "/")
            page = await (await client.get("/")).text()
            assert "sam (supervisor)" in page
            token = re.search(r'name="csrf" content="([^"]+)"', page).group(1)
            r = await client.post("/api/agent/issy/7/ready", json={})
            assert r.status == 403  # no CSRF header
            r = await client.post(
                "/api/agent/issy/7/dance", json={}, headers={"X-CSRF-Token": token}
            )
            assert r.status == 400
            r = await client.post(
                "/api/agent/issy/7/ready", json={}, headers={"X-CSRF-Token": token}
            )
            assert await r.json() == {"ok": False, "error": "the broker is not reachable"}
            assert "default-src 'self'" in r.headers["Content-Security-Policy"]
        finally:
            await client.close()

    asyncio.run(main())


def test_report_query_checked():
    from datetime import date

    from acd.tools.webreport import ReportQuery

    today = date(2026, 3, 10)
    q = ReportQuery.parse({}, today, ["front-desk"])
    assert (q.first, q.last, q.by, q.queue) == (today, today, "hour", None)
    q = ReportQuery.parse({"from": "2026-03-01", "to": "2026-03-31", "by": "day"}, today, [])
    assert q.params() == "from=2026-03-01&to=2026-03-31&by=day"
    for bad, message in (
        ({"from": "10/03/2026"}, "dates look like"),
        ({"from": "2026-03-10", "to": "2026-03-09"}, "before"),
        ({"from": "2025-01-01", "to": "2026-03-09"}, "at most 366 days"),
        ({"by": "agent"}, "by must be one of"),
        ({"queue": "nope"}, "no queue 'nope'"),
    ):
        with pytest.raises(ValueError, match=message):
            ReportQuery.parse(bad, today, ["front-desk"])


def test_report_page_says_what_is_wrong(tmp_path):
    async def main():
        config = Config.from_dict(
            {
                "store": {"url": str(tmp_path / "missing.db")},
                "web": {
                    "secure_cookies": False,
                    "users": {"val": {"role": "viewer", "password_hash": HASH}},
                },
            }
        )
        client = await _client(config)
        try:
            page = await (await client.get("/login")).text()
            data = {"username": "val", "password": "right-password", "csrf": _csrf(page)}
            await client.post("/login", data=data)
            r = await client.get("/report?from=yesterday")
            assert r.status == 400 and "dates look like 2026-03-10" in await r.text()
            r = await client.get("/report.csv?from=2026-03-10")
            assert r.status == 400 and "missing.db" in (await r.json())["error"]
        finally:
            await client.close()

    asyncio.run(main())


def test_streams_share_one_encoded_picture_until_it_changes(monkeypatch):
    from drivers import web

    server = web.WebServer(web_config(), env={})
    clock = [100.0]
    monkeypatch.setattr(web.time, "monotonic", lambda: clock[0])
    first = server._state_event()
    assert server._state_event() is first  # the next stream: the same bytes
    server.state.apply("acd/v1/issy/agent/7/state", agent("ready"), 1.0)
    changed = server._state_event()
    assert changed is not first and b'"issy"' in changed
    clock[0] += web.EVENT_CACHE  # a stream opened later gets the time of now
    assert server._state_event() is not changed
