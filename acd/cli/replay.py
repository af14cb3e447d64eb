"""`acd replay`: the decoded timeline of a link capture, or an engine replay of it."""

from __future__ import annotations

from datetime import datetime

import click

from acd.cli.common import config_option, emit_json, fail, json_option
from acd.cli.progress import Progress
from acd.tools.replay import Entry, Filter, Timeline, format_entry, summary

EPILOG = """\b
Examples:
  acd replay line.cap                       # every frame, oldest file first
  acd replay line.cap --call 1042           # one call's messages
  acd replay line.cap --device 201 --op Delivered
  acd replay line.cap --json | jq .op       # one JSON object per entry
  acd replay line.cap --engine --config site.toml   # does the engine do the same?
"""


def clock(t: float) -> str:
    """Local time of day with milliseconds."""
    return datetime.fromtimestamp(t).strftime("%H:%M:%S.%f")[:-3]


Chunks = list[tuple[float, str, bytes]]


def load_timeline(path: str) -> tuple[list[Entry], Chunks]:
    """Decode every chunk of a (rotated) capture, damaged lines marked as errors; also
    return the chunks read."""
    from drivers.capture import CaptureError, capture_files, read_capture

    total = sum(f.stat().st_size for f in capture_files(path))
    timeline = Timeline()
    entries: list[Entry] = []
    chunks: Chunks = []
    last_t = 0.0
    with Progress("decoding", total) as progress:
        for item in read_capture(path):
            if isinstance(item, CaptureError):
                where = f"{item.file} line {item.line}"
                entries.append(timeline.damaged(last_t, where, item.error))
                continue
            last_t = item.t
            chunks.append((item.t, item.d, item.data))
            entries.extend(timeline.feed(item.t, item.d, item.data))
            progress.advance(2 * len(item.data) + 40)
    return entries, chunks


@click.command(short_help="Print or replay a capture made with `acd run --capture`.", epilog=EPILOG)
@click.argument("capture", metavar="FILE", type=click.Path(dir_okay=False))
@click.option("--call", "call_id", type=int, help="Only the frames about this call id.")
@click.option("--device", help="Only the frames about this device (extension).")
@click.option("--op", help="Only this operation (e.g. Delivered) or link frame (e.g. RESET).")
@click.option(
    "--engine",
    is_flag=True,
    help="Feed the switch's messages to a fresh engine and compare its commands.",
)
@config_option
@json_option
def replay(
    capture: str,
    call_id: int | None,
    device: str | None,
    op: str | None,
    engine: bool,
    config_path: str | None,
    as_json: bool,
) -> None:
    """Print the decoded timeline of a capture made with `acd run --capture FILE`.

    Each line: time, direction (<- from the switch, -> to the switch), link frame,
    sequence numbers, then the operation and its fields. Retransmitted frames are
    marked [duplicate]; bytes outside frames, bad CRCs and undecodable payloads are
    marked ERROR. Rotated files (FILE.1, FILE.2 ...) are read first, oldest first.
    """
    entries, chunks = load_timeline(capture)
    if engine:
        _engine_replay(capture, entries, chunks, config_path, as_json)
        return
    keep = Filter(call_id, device, op)
    shown = [e for e in entries if keep(e)]
    if as_json:
        for e in shown:
            emit_json(e.to_dict())
        return
    for e in shown:
        click.echo(format_entry(e, clock(e.t)))
    counts = summary(entries)
    click.echo(
        f"{len(shown)} of {len(entries)} entries shown; {counts['frames']} frames, "
        f"{counts['from_switch']} messages from the switch, {counts['to_switch']} to it, "
        f"{counts['duplicates']} duplicates, {counts['errors']} errors"
    )


def _engine_replay(
    capture: str, entries: list[Entry], chunks: Chunks, config_path: str | None, as_json: bool
) -> None:
    from acd.config import load_config
    from acd.tools.replay import (
        capture_engine_time,
        captured_extensions,
        engine_diff,
        engine_requests,
    )

    if config_path is None:
        fail("--engine needs the site configuration: --config FILE (or ACD_CONFIG)")
    config = load_config(config_path)
    extensions = captured_extensions(entries)
    sent = engine_requests(chunks, config, extensions, capture_engine_time(capture))
    diffs = engine_diff(entries, sent)
    if as_json:
        emit_json(
            {
                "extensions": list(extensions),
                "engine_requests": len(sent),
                "differences": [d.to_dict() for d in diffs],
            }
        )
    elif not diffs:
        click.echo("no difference")
    else:
        for d in diffs:
            click.echo(d.describe(clock))
        click.echo(f"{len(diffs)} difference(s)")
