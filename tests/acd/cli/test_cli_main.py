from click.testing import CliRunner

from acd import __version__
from acd.cli import COMMANDS, cli


def test_version():
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert __version__ in result.output


def test_help_lists_available_commands():
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for name in cli.list_commands(None):
        assert name in result.output
        assert name in COMMANDS


def test_unknown_command_is_a_usage_error():
    result = CliRunner().invoke(cli, ["no-such-command"])
    assert result.exit_code == 2


def test_an_unexpected_exception_is_one_line_not_a_traceback(monkeypatch):
    import acd.cli.staffing as staffing

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(staffing, "required_agents", broken)
    monkeypatch.delenv("ACD_DEBUG", raising=False)
    result = CliRunner().invoke(cli, ["staffing", "--calls", "10", "--aht", "180", "--sl", "0.8"])
    assert result.exit_code == 1
    assert "internal error: RuntimeError: boom" in result.output
    assert "Traceback" not in result.output
