"""The alarms on their own (acd.runtime.alarms): raised and cleared once each, windows."""

import dataclasses
from pathlib import Path

from acd.config import AlarmsConfig, QueueConfig, load_config
from acd.core.commands import QueueFigures
from acd.runtime.alarms import Alarms

CONFIG = load_config(Path(__file__).resolve().parents[3] / "examples" / "town-hall.toml")
QUEUES = {"q": QueueConfig("q", target=0.9)}


def _figures(waiting: int) -> QueueFigures:
    fields = {f.name: 0 for f in dataclasses.fields(QueueFigures)}
    return QueueFigures(**{**fields, "queue": "q", "waiting": waiting, "longest_wait": 0.0})


def test_waiting_alarm_is_raised_and_cleared_once_each_across_the_threshold():
    alarms = Alarms(AlarmsConfig(waiting_threshold=2), QUEUES)
    changes = [alarms.queue_figures(_figures(n), at) for at, n in enumerate([1, 2, 3, 4, 2, 1])]
    raised, cleared = changes[2], changes[4]
    assert [c is not None for c in changes] == [False, False, True, False, True, False]
    assert (raised.name, raised.active, raised.since, raised.value) == ("waiting-q", True, 2, 3)
    assert raised.message == "3 callers waiting in q (threshold 2)"
    assert (cleared.name, cleared.active) == ("waiting-q", False)
    assert alarms.active == {}


def test_answer_rate_is_judged_over_its_window_once_enough_legs_ended():
    alarms = Alarms(AlarmsConfig(answer_rate_window=100, answer_rate_min_calls=3), QUEUES)
    assert alarms.leg_ended("q", 0, False) is None  # one leg: not judged yet
    assert alarms.leg_ended("q", 1, True) is None
    low = alarms.leg_ended("q", 2, True)  # 2 of 3 answered, target 90 %
    assert (low.name, low.since, low.value, low.threshold) == ("answer-rate-q", 2, 0.6667, 0.9)
    assert alarms.leg_ended("q", 50, True) is None  # 3 of 4: still low, no new change
    ok = alarms.leg_ended("q", 100.5, True)  # the unanswered leg left the window: 4 of 4
    assert (ok.name, ok.active) == ("answer-rate-q", False)
    assert alarms.leg_ended("elsewhere", 101, False) is None  # a queue not configured


def test_set_raises_again_with_the_first_since_and_clears_only_what_is_active():
    alarms = Alarms(CONFIG.alarms, CONFIG.queues)
    assert alarms.set("link-down", False, 1.0) is None
    assert alarms.set("link-down", True, 2.0, "critical", "down").since == 2.0
    again = alarms.set("link-down", True, 5.0, "critical", "still down")
    assert (again.since, again.message) == (2.0, "still down")
    assert alarms.set("link-down", False, 6.0).active is False
    assert alarms.active == {}


def test_a_reload_keeps_the_windows_of_kept_queues_and_drops_the_others():
    config = AlarmsConfig(answer_rate_window=100, answer_rate_min_calls=2)
    alarms = Alarms(config, {**QUEUES, "old": QueueConfig("old")})
    alarms.leg_ended("q", 0, False)
    alarms.reconfigure(config, QUEUES)
    assert alarms.leg_ended("q", 1, False).active  # the first leg was kept: 0 of 2
    assert alarms.leg_ended("old", 1, False) is None
