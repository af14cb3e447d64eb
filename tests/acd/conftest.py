"""Fixtures of the engine's tests."""

from __future__ import annotations

import pytest

import acd.core.engine
from acd.core.call_states import TRANSITIONS, CallState


@pytest.fixture
def checked_call_states(monkeypatch: pytest.MonkeyPatch) -> set[tuple[CallState, CallState]]:
    """Every move of a call's state the engine makes is checked against the transition
    table as it happens (an ``AssertionError`` out of the engine otherwise); returns the
    set of moves made."""
    seen: set[tuple[CallState, CallState]] = set()
    slot = acd.core.engine._Call.state  # the slot's descriptor

    def set_state(call: acd.core.engine._Call, new: CallState) -> None:
        try:
            old = slot.__get__(call)
        except AttributeError:  # the first state, set when the call is made
            assert new is CallState.NEW, new
        else:
            assert (old, new) in TRANSITIONS, f"call {call.id}: {old} -> {new} is not in the table"
            seen.add((old, new))
        slot.__set__(call, new)

    class CheckedCall(acd.core.engine._Call):
        __slots__ = ()
        state = property(slot.__get__, set_state)

    monkeypatch.setattr(acd.core.engine, "_Call", CheckedCall)
    return seen
