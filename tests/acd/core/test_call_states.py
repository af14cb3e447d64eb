"""The call-state table: its diagram, and every transition the engine makes."""

from __future__ import annotations

import acd.core.call_states
from acd.core.call_states import TRANSITIONS, CallState, diagram


def test_the_docstring_diagram_is_drawn_from_the_table():
    assert diagram() in acd.core.call_states.__doc__
    drawn = [line.split()[:3] for line in diagram().splitlines()]
    assert [(CallState(a), CallState(b)) for a, _, b in drawn] == list(TRANSITIONS)
    assert {s for edge in TRANSITIONS for s in edge} == set(CallState)
