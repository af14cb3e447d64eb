"""Options and helpers shared by the commands of the `acd` command line."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from typing import Any

import click

json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print the result as JSON (machine readable)."
)

config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    envvar="ACD_CONFIG",
    show_envvar=True,
    help="Configuration file (TOML).",
)


db_option = click.option(
    "--db",
    "db_path",
    type=click.Path(dir_okay=False),
    help="Call-record store: a file or a URL (default: [store] url of --config).",
)


def store_url(db_path: str | None, config: Any, usage: str) -> tuple[str, dict[str, Any]]:
    """The call-record store to read (``--db``, else the ``[store] url`` of ``config``)
    and the options to open it with; ``usage`` is the error when there is neither."""
    if db_path is None:
        if config is None:
            raise click.UsageError(usage)
        db_path = config.store.url
    options = {"password_env": config.store.password_env} if config is not None else {}
    return db_path, options


def check_queue(store: Any, source: str, queue: str | None) -> None:
    """Fail unless the store holds calls of ``queue`` (when one is given)."""
    if queue is not None and queue not in (known := store.queues()):
        fail(f"{source}: no call in queue {queue!r} (queues: {', '.join(known) or 'none'})")


def timeout_option(help: str):
    """``--timeout`` seconds (0.5 to 60, default 5) with the command's own ``help``."""
    return click.option(
        "--timeout", type=click.FloatRange(0.5, 60), default=5.0, show_default=True, help=help
    )


def emit_json(data: Any) -> None:
    """Print one JSON document on standard output."""
    click.echo(json.dumps(data, ensure_ascii=False, default=str))


def fail(message: str) -> None:
    """Stop the command with a one-line error on stderr and exit code 1."""
    raise click.ClickException(message)


def given(*names: str) -> list[str]:
    """The options among ``names`` (parameter names) given rather than left to their
    default, as their flags (``min_answer_rate`` -> ``--min-answer-rate``), in order."""
    ctx = click.get_current_context()
    flags = {p.name: p.opts[0] for p in ctx.command.params}
    default = (None, click.core.ParameterSource.DEFAULT)
    return [flags[n] for n in names if ctx.get_parameter_source(n) not in default]


def refuse(names: tuple[str, ...], why: str) -> None:
    """Fail with ``"--option why"`` for the first of the options ``names`` given: an
    option the combination would ignore is refused, never silently dropped."""
    if flags := given(*names):
        fail(f"{flags[0]} {why}")


def is_tty() -> bool:
    """True when standard output is a terminal (progress displays are shown only then)."""
    return sys.stdout.isatty()


def write_whole(path: str, text: str) -> None:
    """Write ``text`` to ``path`` whole or not at all (a full disk leaves no half file):
    a temporary file beside it, renamed over it once written."""
    tmp = f"{path}.tmp"
    try:
        with open(tmp, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise OSError(exc.errno, exc.strerror, path) from None
