"""docs/mqtt.md documents every topic and every payload field the controller publishes."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path
from types import SimpleNamespace

from acd.core.commands import QueueFigures
from acd.core.records import Outcome
from acd.runtime import topics as t
from drivers.mqtt import MqttBridge

ROOT = Path(__file__).resolve().parents[3]
DOC = (ROOT / "docs" / "mqtt.md").read_text(encoding="utf-8")
NOW = 1_773_129_543.933


def _section(heading: str) -> str:
    """The text from ``heading`` (a line starting with #) to the next heading of its level."""
    level = heading.split(" ", 1)[0]
    start = DOC.index(f"\n{heading}\n")
    end = DOC.find(f"\n{level} ", start + 1)
    return DOC[start : end if end > 0 else None]


def _documented(name: str, text: str) -> bool:
    return f"`{name}`" in text or f'"{name}"' in text


def _topic_pattern(topic: str, base: str) -> str:
    """``acd/v1/s/agent/1001/state`` -> ``agent/<agent_id>/state`` as the table writes it."""
    rest = topic.removeprefix(base + "/")
    rest = rest.replace("/1001/", "/<agent_id>/").replace("/front-desk/", "/<queue_id>/")
    return rest.replace("alarm/link-down", "alarm/<name>").replace("reply/r1", "reply/<request_id>")


DROPS = MqttBridge.drops.fget(  # the counts the bridge adds to controller/status
    SimpleNamespace(_outbox=SimpleNamespace(dropped=0, dropped_replies=0), unpublishable=0)
)


def test_every_topic_is_in_the_topic_tree():
    topics = t.Topics("acd/v1", "s")
    published = [
        topics.status,
        topics.agent_state("1001"),
        topics.queue_stats("front-desk"),
        topics.call_event,
        topics.alarm("link-down"),
        topics.agent_command("1001"),
        topics.reply("r1"),
        topics.command_error,
    ]
    tree = _section("## Topic tree")
    missing = [
        p for p in (_topic_pattern(x, topics.base) for x in published) if f"`{p}`" not in tree
    ]
    assert not missing, f"docs/mqtt.md's topic tree lacks {missing}"


def test_every_payload_field_is_documented_under_its_topic():
    stamp = {"ts": NOW, "seq": 1}
    payloads = {
        "### `controller/status`": t.status_payload(
            True, since=NOW, version="0.1.0", counts=DROPS, **stamp
        )
        | t.WILL_PAYLOAD
        | {"role": "active", "instance": "pc-a", "standby": None, "active": "pc-a"},
        "### `agent/<agent_id>/state`": t.agent_state_payload(
            "1001", status="ready", state="idle", since=NOW, **stamp
        ),
        "### `queue/<queue_id>/stats`": t.queue_stats_payload(
            "front-desk",
            {f.name: 0 for f in fields(QueueFigures) if f.name != "queue"} | {"answer_rate": 1},
            since=NOW,
            **stamp,
        ),
        "### `event/call`": t.call_event_payload("offered", "1", since=NOW, **stamp),
        "### `alarm/<name>`": t.alarm_payload(
            "link-down", severity="critical", message="m", since=NOW, **stamp
        ),
        "## Supervisor commands": t.reply_payload("r1", False, "refused", **stamp),
    }
    common = _section("## Payloads").split("\n### ", 1)[0]
    missing = [
        f"{heading.strip('#` ')}: {name}"
        for heading, payload in payloads.items()
        for name in payload
        if not (_documented(name, _section(heading)) or _documented(name, common))
    ]
    assert not missing, f"fields published but not in docs/mqtt.md: {missing}"


def test_every_alarm_is_in_the_alarm_table():
    table = _section("### `alarm/<name>`")
    names = [
        t.LINK_DOWN_ALARM,
        t.STORE_DOWN_ALARM,
        t.answer_rate_alarm("Q").replace("Q", "<queue_id>"),
        t.waiting_alarm("Q").replace("Q", "<queue_id>"),
        t.pin_locked_alarm("A").replace("A", "<agent_id>"),
    ]
    missing = [n for n in names if not re.search(rf"^\| `{re.escape(n)}` \|", table, re.M)]
    assert not missing, f"docs/mqtt.md's alarm table lacks {missing}"


def test_every_call_event_and_outcome_is_documented():
    events = _section("### `event/call`")
    missing = [k.value for k in t.CallEventKind if f"| `{k.value}` |" not in events]
    missing += [o.value for o in Outcome if f"`{o.value}`" not in events]
    assert not missing, f"docs/mqtt.md's event/call lacks {missing}"
