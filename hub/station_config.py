"""`[stations]` in centre.toml: the centre's community stations (协管员代收) and the key a
station page's typed ID number is hashed with (hub/web/stations.py, docs/privacy.md).

    [stations]
    card_key_file = "/etc/onewindow/centre.key"   # the nodes' card key (node/card.py)
    [stations.names]
    S01 = "幸福里社区工作站"
    S02 = "长乐居委会"

`names` is optional: when given, `onewindow user add --role station --station <id>` accepts
only a listed id and the pages show the name; without it any well-formed id goes.
`card_key_file` must be the very file the window nodes and kiosks hash cards with: a
resident's typed ID number then gives the same token as their card (one resident, one
token), which is what the back office and the pick-up window match on. Without it the
station page cannot take an ID number and says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STATION_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
MIN_KEY = 16  # bytes, as node/config.py asks of the same file


@dataclass(frozen=True, slots=True)
class StationsConfig:
    names: dict[str, str] = field(default_factory=dict)  # station id -> its name
    card_key_file: str | None = None

    def card_key(self) -> bytes | None:
        """The card key's bytes, read when needed (not kept in the config object, which
        gets printed and logged); None when not configured. Raises ValueError when the
        file is unreadable or too short."""
        if self.card_key_file is None:
            return None
        try:
            key = Path(self.card_key_file).read_bytes().strip()
        except OSError as e:
            raise ValueError(f"[stations] card_key_file: {e}") from e
        if len(key) < MIN_KEY:
            raise ValueError(f"[stations] card_key_file must hold at least {MIN_KEY} bytes")
        return key


def parse(table: Any, base: Path | None) -> StationsConfig:
    if not isinstance(table, dict):
        raise ValueError("[stations] must be a table")
    names = table.get("names", {})
    if not isinstance(names, dict):
        raise ValueError("[stations.names] must be a table of station id = name")
    for sid, name in names.items():
        if not STATION_ID.match(sid) or not isinstance(name, str) or not name.strip():
            raise ValueError(f"[stations.names] {sid!r}: an id of 1-32 letters, digits, _ "
                             "or -, and a name")
    key = table.get("card_key_file")
    if key is not None:
        key = str(key)
        if base is not None and not Path(key).is_absolute():
            key = str(base / key)
    return StationsConfig({str(k): str(v) for k, v in names.items()}, key)


__all__ = ["STATION_ID", "StationsConfig", "parse"]
