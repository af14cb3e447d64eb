"""The one backoff of the MQTT clients, the PBX port and the record outbox."""

from drivers.backoff import Backoff
from drivers.mqtt import RECONNECT_INITIAL, RECONNECT_MAX


def test_the_wait_doubles_after_each_failure_up_to_the_cap():
    backoff = Backoff(0.5, 3.0)
    assert backoff.delay == 0.5
    assert [backoff.grow() for _ in range(4)] == [1.0, 2.0, 3.0, 3.0]
    assert backoff.delay == 3.0


def test_a_good_connection_starts_again_from_the_first_wait():
    backoff = Backoff(0.5, 3.0)
    backoff.grow()
    backoff.grow()
    backoff.reset()
    assert backoff.delay == 0.5
    assert backoff.grow() == 1.0


def test_the_default_is_the_mqtt_clients_backoff():
    backoff = Backoff(RECONNECT_INITIAL, RECONNECT_MAX)
    assert backoff.delay == RECONNECT_INITIAL
    for _ in range(10):
        backoff.grow()
    assert backoff.delay == RECONNECT_MAX
