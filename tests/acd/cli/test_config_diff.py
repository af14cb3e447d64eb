"""`acd config diff OLD NEW`: what a reload would change, secrets hidden."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from acd.cli import cli

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = (ROOT / "examples" / "town-hall.toml").read_text()


def diff(tmp_path, new_text: str, *options: str):
    new = tmp_path / "new.toml"
    new.write_text(new_text)
    return CliRunner().invoke(
        cli, ["config", "diff", str(ROOT / "examples/town-hall.toml"), str(new), *options]
    )


def test_diff_lists_each_change_and_marks_what_needs_a_restart(tmp_path):
    start = EXAMPLE.index("[agents.1003]")
    end = EXAMPLE.index("[agents.", start + 1)
    text = (EXAMPLE[:start] + EXAMPLE[end:]).replace("ring_timeout = 15.0", "ring_timeout = 20.0")
    text = text.replace("baudrate = 115200", "baudrate = 9600")
    text = text.replace('overflow = "clear"', 'overflow = "device:9999"', 1)
    old_hash = EXAMPLE[EXAMPLE.index("[agents.1001]") :].split('pin_hash = "')[1].split('"')[0]
    text = text.replace(old_hash, "scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA$" + "B" * 43)
    result = diff(tmp_path, text)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "- agent 1003" in lines
    assert "queue front-desk ring_timeout: 15.0 → 20.0" in lines
    assert "link.baudrate: 115200 → 9600 (needs a restart)" in lines
    assert "queue front-desk overflow: 'clear' → 'device:9999'" in lines
    assert "agent 1001 pin_hash: (set) → (set)" in lines and "scrypt" not in result.output
    assert diff(tmp_path, EXAMPLE).output == "no changes\n"


def test_a_new_file_that_fails_the_check_is_one_line_exit_1(tmp_path):
    result = diff(tmp_path, EXAMPLE + "\n[queues.broken\n")
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1
