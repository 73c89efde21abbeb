"""Catalog text in Traditional Chinese for zh-TW pages, where a snapshot carries only the
Simplified `zh` (the hall's line waits, the phone page's items, the kiosk's items as JSON).

The catalog's own `Text.zh_tw` is the source; text the catalog has no Traditional for stays
Simplified (readable, and never a machine guess at run time). Pure: no I/O.
"""

from __future__ import annotations

from typing import Any

from ..core.catalog import Catalog, Text


def texts(catalog: Catalog) -> list[Text]:
    """Every text of the catalog a public page may show."""
    out = [catalog.name, *(line.name for line in catalog.lines.values())]
    for item in catalog.items.values():
        out += [item.name, item.conditions, *(m.name for m in item.materials)]
    return out


class Traditional:
    """zh -> zh_tw for one catalog; `annotate` adds `zh_tw` beside every `zh` it knows."""

    def __init__(self, catalog: Catalog) -> None:
        self.table = {t.zh: t.zh_tw for t in texts(catalog) if t.zh and t.zh_tw}

    def of(self, zh: str) -> str:
        return self.table.get(zh, zh)

    def annotate(self, obj: Any) -> Any:
        """`obj` (JSON-like) with `zh_tw` beside each `zh` and `line_zh_tw` beside each
        `line_zh` that has none; a copy: snapshots shared with other readers stay as
        they were."""
        if isinstance(obj, list):
            return [self.annotate(x) for x in obj]
        if not isinstance(obj, dict):
            return obj
        out = {k: self.annotate(v) for k, v in obj.items()}
        for key in ("zh", "line_zh"):
            if isinstance(out.get(key), str) and f"{key}_tw" not in out:
                out[f"{key}_tw"] = self.of(out[key])
        return out
