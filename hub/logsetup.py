"""How the hub's processes log: one line per event, as text or as JSON.

An operator's log tools (journald, Loki, Elasticsearch, `grep`) read a line as an event; a
traceback spread over thirty lines becomes thirty events. So every record is one line: in
text, the message and any exception with their newlines written as `\\n`; in JSON (`[log]
format = "json"` in centre.toml, or `onewindow hub --log-json`), one object per line with
the time (ISO 8601, UTC), level, logger, message and, when there is one, the exception.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from typing import IO, Any

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
FORMATS = ("text", "json")
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def _one_line(text: str) -> str:
    return text.replace("\r", "").replace("\n", "\\n")


class TextFormatter(logging.Formatter):
    """The usual `time LEVEL logger: message`, with the exception on the same line."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        return _one_line(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ts, level, logger, msg, and exc / stack when present;
    extra fields given to the logger (`extra={...}`) are kept under their own names."""

    _standard = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
        "message", "asctime", "taskName"}

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        for key, value in vars(record).items():
            if key not in self._standard and not key.startswith("_"):
                out[key] = value if isinstance(value, (str, int, float, bool, type(None))) \
                    else repr(value)
        return json.dumps(out, ensure_ascii=False)


def configure(level: int | str = logging.INFO, fmt: str = "text",
              stream: IO[str] | None = None) -> None:
    """The root logger's one handler (replacing any), writing to `stream` (stderr)."""
    if fmt not in FORMATS:
        raise ValueError(f"log format {fmt!r}: one of {', '.join(FORMATS)}")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
