"""`acd ports` (list serial ports) and `acd port test URL` (check a port or cable)."""

from __future__ import annotations

import click

from acd.cli.common import config_option, emit_json, fail, json_option, timeout_option
from acd.cli.progress import Progress


@click.command(
    short_help="List the serial ports of this machine.",
    epilog="""\b
Examples:
  acd ports
  acd ports --json
""",
)
@json_option
def ports(as_json: bool) -> None:
    """List the serial ports of this machine with description and hardware id."""
    from drivers.port_test import list_serial_ports

    found = list_serial_ports()
    if as_json:
        emit_json([vars(p) for p in found])
        return
    if not found:
        click.echo("no serial ports found")
        return
    width = max(len(p.device) for p in found)
    for p in found:
        click.echo(f"{p.device:<{width}}  {p.description}  [{p.hwid}]")


@click.group(
    epilog="""\b
Examples:
  acd port test /dev/ttyUSB0
"""
)
def port() -> None:
    """Serial port diagnostics."""


@port.command(
    "test",
    epilog="""\b
Examples:
  acd port test /dev/ttyUSB0                 # loopback plug fitted, or the switch
  acd port test /dev/ttyS0 --baud 9600 --parity E
  acd port test /dev/pts/4                   # the pty printed by `acd sim --pty`
  acd port test --config site.toml           # the configured [link] port
""",
)
@click.argument("url", required=False)
@click.option("--baud", "baudrate", type=click.IntRange(50, 4_000_000), help="Baud rate.")
@click.option("--parity", type=click.Choice(["N", "E", "O"]), help="Parity (default N).")
@timeout_option("Seconds to wait for a switch to answer.")
@config_option
@json_option
def test(
    url: str | None,
    baudrate: int | None,
    parity: str | None,
    timeout: float,
    config_path: str | None,
    as_json: bool,
) -> None:
    """Check a serial port or cable and say in plain words what is wrong.

    Opens URL (a device, a pty path, socket://host:port, rfc2217://host:port,
    loop://) exclusively ("busy" if another program holds it), shows its settings, then
    sends a short probe. If the probe comes back, a loopback plug (TX joined to RX) is
    fitted: a 4 KiB pattern is sent at the baud rate and errors and lost bytes are
    counted. Otherwise the CTI link is brought up (RESET / RESET-ACK) with whatever
    switch answers, and a SystemStatus request is sent. Exit 1 when the test fails.
    Settings not given come from the [link] section of --config, else 115200 8N1.
    """
    from acd.config import LinkConfig, load_config
    from drivers.port_test import run_port_test

    link = load_config(config_path).link if config_path else LinkConfig()
    url = url or (link.url if config_path else None)
    if url is None:
        fail("give the port: acd port test URL (or --config with a [link] url)")
    label = f"{url}: waiting for a switch to answer (s)"
    with Progress(label, total=timeout) as progress:  # a silent port takes the whole timeout
        result = run_port_test(
            url,
            baudrate or link.baudrate,
            parity or link.parity,
            timeout=timeout,
            on_wait=lambda waited: progress.advance(waited - progress.done),
        )
    if as_json:
        emit_json(result.to_dict())
    else:
        click.echo(f"port:     {result.url} ({result.settings})")
        click.echo(f"test:     {result.mode}")
        click.echo(f"verdict:  {result.verdict}")
    if not result.ok:
        raise SystemExit(1)
