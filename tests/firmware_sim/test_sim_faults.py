"""Faults on the wire: the link recovers and no application message is lost or doubled."""

from __future__ import annotations

import dataclasses
import random

import pytest

from acd.errors import AcdError
from firmware_sim.faults import FaultInjector, FaultSpec, parse_fault_option, split_frames
from firmware_sim.scenario import load_scenario
from protocols.framing import Ctrl, FrameDecoder, encode_frame
from protocols.link import Role
from protocols.messages import Message, SnapshotCalls, SnapshotCallsResult

SPECIALISTS = {
    "civil-status": ["301", "302"],
    "town-planning": ["303"],
    "social-services": ["304", "305"],
}


def busy_hour():
    """The weekday at 700 calls from 08:00 to 09:00 (about 50 calls, escalations included)."""
    sc = load_scenario("town-hall-weekday-700")
    return dataclasses.replace(sc, start_s=8 * 3600.0, end_s=9 * 3600.0)


def assert_exactly_once(sent: list[Message], received: list[Message], in_flight: int) -> None:
    """``received`` is ``sent`` in order, short of at most the messages still in flight."""
    assert received == sent[: len(received)]
    assert len(sent) - len(received) <= in_flight


@pytest.mark.parametrize(
    "fault",
    [
        FaultSpec("bit-errors", rate=2e-4),
        FaultSpec("drop", rate=1e-3),
        FaultSpec("garbage", size=48, every=20.0),
        FaultSpec("cable", at=8 * 3600.0 + 600, duration=2.0),
        FaultSpec("slow-ack", delay=1.5, duration=900.0),
        FaultSpec("ack-loss", rate=0.3),
    ],
    ids=lambda f: f.kind,
)
def test_link_recovers_and_delivers_every_message_exactly_once(virtual_run, mini_acd, fault):
    run = virtual_run(busy_hour(), (fault,), mini_acd(SPECIALISTS), status_every=1.0)
    run.run_until(3600.0)
    ep = run.endpoint
    assert ep.switch.stats.offered > 20 and ep.switch.stats.answered > 10
    assert run.ups == 1 and ep.link_downs == 0
    assert_exactly_once(ep.sent, run.received, ep.link.queued)
    assert_exactly_once(run.sent, ep.received, run.peer.queued)
    did = dataclasses.asdict(ep.faults.stats)
    link = ep.link.stats
    peer = run.peer.stats
    assert sum(did.values()) > 0
    repaired = link.retransmits + peer.retransmits + peer.crc_errors + link.crc_errors
    assert repaired + peer.dropped_bytes > 0


@pytest.mark.parametrize("role", [Role.CONTROLLER, Role.SWITCH])
def test_the_link_comes_up_whichever_role_the_controller_takes(virtual_run, mini_acd, role):
    run = virtual_run(busy_hour(), (), mini_acd(SPECIALISTS), peer_role=role)
    run.run_until(600.0)
    assert run.ups == 1 and run.endpoint.link_ups == 1 and run.endpoint.link_downs == 0
    assert run.endpoint.switch.stats.answered > 0
    assert_exactly_once(run.endpoint.sent, run.received, run.endpoint.link.queued)


def test_reboot_loses_the_calls_and_the_link_comes_back(virtual_run, mini_acd):
    at = 8 * 3600.0 + 1200
    run = virtual_run(busy_hour(), (FaultSpec("reboot", at=at),), mini_acd(SPECIALISTS))
    run.run_until(1199.0)
    active = run.endpoint.switch.active_calls
    run.run_until(1200.5)
    sent_before, received_before = len(run.endpoint.sent), len(run.received)
    run.run_until(1260.0)
    ep = run.endpoint
    assert ep.reboots == 1 and ep.switch.stats.lost == active
    assert run.ups == 2 and ep.link.is_up
    run.send(SnapshotCalls(60000))
    run.run_until(1261.0)
    result = next(x for x in run.received if isinstance(x, SnapshotCallsResult))
    assert {c.call_id for c in result.calls} <= set(range(1, ep.switch.stats.offered + 1))
    run.run_until(2400.0)
    assert_exactly_once(ep.sent[sent_before:], run.received[received_before:], ep.link.queued)


def test_long_cable_pull_takes_the_link_down_and_it_comes_back(virtual_run, mini_acd):
    cable = FaultSpec("cable", at=8 * 3600.0 + 300, duration=30.0)
    run = virtual_run(busy_hour(), (cable,), mini_acd(SPECIALISTS))
    run.run_until(900.0)
    ep = run.endpoint
    assert ep.link_downs == 1 and run.ups == 2 and ep.link.is_up
    before = len(run.received)
    run.send(SnapshotCalls(60001))
    run.run_until(901.0)
    assert any(isinstance(x, SnapshotCallsResult) for x in run.received[before:])


def test_split_frames_cuts_before_each_frame_start_only():
    frames = [
        encode_frame(Ctrl.INFO, 1, 2, b"\x10\x02\x10\x03"),
        encode_frame(Ctrl.ACK, 0, 5),
        encode_frame(Ctrl.INFO, 0x10, 0x02, b"x"),
    ]
    assert split_frames(b"".join(frames)) == frames
    assert split_frames(b"") == []


def test_ack_loss_drops_only_acks_and_slow_ack_delays_everything_in_order():
    info, ack = encode_frame(Ctrl.INFO, 0, 0, b"abc"), encode_frame(Ctrl.ACK, 0, 1)
    lossy = FaultInjector(random.Random(1))
    lossy.activate(FaultSpec("ack-loss", rate=1.0), 0.0)
    assert lossy.outgoing(info + ack + info, 0.0) == info + info
    assert lossy.incoming(ack + info, 0.0) == info
    assert lossy.stats.acks_lost == 2
    slow = FaultInjector(random.Random(1))
    slow.activate(FaultSpec("slow-ack", delay=2.0, duration=1.0), 0.0)
    assert slow.outgoing(ack + info, 0.0) == b""
    assert slow.next_deadline() == 1.0
    assert slow.outgoing(info, 1.5) == b""  # the fault is over, but nothing overtakes
    assert slow.outgoing(b"", 2.0) == ack + info + info
    assert slow.stats.frames_delayed == 3


def test_bit_error_rate_is_about_right_and_cable_passes_nothing():
    inj = FaultInjector(random.Random(7))
    inj.activate(FaultSpec("bit-errors", rate=0.01), 0.0)
    data = bytes(100_000)
    flipped = sum(bin(b).count("1") for b in inj.outgoing(data, 0.0))
    assert flipped == inj.stats.bits_flipped
    assert 7000 < flipped < 9000  # 800,000 bits at 1 %
    inj.activate(FaultSpec("cable", duration=1.0), 0.0)
    assert inj.outgoing(b"abc", 0.5) == b"" and inj.incoming(b"abc", 0.5) == b""
    assert inj.incoming(b"abc", 1.0) != b"" or inj.stats.bits_flipped > 0


def test_garbage_bursts_are_dropped_by_the_decoder():
    inj = FaultInjector(random.Random(3))
    inj.activate(FaultSpec("garbage", size=40, every=1.0), 0.0)
    frame = encode_frame(Ctrl.INFO, 0, 0, b"payload")
    stream = inj.outgoing(frame, 0.0) + inj.outgoing(frame, 1.0)
    assert inj.stats.garbage_bytes == 80
    decoder = FrameDecoder()
    payloads = [f.payload for f in decoder.feed(stream)]
    assert payloads[-1] == b"payload" and len(payloads) <= 2


def test_fault_option_parsing_and_errors():
    assert parse_fault_option("cable:at=10:00,duration=5") == FaultSpec(
        "cable", at=36000.0, duration=5.0
    )
    assert parse_fault_option("reboot") == FaultSpec("reboot")
    for bad, words in [
        ("bit-errors", "rate"),
        ("cable", "duration"),
        ("drop:rate=2", "rate"),
        ("drop:rate=x", "number"),
        ("garbage:size", "KEY=VALUE"),
        ("cable:duration=1,colour=red", "colour"),
        ("meteor", "kind"),
    ]:
        with pytest.raises(AcdError, match=words):
            parse_fault_option(bad)
