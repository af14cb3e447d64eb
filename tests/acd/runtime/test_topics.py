import json
from enum import Enum

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from acd.core.agents import AgentState, AgentStatus
from acd.runtime.topics import (
    MAX_COMMAND_BYTES,
    AgentCommand,
    CommandAction,
    Refusal,
    Topics,
    agent_state_payload,
    alarm_payload,
    call_event_payload,
    check_id,
    encode,
    mask_number,
    nesting_depth,
    parse_agent_command,
    queue_stats_payload,
    reply_payload,
    status_payload,
    valid_topic_name,
    wire_enum,
)

T = Topics("acd/v1", "townhall")
CMD7 = T.agent_command("7")


def cmd(topic=CMD7, configured_token=None, **data):
    return parse_agent_command(T, topic, json.dumps(data).encode(), configured_token)


def test_topic_tree():
    assert T.status == "acd/v1/townhall/controller/status"
    assert T.agent_state("7") == "acd/v1/townhall/agent/7/state"
    assert T.queue_stats("front-desk") == "acd/v1/townhall/queue/front-desk/stats"
    assert T.call_event == "acd/v1/townhall/event/call"
    assert T.alarm("link_down") == "acd/v1/townhall/alarm/link_down"
    assert CMD7 == "acd/v1/townhall/cmd/agent/7/set"
    assert T.agent_command_filter == "acd/v1/townhall/cmd/agent/+/set"
    assert T.reply("r1") == "acd/v1/townhall/cmd/reply/r1"


@pytest.mark.parametrize("bad", ["", "a/b", "+", "#", "a b", "-x", "x" * 65])
def test_ids_that_would_break_the_topic_tree_are_rejected(bad):
    with pytest.raises(ValueError, match="bad agent id"):
        T.agent_state(bad)


@pytest.mark.parametrize("prefix", ["", "/acd", "acd/", "acd/#", "a//b", "acd/+"])
def test_bad_prefix(prefix):
    with pytest.raises(ValueError, match="prefix"):
        Topics(prefix, "site")


def test_bad_site():
    with pytest.raises(ValueError, match="bad site id"):
        Topics("acd/v1", "my site")


@given(st.text(alphabet="0123456789+ ", max_size=20))
@example("+33 6 12 34 56 78")
@example("")
def test_mask_number_hides_all_but_the_last_two_digits(number):
    masked = mask_number(number)
    if not number:
        assert masked is None
        return
    assert len(masked) == len(number)
    digits = [c for c in number if c.isdigit()]
    shown = [c for c in masked if c.isdigit()]
    assert shown == digits[-2:]
    assert masked.count("*") == max(0, len(digits) - 2)
    assert [c for c in masked if not c.isdigit() and c != "*"] == [
        c for c in number if not c.isdigit()
    ]


def test_mask_number_example():
    assert mask_number("+33612345678") == "+*********78"
    assert mask_number(None) is None


def test_wire_enum_lowercases_and_checks():
    assert wire_enum(AgentStatus.NOT_READY, AgentStatus) == "not_ready"
    assert wire_enum("READY", AgentStatus) == "ready"
    assert wire_enum("logged-out", AgentStatus) == "logged_out"

    class EngineState(Enum):  # another module's enum, hyphenated values
        ON_CALL = "on-call"

    assert wire_enum(EngineState.ON_CALL, AgentState) == "on_call"
    with pytest.raises(ValueError, match="busy"):
        wire_enum("busy", AgentStatus)


def test_payloads_carry_ms_times_seq_and_lowercase_enums():
    p = agent_state_payload(
        "7", status="NOT_READY", state=AgentState.IDLE, ts=10.5, since=2.0, seq=3, reason=4
    )
    assert p == {
        "agent_id": "7",
        "status": "not_ready",
        "state": "idle",
        "reason": 4,
        "device": None,
        "call_id": None,
        "calls_today": None,
        "ts": 10500,
        "seq": 3,
        "since": 2000,
    }
    assert json.loads(encode(p)) == p
    s = status_payload(True, ts=1.0, since=0.5, seq=1, version="0.1.0")
    assert s == {"online": True, "ts": 1000, "seq": 1, "since": 500, "version": "0.1.0"}
    r = reply_payload("r1", False, "unknown agent", ts=1.0, seq=2)
    assert r == {"request_id": "r1", "ok": False, "error": "unknown agent", "ts": 1000, "seq": 2}
    assert "error" not in reply_payload("r1", True, ts=1.0, seq=2)


def test_call_event_masks_the_caller_by_default():
    p = call_event_payload(
        "answered", "c1", ts=5.0, since=1.0, seq=9, caller="0612345678", outcome="ANSWERED"
    )
    assert p["caller"] == "********78"
    assert p["event"] == "answered" and p["outcome"] == "answered"
    clear = call_event_payload(
        "ended", "c1", ts=5, since=1, seq=9, caller="0612", mask_caller=False
    )
    assert clear["caller"] == "0612"


def test_queue_stats_and_alarm_payloads():
    q = queue_stats_payload("sales", {"waiting": 3, "answer_rate": 0.98}, ts=2, since=1, seq=1)
    assert q["queue_id"] == "sales" and q["waiting"] == 3 and q["since"] == 1000
    with pytest.raises(ValueError, match="reserved"):
        queue_stats_payload("sales", {"ts": 1}, ts=2, since=1, seq=1)
    a = alarm_payload("link_down", severity="CRITICAL", message="no link", ts=2, since=1, seq=1)
    assert a["severity"] == "critical" and a["name"] == "link_down"


def test_a_valid_command():
    c = cmd(action="not_ready", reason=12, request_id="r-1")
    assert c == AgentCommand("7", CommandAction.NOT_READY, 12, "r-1", T.reply("r-1"))
    c = cmd(action="logout", request_id="r2", reply_to=T.base + "/cmd/reply/alice/42")
    assert c == AgentCommand("7", CommandAction.LOGOUT, None, "r2", T.base + "/cmd/reply/alice/42")


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"action": "dance", "request_id": "r"}, "action must be one of"),
        ({"request_id": "r"}, "action must be one of"),
        ({"action": "not_ready", "reason": 100, "request_id": "r"}, "within 0..99"),
        ({"action": "not_ready", "reason": -1, "request_id": "r"}, "within 0..99"),
        ({"action": "not_ready", "reason": "3", "request_id": "r"}, "must be an integer"),
        ({"action": "not_ready", "reason": True, "request_id": "r"}, "must be an integer"),
        ({"action": "ready", "reason": 3, "request_id": "r"}, "only to not_ready"),
        ({"action": "ready", "request_id": "r", "colour": 1}, "unknown key 'colour'"),
        ({"action": "ready", "request_id": "r", "reply_to": "elsewhere/x"}, "reply_to"),
        ({"action": "ready", "request_id": "r", "reply_to": T.agent_state("7")}, "reply_to"),
        ({"action": "ready", "request_id": "r", "reply_to": T.base + "/cmd/reply/#"}, "reply_to"),
    ],
)
def test_refusals_name_the_problem_and_reply_to_the_request(data, error):
    r = cmd(**data)
    assert isinstance(r, Refusal)
    assert error in r.error
    assert r.request_id == "r"
    assert r.reply_topic == T.reply("r")


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        (b"{not json", "malformed JSON"),
        (b"\xff\xfe", "malformed JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"action": "ready"}', "request_id"),
        (b'{"action": "ready", "request_id": "a/b"}', "request_id"),
        (b" " * (MAX_COMMAND_BYTES + 1), "larger than"),
    ],
)
def test_uncorrelated_refusals_go_to_cmd_error(payload, error):
    r = parse_agent_command(T, CMD7, payload)
    assert isinstance(r, Refusal) and error in r.error
    assert r.request_id is None and r.reply_topic == T.command_error


def test_uncorrelated_refusal_uses_a_valid_reply_to():
    r = cmd(action="ready", reply_to=T.reply("alice"))
    assert isinstance(r, Refusal) and r.reply_topic == T.reply("alice")


def test_token():
    missing = cmd(configured_token="s3cret", action="ready", request_id="r")
    assert isinstance(missing, Refusal) and "token" in missing.error
    wrong = cmd(configured_token="s3cret", action="ready", request_id="r", token="guess")
    assert isinstance(wrong, Refusal) and "token" in wrong.error
    ok = cmd(configured_token="s3cret", action="ready", request_id="r", token="s3cret")
    assert isinstance(ok, AgentCommand)


def test_command_topic_must_be_an_agent_command():
    for topic in (T.base + "/cmd/agent/7/get", T.base + "/cmd/agent/7/x/set", "other/7/set"):
        r = cmd(topic=topic, action="ready", request_id="r")
        assert isinstance(r, Refusal) and "not an agent command topic" in r.error


@given(st.binary(max_size=200))
def test_any_payload_gives_a_command_or_a_refusal(payload):
    assert isinstance(parse_agent_command(T, CMD7, payload, "tok"), AgentCommand | Refusal)


@given(st.dictionaries(st.sampled_from(["action", "reason", "request_id", "x"]), st.none()))
def test_objects_of_nulls_are_refused(data):
    r = parse_agent_command(T, CMD7, json.dumps(data).encode())
    assert isinstance(r, Refusal)


def test_check_id_returns_the_id():
    assert check_id("queue", "q.1") == "q.1"


DEEP = b"[" * 1500 + b"]" * 1500  # 3,000 bytes: within the size limit


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        (b'{"action": [], "request_id": "x", "token": "tok"}', "action must be one of"),
        (b'{"action": {}, "request_id": "x", "token": "tok"}', "action must be one of"),
        (b'{"action": "ready", "request_id": "x", "reason": NaN}', "malformed JSON"),
        (b'{"action": "ready", "request_id": "x", "token": "\\ud800"}', "token"),
        (b'{"action": "ready", "request_id": "x", "reply_to": [[]]}', "reply_to"),
        (b'{"action": "ready", "request_id": "x", "x": ' + DEEP[:40] + DEEP[-40:] + b"}", "deeper"),
    ],
)
def test_hostile_fields_are_refused_not_raised(payload, error):
    r = parse_agent_command(T, CMD7, payload, "tok")
    assert isinstance(r, Refusal) and error in r.error
    assert r.request_id == ("x" if "deeper" not in error and "JSON" not in error else None)


@pytest.mark.parametrize("payload", [DEEP, b'{"a":' * 600 + b"1" + b"}" * 600, b'["' * 1300])
def test_deep_nesting_is_refused_before_parsing(payload):
    r = parse_agent_command(T, CMD7, payload)
    assert isinstance(r, Refusal) and r.reply_topic == T.command_error
    assert "nested deeper than" in r.error or "malformed JSON" in r.error


def test_brackets_inside_strings_do_not_count_as_nesting():
    text = "[" * 100 + '\\"{' * 50
    r = cmd(action="ready", request_id="r", reply_to=T.reply("r") + "/" + "x" * 10, token=text)
    assert isinstance(r, AgentCommand)
    assert nesting_depth(json.dumps({"a": [text, {"b": [1]}]}).encode()) == 4


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)
FIELDS = ["action", "reason", "request_id", "token", "reply_to", "other"]


@given(st.dictionaries(st.sampled_from(FIELDS), JSON), st.integers(0, 40))
def test_any_json_in_any_field_gives_a_command_or_a_refusal(data, extra_depth):
    payload = json.dumps(data).encode()
    payload = b"[" * extra_depth + payload + b"]" * extra_depth if extra_depth > 1 else payload
    r = parse_agent_command(T, CMD7, payload, "tok")
    assert isinstance(r, AgentCommand | Refusal)
    if isinstance(r, AgentCommand):
        assert data["token"] == "tok" and data["action"] in ("ready", "not_ready", "logout")


UNPUBLISHABLE = ["", "a/+", "a/#", "a/\0", "a/\x01", "a/\x7f", "a/\x85", "a/\ud800"]
UNPUBLISHABLE += ["a/\ufdd0", "a/\uffff", "a/\U0001fffe", "a/\U0010ffff"]


@pytest.mark.parametrize("topic", UNPUBLISHABLE)
def test_a_reply_to_no_broker_would_take_is_refused(topic):
    assert not valid_topic_name(topic)
    r = cmd(action="ready", request_id="r", reply_to=T.reply("r") + "/" + topic)
    assert isinstance(r, Refusal) and "reply_to must be a valid topic" in r.error


def test_topic_names_are_limited_to_65535_bytes():
    assert valid_topic_name("x" * 65535) and not valid_topic_name("x" * 65536)
    assert not valid_topic_name("é" * 32768)


@pytest.mark.parametrize("topic", ["a", "a/b c/é/\u00a0/\U0001f600/\ufffd", "/"])
def test_valid_topic_names(topic):
    assert valid_topic_name(topic)
