"""The simulated switch's clock, shared with a controller told to follow it.

`acd sim` runs its day from a chosen time (``--start 10:00``) at a chosen speed, not on
this machine's clock; a controller on the real clock would then judge the calls against
the wrong hour (a town hall closed at 22:00 refuses every call the 10:00 simulation
offers). While it serves, `acd sim` publishes its clock in a small JSON file named after
the URL it serves (`publish`); ``acd run --sim-clock`` reads it (`follow`) and runs the
engine on the same clock: local time ``start`` at ``CLOCK_MONOTONIC`` ``origin``,
``speed`` simulated seconds per second (the ``--start``/``--origin``/``--speed`` of
``acd run``). Both ends are an `acd.runtime.clock.Clock`: the switch's reads seconds after
midnight of the simulated day, the engine's epoch seconds.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

from acd.errors import AcdError
from acd.runtime.clock import Clock


def clock_file(url: str) -> Path:
    """Where the clock of the simulated switch serving ``url`` is published."""
    name = re.sub(r"[^A-Za-z0-9]+", "-", url).strip("-")
    return Path(tempfile.gettempdir()) / f"acd-sim-{os.getuid()}" / f"{name}.json"


@contextlib.contextmanager
def publish(url: str, day: dt.date, clock: Clock) -> Iterator[Path]:
    """Publish the simulated switch's ``clock`` (seconds after midnight of ``day``, local
    time, from monotonic time) for ``url`` while the ``with`` block runs."""
    path = clock_file(url)
    path.parent.mkdir(mode=0o700, exist_ok=True)
    start = dt.datetime.combine(day, dt.time()) + dt.timedelta(seconds=clock.start)
    data = {
        "url": url,
        "pid": os.getpid(),
        "start": start.isoformat(),
        "origin": clock.origin,
        "speed": clock.speed,
    }
    path.write_text(json.dumps(data) + "\n")
    try:
        yield path
    finally:
        with contextlib.suppress(OSError):
            path.unlink()


def follow(url: str, tz: ZoneInfo) -> Clock:
    """The clock of the `acd sim` serving ``url`` as engine time (epoch seconds, the
    simulated local time read in ``tz``); `AcdError` when none does."""
    missing = AcdError(
        f"--sim-clock: no acd sim serves {url} (start `acd sim --pty` first and give"
        " --link the port it printed)"
    )
    try:
        data = json.loads(clock_file(url).read_text())
        pid, origin, speed = int(data["pid"]), float(data["origin"]), float(data["speed"])
        start = dt.datetime.fromisoformat(data["start"])
    except (OSError, ValueError, KeyError, TypeError):
        raise missing from None
    try:
        os.kill(pid, 0)  # a file left by a simulator that was killed is stale
    except ProcessLookupError:
        raise missing from None
    except PermissionError:
        pass
    if data["url"] != url or origin > time.monotonic():  # older than this boot
        raise missing
    return Clock(start.replace(tzinfo=tz).timestamp(), origin, speed)
