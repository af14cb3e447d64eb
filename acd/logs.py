"""Logging of the controller: one line per notable event, as text or JSON lines.

``setup_logging("info", as_json=False)`` configures the root logger on standard error.
Text lines read ``2026-03-10 09:00:01.234 INFO acd.controller link up``; JSON lines carry
``ts`` (Unix seconds), ``level``, ``logger``, ``msg`` and the ``extra`` fields a call
passed (``log.info("call ended", extra={"call_id": 5})``). Under systemd (standard error
is the journal's stream, ``JOURNAL_STREAM``) text lines carry no time stamp (the journal
adds its own) but a ``<N>`` syslog priority prefix, so ``journalctl -p warning`` works.
"""

from __future__ import annotations

import json
import logging
import os
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


_PRIORITY = {"DEBUG": 7, "INFO": 6, "WARNING": 4, "ERROR": 3, "CRITICAL": 2}


class JournalFormatter(logging.Formatter):
    """``<6>acd.controller link up``: the syslog priority as the journal reads it."""

    def format(self, record: logging.LogRecord) -> str:
        text = f"{record.name} {record.getMessage()}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        priority = _PRIORITY.get(record.levelname, 6)
        return "\n".join(f"<{priority}>{line}" for line in text.splitlines())


def to_journal(stream=None) -> bool:
    """True when ``stream`` (standard error) is the journal's (``JOURNAL_STREAM`` names
    its device and inode, as systemd sets it for a service)."""
    expected = os.environ.get("JOURNAL_STREAM", "")
    try:
        st = os.fstat((stream or sys.stderr).fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return expected == f"{st.st_dev}:{st.st_ino}"


def setup_logging(level: str = "info", as_json: bool = False) -> None:
    """Send log lines at ``level`` and above to standard error, as text or JSON (text
    in the journal's format under systemd, see `to_journal`)."""
    handler = logging.StreamHandler(sys.stderr)
    if as_json:
        handler.setFormatter(JsonFormatter())
    elif to_journal():
        handler.setFormatter(JournalFormatter())
    else:
        handler.setFormatter(
            logging.Formatter(
                "%(asctime)s.%(msecs)03d %(levelname)s %(name)s %(message)s", "%Y-%m-%d %H:%M:%S"
            )
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
