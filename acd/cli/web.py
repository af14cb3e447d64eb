"""`acd web`: the wallboard and supervisor console in a browser (``docs/web.md``)."""

from __future__ import annotations

import asyncio
import signal
import sys

import click

from acd.cli.common import config_option, fail

EPILOG = """\b
Examples:
  acd web --config site.toml                       # http://127.0.0.1:8080/
  acd web --config site.toml --listen 127.0.0.1:9000
  acd web hash-password                            # for [web.users.NAME] password_hash
\b
Broker credentials: [mqtt] of the configuration, or ACD_MQTT_USERNAME,
ACD_MQTT_PASSWORD, ACD_MQTT_TOKEN (a supervisor's account, to send commands).
"""


@click.group(
    invoke_without_command=True,
    short_help="Serve the web wallboard and supervisor console.",
    epilog=EPILOG,
)
@config_option
@click.option("--listen", metavar="HOST:PORT", help="Address to serve on (default: [web] listen).")
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
)
@click.pass_context
def web(ctx: click.Context, config_path: str | None, listen: str | None, log_level: str) -> None:
    """Serve the wallboard (/wallboard) and the supervisor console (/) of every site
    the broker shows ([web] sites: only those), live from MQTT."""
    if ctx.invoked_subcommand is not None:
        return
    from acd.config import load_config
    from acd.logs import setup_logging
    from acd.webconfig import parse_listen

    if config_path is None:
        fail("no configuration: give --config FILE or set ACD_CONFIG")
    config = load_config(config_path)
    listen = listen or config.web.listen
    try:
        parse_listen(listen)
    except ValueError as exc:
        fail(f"--listen {exc}")
    if not config.web.users:
        fail(f"{config_path}: no [web.users.NAME]: nobody could log in (docs/web.md)")
    setup_logging(log_level)
    try:
        asyncio.run(_serve(config, listen))
    except OSError as exc:  # address in use, not allowed
        fail(f"cannot listen on {listen}: {exc.strerror or exc}")


async def _serve(config, listen: str) -> None:
    from drivers.web import serve

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await serve(config, listen, stop)


@web.command("hash-password", short_help="Print the hash of a password for [web.users].")
def hash_password() -> None:
    """Print the hash of a password for ``[web.users.NAME] password_hash`` (salted
    scrypt). Asks for it twice (not echoed); reads one line when input is not a
    terminal.

    \b
    Example:
      acd web hash-password
    """
    from acd.core.pins import hash_pin

    if sys.stdin.isatty():
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if len(password) < 8:
        fail("a password has at least 8 characters")
    click.echo(hash_pin(password))
