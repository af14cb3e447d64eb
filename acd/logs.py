"""Logging of the controller: one line per notable event, as text or JSON lines.

``setup_logging("info", as_json=False)`` configures the root logger on standard error.
Text lines read ``2026-03-10 09:00:01.234 INFO acd.controller link up``; JSON lines carry
``ts`` (Unix seconds), ``level``, ``logger``, ``msg`` and the ``extra`` fields a call
passed (``log.info("call ended", extra={"call_id": 5})``).
"""

from __future__ import annotations

import json
import logging
import sys

LEVELS = ("debug", "info", "warning", "error")

_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts``, ``level``, ``logger``, ``msg`` and extras."""

    def format(self, record: logging.LogRecord) -> str:
        data = {
            "ts": round(record.created, 6),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD:
                data[key] = value
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False, default=str)


def setup_logging(level: str = "info", as_json: bool = False) -> None:
    """Send log lines at ``level`` and above to standard error, as text or JSON."""
    handler = logging.StreamHandler(sys.stderr)
    if as_json:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter(
                "%(asctime)s.%(msecs)03d %(levelname)s %(name)s %(message)s", "%Y-%m-%d %H:%M:%S"
            )
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
