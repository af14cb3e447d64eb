"""Simulated switch: how fast a whole simulated day runs in-process (virtual time).

A weekday at 700 calls (the reference site's busy case) runs through the switch
endpoint, the link layer and the codec to a controller-side link, with a minimal router
(queue every call, deflect to the longest-idle agent, transfer escalations to an idle
specialist). Figures: wall seconds, simulated seconds per wall second, messages per
wall second, and the cost of the wire (link + codec) as the ratio of the full run's
time to the same day driven on the bare `Switch` (same seed, same routing), measured in
the same run.
"""

from __future__ import annotations

import time
from collections import OrderedDict

from firmware_sim.runner import Clock, SwitchEndpoint
from firmware_sim.scenario import load_scenario

from protocols import messages as m
from protocols.link import Link, MessageReceived, Role


class Router:
    """Queue, route to the longest-idle front-desk agent, transfer escalations."""

    def __init__(self) -> None:
        self.idle: OrderedDict[str, None] = OrderedDict()
        self.queue: OrderedDict[int, None] = OrderedDict()
        self.ringing: dict[str, int] = {}
        self.invoke = 0

    def on(self, msg: m.Message) -> list[m.Message]:
        out: list[m.Message] = []
        if isinstance(msg, m.Offered):
            self.queue[msg.call_id] = None
        elif isinstance(msg, m.KeyReady | m.KeyWrapUpDone):
            self.idle[msg.device] = None
        elif isinstance(msg, m.KeyNotReady | m.KeyLogout):
            self.idle.pop(msg.device, None)
        elif isinstance(msg, m.Established):
            self.ringing.pop(msg.device, None)
        elif isinstance(msg, m.ConnectionCleared):
            self.queue.pop(msg.call_id, None)
            if self.ringing.pop(msg.device, None) is not None:
                self.idle[msg.device] = None  # the ring ended unanswered
        elif isinstance(msg, m.KeyEscalate):
            free = [d for d in self.idle if d.startswith("3")]
            if free:
                self.idle.pop(free[0])
                self.ringing[free[0]] = msg.call_id
                out.append(self._req(m.SingleStepTransfer, msg.call_id, msg.device, free[0]))
        front = [d for d in self.idle if d.startswith("2")]
        while self.queue and front:
            call_id, _ = self.queue.popitem(last=False)
            device = front.pop(0)
            self.idle.pop(device)
            self.ringing[device] = call_id
            out.append(self._req(m.DeflectCall, call_id, device))
        return out

    def _req(self, cls: type[m.Message], *fields: object) -> m.Message:
        self.invoke = self.invoke % 0xFFFF + 1
        return cls(self.invoke, *fields)


def over_the_wire() -> tuple[float, int, float]:
    sc = load_scenario("town-hall-weekday-700")
    started = time.perf_counter()
    ep = SwitchEndpoint(sc, Clock(sc.start_s, 0.0, 1.0))
    ctl = Link(Role.SWITCH)
    router = Router()
    end = sc.end_s - sc.start_s
    now = 0.0
    ep.start(now)
    ctl.start(now)
    while now < end:
        ctl.receive_data(ep.data_to_send(now), now)
        while (event := ctl.next_event()) is not None:
            if isinstance(event, MessageReceived):
                for req in router.on(event.message):
                    ctl.send(req, now)
        ep.receive_data(ctl.data_to_send(), now)
        ep.handle_timer(now)
        ctl.handle_timer(now)
        nxt = min(t for t in (ep.next_deadline(), ctl.next_deadline(), end) if t is not None)
        now = nxt if nxt > now else now + 1e-6
    wall = time.perf_counter() - started
    assert ep.switch.stats.answered > 500, ep.switch.stats  # the router kept calls flowing
    return wall, len(ep.sent) + len(ep.received), end


def bare_switch() -> float:
    sc = load_scenario("town-hall-weekday-700")
    started = time.perf_counter()
    sw = sc.build_switch()
    router = Router()
    sw.start(sc.start_s)
    pending: list[m.Message] = []
    while (t := sw.next_deadline()) is not None and t < sc.end_s:
        pending = sw.advance(t)
        while pending:
            msg = pending.pop(0)
            for req in router.on(msg):
                pending += sw.handle(req, t)
    return time.perf_counter() - started


def run() -> dict[str, float]:
    wall, messages, simulated = over_the_wire()
    bare = bare_switch()
    return {
        "sim_day_700_wall_s": round(wall, 3),
        "sim_day_700_speedup": round(simulated / wall),
        "sim_day_700_messages": messages,
        "sim_msgs_per_s": round(messages / wall),
        "sim_wire_cost_ratio": round(wall / bare, 2),
    }
