"""The operator's settings in centre.toml that only the `onewindow hub` process reads:
`[log]` (format, level) and `[metrics]` (the /metrics page's access).

They are read here, from the same file, rather than in hub/config.py: nothing in the core,
the app or the other commands needs them.

    [log]
    format = "json"      # "text" (default) or "json": one object per line
    level = "INFO"       # DEBUG | INFO | WARNING | ERROR

    [metrics]
    enabled = true       # GET /metrics on the [web] port (Prometheus text format)
    token = "..."        # scrapes from other machines with `Authorization: Bearer ...`;
                         # without it only this machine (loopback) may scrape
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import ConfigError
from .logsetup import FORMATS, LEVELS
from .web.metrics import MetricsAccess


@dataclass(frozen=True)
class LogSettings:
    format: str = "text"
    level: str = "INFO"


@dataclass(frozen=True)
class OpsSettings:
    log: LogSettings
    metrics: MetricsAccess


def _table(data: dict[str, Any], name: str, keys: set[str]) -> dict[str, Any]:
    table = data.get(name, {})
    if not isinstance(table, dict):
        raise ConfigError(f"[{name}] must be a table")
    unknown = set(table) - keys
    if unknown:
        raise ConfigError(f"[{name}]: unknown key(s) {', '.join(sorted(unknown))}; "
                          f"known: {', '.join(sorted(keys))}")
    return table


def load(path: Path) -> OpsSettings:
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(f"{path}: {e}") from e
    log = _table(data, "log", {"format", "level"})
    fmt = log.get("format", "text")
    if fmt not in FORMATS:
        raise ConfigError(f'[log] format = {fmt!r}: "text" or "json"')
    level = str(log.get("level", "INFO")).upper()
    if level not in LEVELS:
        raise ConfigError(f"[log] level = {log.get('level')!r}: one of {', '.join(LEVELS)}")
    metrics = _table(data, "metrics", {"enabled", "token"})
    enabled = metrics.get("enabled", True)
    if not isinstance(enabled, bool):
        raise ConfigError(f"[metrics] enabled = {enabled!r}: true or false")
    token = metrics.get("token")
    if token is not None and (not isinstance(token, str) or len(token) < 16):
        raise ConfigError("[metrics] token: a string of at least 16 characters "
                          "(e.g. `openssl rand -hex 16`)")
    return OpsSettings(LogSettings(fmt, level), MetricsAccess(bool(enabled), token))
