from click import Group
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


def test_help_gives_every_command_a_whole_line():
    """`acd --help` and each group's help show each command's description untruncated."""
    groups = [cli] + [c for n in COMMANDS if isinstance(c := cli.get_command(None, n), Group)]
    for group in groups:
        for name in group.list_commands(None):
            command = group.get_command(None, name)
            assert command.get_short_help_str(limit=1000).strip(), name
        result = CliRunner(env={"COLUMNS": "80"}).invoke(group, ["--help"], terminal_width=80)
        assert result.exit_code == 0, result.output
        listed = result.output.split("Commands:")[1].splitlines()
        assert not [line for line in listed if line.endswith("...")], result.output
