"""What the drivers need to know, as plain values: ``drivers`` reads no configuration.

`acd.config`'s ``LinkConfig`` and ``MqttConfig`` extend these with the keys only the
ACD uses and the parsing of the file, so a configuration section can be passed as it
is; tests and tools build these directly.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PortSettings:
    """Line settings of a serial PBX port (8 data bits, 1 stop bit)."""

    baudrate: int = 115200
    parity: str = "N"  # N, E, O


@dataclass(frozen=True)
class MqttSettings:
    """The MQTT broker, our account there and the topic tree (``<prefix>/<site>/...``)."""

    host: str = "127.0.0.1"
    port: int = 1883
    prefix: str = "acd/v1"
    username: str | None = None
    password: str | None = None
    tls: bool = False
    ca_file: str | None = None  # the broker's CA (default: the system CAs)
    cert_file: str | None = None  # client certificate (PEM), for brokers that require one
    key_file: str | None = None  # its private key (PEM)
    client_id: str | None = None
    stats_interval: float = 1.0  # s, min interval between two queue-stats publications
    cmd_token: str | None = None  # shared secret supervisor commands must carry, if set
