"""The monitor's pure state model and layout."""

from __future__ import annotations

import json
import os
import re
import time
from datetime import UTC

from hypothesis import given
from hypothesis import strategies as st

from acd.runtime.topics import Topics, agent_state_payload, alarm_payload, encode, status_payload
from acd.tools.monitor_view import MonitorState, render

T = Topics("acd/v1", "town-hall")
NOW = 1_795_860_000.0
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def agent(agent_id, status="ready", state="idle", reason=None, since=NOW - 75, **extra):
    payload = agent_state_payload(
        agent_id,
        status=status,
        state=state,
        ts=NOW,
        since=since,
        seq=1,
        reason=reason,
        device="2" + agent_id[-2:],
    )
    return T.agent_state(agent_id), encode(payload | extra)


def queue(queue_id="front-desk", **figures):
    base = {
        "queue_id": queue_id,
        "waiting": 2,
        "longest_wait_s": 38.5,
        "offered": 120,
        "answered": 118,
        "abandoned": 2,
        "answer_rate": 118 / 120,
        "sl_offered": 0.91,
        "ts": 1,
        "seq": 1,
        "since": 0,
    }
    return T.queue_stats(queue_id), encode(base | figures)


def state_with(*messages, **kw):
    state = MonitorState(T, **kw)
    for topic, payload in messages:
        state.apply(topic, payload)
    state.broker = "up"
    return state


def test_messages_fold_into_the_latest_picture():
    state = state_with(
        (T.status, encode(status_payload(True, ts=NOW, since=NOW - 3600, seq=1))),
        agent("1001"),
        agent("1002", "not_ready", reason=2),
        agent("1001", state="on_call", calls_today=7),
        queue(),
        (
            T.alarm("queue_long.front-desk"),
            encode(
                alarm_payload(
                    "queue_long.front-desk",
                    severity="warning",
                    message="6 waiting",
                    ts=NOW,
                    since=NOW,
                    seq=1,
                )
            ),
        ),
        (T.call_event, b'{"event": "offered"}'),
        ("other/site/agent/1/state", b"{}"),
        (T.agent_state("1003"), b"not json"),
        names={"1001": "Alice Martin"},
        reasons={2: "lunch"},
        targets={"front-desk": 0.99},
    )
    snap = state.snapshot(NOW)
    assert [a["agent_id"] for a in snap["agents"]] == ["1001", "1002"]
    alice, bob = snap["agents"]
    assert (
        alice["state"] == "on_call"
        and alice["calls_today"] == 7
        and alice["name"] == "Alice Martin"
    )
    assert bob["reason"] == 2 and bob["reason_label"] == "lunch"
    (q,) = snap["queues"]
    assert q["target"] == 0.99 and q["below_target"] is True and q["waiting"] == 2
    assert snap["controller"]["online"] is True and snap["link"] == "up"
    assert [a["name"] for a in snap["alarms"]] == ["queue_long.front-desk"]
    assert state.ignored == 2
    json.dumps(snap)  # JSON-ready


def test_alarm_cleared_by_an_empty_retained_message_and_link_down():
    state = state_with(
        (T.status, encode(status_payload(True, ts=NOW, since=NOW, seq=1))),
        (
            T.alarm("link-down"),
            encode(
                alarm_payload(
                    "link-down",
                    severity="critical",
                    message="no RESET-ACK",
                    ts=NOW,
                    since=NOW,
                    seq=2,
                )
            ),
        ),
    )
    assert state.link() == "down"
    state.apply(T.alarm("link-down"), b"")
    assert state.link() == "up" and state.snapshot(NOW)["alarms"] == []
    state.apply(T.status, b'{"online": false, "reason": "connection_lost"}')
    assert state.link() == "unknown"


def test_screen_shows_figures_and_colours_below_target():
    state = state_with(
        (T.status, encode(status_payload(True, ts=NOW, since=NOW - 3600, seq=1))),
        agent("1001", "not_ready", reason=2, since=NOW - 125),
        queue(),
        queue("civil-status", answer_rate=1.0, offered=3, answered=3, abandoned=0),
        reasons={2: "lunch"},
        targets={"front-desk": 0.99, "civil-status": 0.99},
    )
    lines = render(state.snapshot(NOW), 80, 24, colour=True, tz=UTC)
    plain = [ANSI.sub("", line) for line in lines]
    assert plain[0].startswith("town-hall  controller: online since ")
    assert "link: up" in plain[0] and "broker: up" in plain[0]
    front = next(line for line in lines if line.startswith("front-desk"))
    assert "\x1b[31m   98.3%\x1b[0m" in front  # below its 99 % target: red
    civil = next(line for line in lines if line.startswith("civil-status"))
    assert "\x1b[32m  100.0%\x1b[0m" in civil
    row = next(line for line in plain if line.startswith("1001"))
    assert "not_ready" in row and "2 lunch" in row and "2:05" in row
    assert not any("\x1b" in line for line in render(state.snapshot(NOW), colour=False))


@given(
    agents=st.integers(0, 60),
    alarms=st.integers(0, 6),
    width=st.integers(20, 200),
    height=st.integers(6, 60),
)
def test_screen_always_fits(agents, alarms, width, height):
    msgs = [
        agent(f"{1000 + n}", ["ready", "not_ready", "logged_out"][n % 3]) for n in range(agents)
    ]
    msgs += [queue()]
    msgs += [
        (
            T.alarm(f"a{n}"),
            encode(
                alarm_payload(
                    f"a{n}", severity="warning", message="x" * 90, ts=NOW, since=NOW, seq=1
                )
            ),
        )
        for n in range(alarms)
    ]
    lines = render(state_with(*msgs).snapshot(NOW), width, height, colour=True)
    assert len(lines) <= height
    assert all(len(ANSI.sub("", line)) <= width for line in lines)
    text = "\n".join(ANSI.sub("", line) for line in lines)
    if height >= 24 and agents:
        shown = sum(line.startswith("10") for line in text.splitlines())
        if shown < agents:
            assert f"+ {agents - shown} more agents:" in text
    if alarms and height >= 24:
        assert f"ALARMS ({alarms})" in text


def test_broker_down_and_empty_site():
    state = MonitorState(T)
    state.broker = "down"
    plain = [ANSI.sub("", x) for x in render(state.snapshot(NOW), colour=True)]
    assert "broker: down" in plain[0] and "controller: unknown" in plain[0]
    assert "(no queue figures yet)" in plain and "(no agent states yet)" in plain


def test_controller_clock_and_the_controllers_figure_names():
    """A controller running a simulated day: ages on its clock; its figure names."""
    sim_now = NOW - 86_400 * 200
    state = MonitorState(T, targets={"front-desk": 0.99})
    old = round(sim_now * 1000) - 5000
    state.apply(*agent("1001", since=sim_now - 65, ts=old), at=NOW, retained=True)
    state.apply(*agent("1004", status="logged_out", since=0, ts=old), at=NOW, retained=True)
    figures = {
        "queue_id": "front-desk",
        "waiting": 0,
        "longest_wait": 7.5,
        "offered": 120,
        "answered_in_sl": 90,
        "ts": round(sim_now * 1000),
        "seq": 3,
        "since": 0,
    }
    state.apply(T.queue_stats("front-desk"), encode(figures), at=NOW, retained=True)
    snap = state.snapshot(NOW + 10)
    assert abs(snap["time"] / 1000 - (sim_now + 10)) < 1e-3  # newest retained ts
    live = agent("1002", since=sim_now, ts=round(sim_now * 1000) + 15_000)
    state.apply(*live, at=NOW + 20)  # a live message 15 s after the newest
    assert abs(state.controller_time(NOW + 30) - (sim_now + 25)) < 1e-3
    real = MonitorState(T)
    real.apply(*agent("1001", since=NOW - 3600), at=NOW + 5, retained=True)  # an old state
    assert real.controller_time(NOW + 5) == NOW + 5
    (q,) = snap["queues"]
    assert q["longest_wait_s"] == 7.5 and q["sl_offered"] == 0.75
    plain = [ANSI.sub("", x) for x in render(snap, tz=UTC)]
    assert next(x for x in plain if x.startswith("1001")).split()[3] == "1:15"
    assert next(x for x in plain if x.startswith("1004")).split()[3] == "-"


def test_times_are_the_sites_and_cut_names_still_read_apart(monkeypatch):
    """Clock times in the site's zone (not this machine's); names cut with "…" keeping
    their short last word, so that two agents never read alike."""
    since = 1_795_860_000.0  # 10:00:00 UTC, 11:00:00 in Paris, 19:00:00 in Tokyo
    state = state_with(
        (T.status, encode(status_payload(True, ts=since, since=since, seq=1))),
        agent("2001", since=since),
        agent("2002", since=since),
        queue("social-services"),
        names={"2001": "Civil status 1", "2002": "Civil status 2"},
        timezone="Europe/Paris",
    )
    snap = state.snapshot(since + 60)
    old_tz = os.environ.get("TZ")
    os.environ["TZ"] = "Asia/Tokyo"  # this machine's zone: not the site's
    time.tzset()
    try:
        check_views(snap, monkeypatch)
    finally:
        if old_tz is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = old_tz
        time.tzset()


def check_views(snap, monkeypatch):
    from click.testing import CliRunner

    import acd.cli.supervisor as supervisor
    from acd.cli import cli

    assert snap["timezone"] == "Europe/Paris"
    plain = [ANSI.sub("", line) for line in render(snap)]
    assert "online since 11:00:00" in plain[0] and plain[0].endswith("11:01:00")
    rows = [line for line in plain if line.startswith("200")]
    assert [r[7:21] for r in rows] == ["Civil stat… 1 ", "Civil stat… 2 "]
    assert any(line.startswith("social-servi… ") for line in plain)

    monkeypatch.setattr(supervisor, "read_snapshot", lambda *args: snap)
    out = CliRunner().invoke(cli, ["agents", "--site", "town-hall"]).output.splitlines()
    assert [line.split()[:4] for line in out[1:]] == [
        ["2001", "Civil", "status", "1"],
        ["2002", "Civil", "status", "2"],
    ]
    assert all("11:00:00" in line for line in out[1:])
    out = CliRunner().invoke(cli, ["status", "--site", "town-hall"]).output
    assert "online since 11:00:00" in out


def test_a_pair_shows_who_is_active_and_who_waits():
    def head(status: dict) -> str:
        state = state_with((T.status, encode(status)))
        return ANSI.sub("", render(state.snapshot(NOW), 120, 24, tz=UTC)[0])

    base = status_payload(True, ts=NOW, since=NOW - 60, seq=1)
    active = head(base | {"role": "active", "instance": "pc-a", "standby": "pc-b"})
    assert "controller: pc-a online since " in active and ", standby: pc-b" in active
    assert "link: up" in active
    alone = head(base | {"role": "active", "instance": "pc-b", "standby": None})
    assert ", standby: none" in alone
    waiting = head(base | {"role": "standby", "instance": "pc-b", "active": "pc-a"})
    assert "controller: pc-b STANDBY, active: pc-a" in waiting and "link: unknown" in waiting
    gone = head(
        {"online": False, "reason": "connection_lost", "role": "active", "instance": "pc-a"}
    )
    assert "controller: pc-a OFFLINE" in gone
    state = state_with(
        (T.status, encode(base | {"role": "standby", "instance": "pc-b", "active": "pc-a"}))
    )
    assert state.snapshot(NOW)["controller"]["active"] == "pc-a"
