"""Controller parts that need no I/O: the engine clock, extension lists, log lines."""

from __future__ import annotations

import json
import logging

import click
import pytest

from acd.cli.run import parse_extensions
from acd.controller import EngineClock
from acd.logs import JsonFormatter


def test_engine_clock_runs_speed_times_faster_and_maps_back():
    clock = EngineClock(origin_loop=100.0, origin=1_773_129_600.0, speed=60.0)
    assert clock.now(100.0) == 1_773_129_600.0
    assert clock.now(101.5) == 1_773_129_690.0
    assert clock.loop_time(clock.now(123.25)) == pytest.approx(123.25)


def test_extensions_ranges_keep_leading_zeros_and_reject_nonsense():
    assert parse_extensions("201-203, 301,0098-0100") == (
        "201",
        "202",
        "203",
        "301",
        "0098",
        "0099",
        "0100",
    )
    assert parse_extensions("") == ()
    for bad in ("205-201", "2a-3b", "20-301"):
        with pytest.raises(click.BadParameter, match="not EXT or FIRST-LAST"):
            parse_extensions(bad)


def test_json_log_lines_carry_the_event_fields():
    record = logging.LogRecord("acd.controller", logging.INFO, "", 0, "call %d ended", (5,), None)
    record.call_id = 5
    record.outcome = "answered"
    line = json.loads(JsonFormatter().format(record))
    assert line["msg"] == "call 5 ended" and line["level"] == "info"
    assert (line["call_id"], line["outcome"], line["logger"]) == (5, "answered", "acd.controller")
