"""Files shipped with the package: the example site, its traffic profile, the Mosquitto
set-up of docs/mqtt.md.

An installed wheel holds them as package data in ``acd/examples/`` (setup.cfg maps the
checkout's ``examples/`` there); a checkout (the editable install of ``make install``)
reads ``examples/`` itself.
"""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).resolve().parent


def example(name: str = "") -> Path:
    """The shipped example file ``name`` (e.g. ``"town-hall.toml"``), or their directory."""
    packaged = _HERE / "examples"
    root = packaged if packaged.is_dir() else _HERE.parent / "examples"
    return root / name if name else root
