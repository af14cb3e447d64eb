"""`acd run --capture FILE` against the simulated switch on a pty: the capture replays
(`acd replay`) to exactly the messages both ends exchanged."""

from __future__ import annotations

import json
import subprocess
import time

import pytest
from click.testing import CliRunner

from acd.cli import cli
from protocols import messages as m

pytestmark = pytest.mark.timeout(90)


def test_run_with_capture_records_what_replay_decodes(kit, sim_thread, tmp_path):
    sim = sim_thread(kit.hour_scenario(volume=60, start="08:59", end="09:15", speed=600))
    capture = tmp_path / "logs" / "line.cap"
    config = tmp_path / "site.toml"
    config.write_text(
        kit.CONFIG.read_text()
        .replace("t1 = 1.0", "t1 = 0.2")
        .replace("reset_interval = 3.0", "reset_interval = 0.3")
    )
    command = sim.run_command(config, tmp_path / "acd.db", "--capture", str(capture))
    with open(tmp_path / "run.log", "wb") as log:
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log)
        try:
            sim.thread.join(60)
            assert not sim.thread.is_alive(), "the simulated quarter hour did not end in 60 s"
            time.sleep(0.3)  # the last acknowledgements cross the wire
        finally:
            code = kit.stop_process(proc)
    assert code == 0, (tmp_path / "run.log").read_text()[-2000:]

    result = CliRunner().invoke(cli, ["replay", str(capture), "--json"])
    assert result.exit_code == 0, result.output
    entries = [json.loads(line) for line in result.output.splitlines()]
    assert entries and not [e for e in entries if e.get("error")]
    header = json.loads(capture.read_text().splitlines()[0])
    assert header["capture"] == "acd-cti" and header["port"] == sim.url
    assert header["pins"] == "blanked"
    assert capture.stat().st_mode & 0o777 == 0o600  # personal data: the owner only
    assert (tmp_path / "acd.db").stat().st_mode & 0o777 == 0o600
    logins = [e["fields"] for e in entries if e.get("op") == "KeyLogin"]
    assert all(set(f["pin"]) == {"*"} for f in logins)

    offered = [x.call_id for x in sim.endpoint.sent if isinstance(x, m.Offered)]
    assert len(offered) >= 5
    fresh = [e for e in entries if e.get("op") and e.get("note") != "duplicate"]
    captured = [e["fields"]["call_id"] for e in fresh if e["d"] == "rx" and e["op"] == "Offered"]
    assert captured == offered
    sent = {e["op"] for e in fresh if e["d"] == "tx"}
    assert {"MonitorStart", "SnapshotCalls", "DeflectCall"} <= sent


def test_unwritable_capture_is_a_one_line_error(kit, tmp_path):
    (tmp_path / "plain").write_text("")
    bad = tmp_path / "plain" / "line.cap"
    args = ["run", "--config", str(kit.CONFIG), "--no-mqtt", "--capture", str(bad)]
    result = CliRunner().invoke(cli, [*args, "--db", str(tmp_path / "acd.db")])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"Error: capture: cannot write {bad}: File exists"
    ]
