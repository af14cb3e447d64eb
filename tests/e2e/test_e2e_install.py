"""The installed wheel, not the checkout: build it, install it in a fresh venv, and run
the commands a new user runs first (`acd config example`, `acd config check`,
`acd demo`) from a directory that holds no part of the checkout."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.timeout(180)


def _run(*command: str | Path, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "ACD_CONFIG")}
    return subprocess.run(
        [str(c) for c in command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The bin/ of a fresh venv holding the wheel built from this checkout; its
    dependencies are read from this interpreter's site-packages (no download)."""
    work = tmp_path_factory.mktemp("wheel")
    built = _run(
        sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", work, ROOT, cwd=work
    )
    assert built.returncode == 0, built.stderr[-3000:]
    assert "warning" not in built.stderr.lower(), built.stderr[-3000:]
    (wheel,) = work.glob("acd_controller-*.whl")
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True, timeout=60)
    python = venv / "bin" / "python"
    pip = [sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps"]
    done = _run(*pip, "--no-index", wheel, cwd=work)
    assert done.returncode == 0, done.stderr[-3000:]
    site = _run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=work)
    deps = sysconfig.get_paths()["purelib"]  # pyserial, click, ...: appended after its own
    (Path(site.stdout.strip()) / "test-deps.pth").write_text(deps + "\n")
    where = _run(python, "-c", "import acd, firmware_sim; print(acd.__file__)", cwd=work)
    assert where.stdout.startswith(str(venv)), where.stdout + where.stderr
    return venv / "bin"


def test_installed_wheel_ships_the_example_site_and_checks_it(installed, tmp_path):
    shown = _run(installed / "acd", "config", "example", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout == (ROOT / "examples" / "town-hall.toml").read_text()
    (tmp_path / "site.toml").write_text(shown.stdout)
    checked = _run(installed / "acd", "config", "check", "site.toml", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.startswith("site.toml: OK")


def test_installed_wheel_runs_the_demo(installed, tmp_path):
    demo = _run(installed / "acd", "demo", "--calls", "20", "--speed", "10000", cwd=tmp_path)
    assert demo.returncode == 0, demo.stdout[-2000:] + demo.stderr[-2000:]
    total = next(line for line in demo.stdout.splitlines() if line.startswith("total"))
    assert int(total.split()[1]) > 0  # calls offered by the shipped scenario were handled
