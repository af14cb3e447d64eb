"""drivers/ takes plain values (drivers.settings), never the ACD's configuration."""

from __future__ import annotations

import subprocess
import sys

PENDING = {"web"}
"""drivers.web (acd web, landed after this rule) still reads the whole configuration."""

IMPORT_ALL = f"""
import importlib, pkgutil, sys
import drivers
for module in pkgutil.iter_modules(drivers.__path__):
    if module.name not in {PENDING!r}:
        importlib.import_module(f"drivers.{{module.name}}")
print(" ".join(sorted(name for name in sys.modules if name.startswith("acd.config"))))
"""


def test_no_driver_module_loads_the_configuration():
    out = subprocess.run(
        [sys.executable, "-c", IMPORT_ALL], capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == []


def test_configuration_sections_are_the_drivers_settings():
    from acd.config import LinkConfig, MqttConfig
    from drivers.settings import MqttSettings, PortSettings

    link, mqtt = LinkConfig(baudrate=9600, parity="E"), MqttConfig(host="broker", port=8883)
    assert isinstance(link, PortSettings) and (link.baudrate, link.parity) == (9600, "E")
    assert isinstance(mqtt, MqttSettings) and (mqtt.host, mqtt.port) == ("broker", 8883)
