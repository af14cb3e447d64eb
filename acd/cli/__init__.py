"""The `acd` command line: a click group whose commands are imported on first use.

Each command lives in its own module of this package; ``COMMANDS`` maps the command
name to ``module:attribute``. Running a command imports only its module, so one
command's heavy dependencies (Construct schemas, asyncio drivers) never slow another.
"""

from __future__ import annotations

import importlib
import os
import sys

import click

from acd import __version__
from acd.errors import AcdError

COMMANDS: dict[str, str] = {
    "run": "acd.cli.run:run",
    "sim": "acd.cli.sim:sim",
    "demo": "acd.cli.demo:demo",
    "staffing": "acd.cli.staffing:staffing",
    "forecast": "acd.cli.forecast:forecast_cmd",
    "schedule": "acd.cli.schedule:schedule",
    "simulate": "acd.cli.simulate:simulate",
    "report": "acd.cli.report:report",
    "decode": "acd.cli.codec:decode",
    "encode": "acd.cli.codec:encode",
    "config": "acd.cli.config:config",
    "ports": "acd.cli.ports:ports",
    "port": "acd.cli.ports:port",
    "monitor": "acd.cli.monitor:monitor",
    "agent": "acd.cli.supervisor:agent",
    "agents": "acd.cli.supervisor:agents",
    "queues": "acd.cli.supervisor:queues",
    "status": "acd.cli.supervisor:status",
    "replay": "acd.cli.replay:replay",
    "mqtt": "acd.cli.mqtt:mqtt",
    "records": "acd.cli.records:records",
    "service": "acd.cli.service:service",
    "web": "acd.cli.web:web",
}


class OneLineUsageError(click.UsageError):
    """A usage error shown as one line naming the problem and the help to read (exit 2)."""

    def __init__(self, exc: click.UsageError) -> None:
        super().__init__(" ".join(exc.format_message().split()).removesuffix("."), exc.ctx)

    def format_message(self) -> str:
        return self.message

    def show(self, file=None) -> None:
        hint = f" (see '{self.ctx.command_path} -h')." if self.ctx is not None else "."
        click.echo(f"Error: {self.message}{hint}", file=file, err=True)


def _one_line(exc: click.UsageError) -> click.UsageError:
    """``exc`` as a one-line usage error; "no arguments: show the help" stays as it is."""
    if isinstance(exc, (OneLineUsageError, click.exceptions.NoArgsIsHelpError)):
        return exc
    return OneLineUsageError(exc)


def _os_problem(exc: OSError) -> str:
    """``path: reason`` of a failed file operation (no Errno, no exception name)."""
    reason = exc.strerror or str(exc)
    names = [n for n in (exc.filename, exc.filename2) if n is not None]
    return f"{' -> '.join(map(str, names))}: {reason}" if names else reason


class LazyGroup(click.Group):
    """A group that imports each command's module only when the command is used.

    Errors leave it as one line on stderr: usage errors exit 2, the errors a user can
    fix (``AcdError``, a file that cannot be read or written) exit 1."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, _, attr = COMMANDS[cmd_name].partition(":")
        return getattr(importlib.import_module(module), attr)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:
            raise _one_line(exc) from None

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            raise _one_line(exc) from None
        except AcdError as exc:
            raise click.ClickException(str(exc)) from None
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except BrokenPipeError:  # the reader went away (acd ... | head): stop quietly
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(1)
        except OSError as exc:  # a missing directory, a read-only or full disk ...
            if os.environ.get("ACD_DEBUG"):
                raise
            raise click.ClickException(_os_problem(exc)) from None
        except Exception as exc:
            if os.environ.get("ACD_DEBUG"):
                raise
            raise click.ClickException(
                f"internal error: {type(exc).__name__}: {exc} (ACD_DEBUG=1 shows the traceback)"
            ) from None


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "auto_envvar_prefix": "ACD"},
)
@click.version_option(__version__, prog_name="acd")
def cli() -> None:
    """acd-controller: automatic call distributor and PBX controller.

    \b
    Examples:
      acd sim --pty                      # a simulated switch on a pseudo-terminal
      acd run --config site.toml         # the controller
      acd demo                           # switch + controller + broker, a simulated day
      acd staffing --calls 100 --interval 1800 --aht 180 --sl 0.8 --threshold 20
    """


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="acd")
