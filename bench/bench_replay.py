"""Capture and replay throughput on one core.

A simulated town-hall hour (08:00-09:00 weekday scenario: switch endpoint, controller
link, bridge and engine in memory, virtual time) is captured to a file, then read back.

Figures:
- ``capture_write_chunks_per_s``: chunks/s appended by `CaptureWriter` (JSON line, flush).
- ``replay_timeline_mb_per_s``: wire megabytes/s from the capture file to timeline
  entries (read, parse, frame decode, message decode, sequence tracking).
- ``replay_timeline_ratio``: timeline time ÷ bare decoding of the same bytes
  (`FrameDecoder` + `decode_message` per direction, no file): the cost of the capture
  format and the bookkeeping.
- ``replay_engine_speedup``: captured seconds replayed through link, bridge and engine
  per second of wall time (``--engine``).
- ``replay_hour_chunks``, ``replay_hour_wire_kb``: size of the captured hour.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from pathlib import Path

from acd.config import load_config
from acd.core.calendar import midnight
from acd.core.engine import Engine
from acd.runtime.bridge import Bridge, controller_link
from acd.runtime.clock import Clock
from acd.tools.replay import Timeline, captured_extensions, engine_requests
from drivers.capture import CaptureWriter, read_capture
from firmware_sim.runner import SwitchEndpoint
from firmware_sim.scenario import load_scenario
from protocols.framing import Ctrl, FrameDecoder
from protocols.link import LinkDown, LinkUp, MessageReceived
from protocols.messages import decode_message

CONFIG = Path(__file__).resolve().parents[1] / "examples" / "town-hall.toml"


def capture_hour(path: Path) -> list[tuple[float, str, bytes]]:
    """Run the simulated hour, capturing every byte; return the chunks too."""
    sc = load_scenario("town-hall-weekday-250")
    start = 7.95 * 3600
    sc = dataclasses.replace(sc, start_s=start, speed=1.0)
    config = load_config(CONFIG)
    base = midnight(sc.day, config.site.timezone) + start
    ep = SwitchEndpoint(sc, Clock(start, 0.0, 1.0))
    link = controller_link(config.link)  # as the controller sets them up
    bridge = Bridge.for_link(Engine(config, base), config.link, config.link.extensions)
    chunks: list[tuple[float, str, bytes]] = []
    with CaptureWriter(path, max_bytes=100_000_000) as writer:

        def record(d: str, data: bytes, now: float) -> None:
            chunks.append((base + now, d, data))
            writer(d, data, base + now)

        def send(requests, now: float) -> None:
            for r in requests:
                link.send(r, now)

        now, end = 0.0, 3600.0
        ep.start(0.0)
        link.start(0.0)
        for _ in range(2_000_000):
            ep.handle_timer(now)
            link.handle_timer(now)
            send(bridge.advance(base + now).requests, now)
            for _ in range(100):
                a = link.data_to_send()
                if a:
                    record("tx", a, now)
                    ep.receive_data(a, now)
                b = ep.data_to_send(now)
                if b:
                    record("rx", b, now)
                    link.receive_data(b, now)
                while (event := link.next_event()) is not None:
                    if isinstance(event, LinkUp):
                        send(bridge.link_up(base + now).requests, now)
                    elif isinstance(event, LinkDown):
                        bridge.link_down()
                    elif isinstance(event, MessageReceived):
                        send(bridge.from_switch(event.message, base + now).requests, now)
                if not a and not b:
                    break
            ours = bridge.next_deadline()
            due = [d for d in (ep.next_deadline(), link.next_deadline()) if d is not None]
            if ours is not None:
                due.append(ours - base)
            if now >= end:
                break
            now = min(max(min(due, default=end), now + 1e-6), end)
    return chunks


def bare_decode(chunks: list[tuple[float, str, bytes]]) -> int:
    decoders = {"rx": FrameDecoder(), "tx": FrameDecoder()}
    n = 0
    for _, d, data in chunks:
        for frame in decoders[d].feed(data):
            if frame.ctrl == Ctrl.INFO:
                decode_message(frame.payload)
            n += 1
    return n


def timeline(path: Path) -> list:
    tl = Timeline()
    entries = []
    for chunk in read_capture(path):
        entries.extend(tl.feed(chunk.t, chunk.d, chunk.data))
    return entries


def best(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def run() -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "hour.cap"
        chunks = capture_hour(path)
        wire = sum(len(c[2]) for c in chunks)
        write_path = Path(tmp) / "write.cap"

        def write() -> None:
            write_path.unlink(missing_ok=True)
            with CaptureWriter(write_path, max_bytes=100_000_000) as w:
                for t, d, data in chunks:
                    w(d, data, t)

        t_write = best(write)
        t_timeline = best(lambda: timeline(path))
        t_bare = best(lambda: bare_decode(chunks))
        entries = timeline(path)
        config = load_config(CONFIG)
        extensions = captured_extensions(entries)
        t_engine = best(lambda: engine_requests(chunks, config, extensions), repeat=2)
        span = chunks[-1][0] - chunks[0][0]
    return {
        "replay_hour_chunks": len(chunks),
        "replay_hour_wire_kb": round(wire / 1024, 1),
        "capture_write_chunks_per_s": round(len(chunks) / t_write),
        "replay_timeline_mb_per_s": round(wire / t_timeline / 1e6, 3),
        "replay_timeline_ratio": round(t_timeline / t_bare, 2),
        "replay_engine_speedup": round(span / t_engine),
    }


if __name__ == "__main__":
    print(run())
