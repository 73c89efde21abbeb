"""The service catalog: what a centre offers and which kind of window may serve it.

Pure data. Reading the file lives in `onewindow.hub.catalog`; the core only sees this.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from .printable import describe, not_ascii_foldable, unprintable

ItemKind = Literal["instant", "promised"]
COMPREHENSIVE = "comprehensive"


class CatalogError(ValueError):
    """The catalog file contradicts itself (dangling reference, duplicate id, bad field)."""


@dataclass(frozen=True, slots=True)
class Text:
    """A catalog text: Simplified Chinese, English, and optionally Traditional Chinese
    (`zh_tw`, for zh-TW / zh-HK pages and slips); `traditional` falls back to `zh`."""

    zh: str
    en: str
    zh_tw: str = ""

    @property
    def traditional(self) -> str:
        return self.zh_tw or self.zh


@dataclass(frozen=True, slots=True)
class Material:
    name: Text
    required: bool


@dataclass(frozen=True, slots=True)
class Line:
    """A department line (条线); its letter prefixes the tickets of its items."""

    id: str
    name: Text
    prefix: str


@dataclass(frozen=True, slots=True)
class Item:
    id: str
    line: str
    name: Text
    prefix: str
    kind: ItemKind
    promised_days: int
    minutes: float
    weight: float
    window_kinds: tuple[str, ...]
    materials: tuple[Material, ...] = ()
    conditions: Text = Text("", "")
    related: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()
    department: str = ""  # the back-office department (科室) that approves it; "" = its line

    @property
    def approver(self) -> str:
        """The department that approves this item's promised cases and answers help calls
        about it: the catalog's `department`, or the item's line (条线) by default."""
        return self.department or self.line

    @property
    def specialised(self) -> bool:
        return COMPREHENSIVE not in self.window_kinds


@dataclass(frozen=True, slots=True)
class Catalog:
    name: Text
    window_kinds: tuple[str, ...]
    lines: dict[str, Line]
    items: dict[str, Item]
    departments: dict[str, Text] = field(default_factory=dict)
    _by_kind: dict[str, frozenset[str]] = field(default_factory=dict, compare=False, repr=False)
    _lines_of: dict[frozenset[str], tuple[str, ...]] = field(default_factory=dict, compare=False,
                                                             repr=False)

    def item(self, item_id: str) -> Item | None:
        return self.items.get(item_id)

    def lines_of(self, items: frozenset[str]) -> tuple[str, ...]:
        """The lines (sorted ids) these items belong to. Cached: a window's skills are one
        of a few sets, asked about on every build of the supervisors' floor."""
        found = self._lines_of.get(items)
        if found is None:
            found = tuple(sorted({self.items[i].line for i in items}))
            if len(self._lines_of) < 1024:
                self._lines_of[items] = found
        return found

    def items_for_kind(self, window_kind: str) -> frozenset[str]:
        """Item ids a window of this kind may serve by default."""
        found = self._by_kind.get(window_kind)
        if found is None:
            found = frozenset(i.id for i in self.items.values() if window_kind in i.window_kinds)
            self._by_kind[window_kind] = found
        return found

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Catalog:
        try:
            return _parse(data)
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, CatalogError):
                raise
            raise CatalogError(f"catalog field missing or malformed: {exc!r}") from exc


def _text(d: dict[str, Any]) -> Text:
    return Text(str(d["zh"]), str(d["en"]), str(d.get("zh_tw") or ""))


def _printed(where: str, text: Text) -> Text:
    """Refuse text that goes on printed tickets and slips but cannot be printed: Chinese
    outside GBK (the printers' firmware, see core/printable.py), Latin beyond ASCII."""
    bad = unprintable(text.zh + text.zh_tw)
    if bad:
        chars = ", ".join(describe(ch) for ch in bad)
        raise CatalogError(
            f"{where} (zh) 含 {chars}，不在 GBK 字符集中，小票打印机无法打印；请改用 GBK 内的"
            f"常用字或文字说明 / {where} (zh) has {chars}, not in GBK: the ticket printer "
            "cannot print it; use a common character in GBK or describe it in words")
    bad = not_ascii_foldable(text.en)
    if bad:
        chars = ", ".join(describe(ch) for ch in bad)
        raise CatalogError(
            f"{where} (en) 含 {chars}，英文行只能打印 ASCII / {where} (en) has {chars}: "
            "English lines print in ASCII only (accents are dropped); use plain ASCII")
    return text


# Letters a hall screen, an LED board or a printed ticket shows much like a digit: I and 1,
# O and 0. A ticket prefix never uses them (the sample catalog's lines skip from H to J, L to M).
CONFUSABLE = {"I": "1", "O": "0"}


def _prefix(where: str, prefix: str) -> str:
    """A ticket prefix, refused if it has a letter read as a digit from across the hall."""
    bad = [ch for ch in prefix if ch.upper() in CONFUSABLE]
    if bad:
        pairs = "、".join(f"{ch} / {CONFUSABLE[ch.upper()]}" for ch in bad)
        raise CatalogError(
            f"{where} 号票前缀 {prefix!r} 含字母 {'、'.join(bad)}，在叫号屏、LED 屏和小票上易被"
            f"看成数字（{pairs}）；请改用其他字母 / {where} ticket prefix {prefix!r} has "
            f"{' and '.join(bad)}, read as a digit on the hall screen, LED boards and tickets "
            "(I as 1, O as 0): choose another letter")
    return prefix


def _parse(data: dict[str, Any]) -> Catalog:
    kinds = tuple(k["id"] for k in data["window_kinds"])
    lines: dict[str, Line] = {}
    for raw in data["lines"]:
        line = Line(raw["id"], _text(raw), _prefix(f"line {raw['id']!r}", raw["prefix"]))
        if line.id in lines:
            raise CatalogError(f"duplicate line id {line.id!r}")
        lines[line.id] = line
    items: dict[str, Item] = {}
    for raw in data["items"]:
        item_line = lines.get(raw["line"])
        if item_line is None:
            raise CatalogError(f"item {raw['id']!r} names unknown line {raw['line']!r}")
        item = Item(
            id=raw["id"],
            line=item_line.id,
            name=_printed(f"item {raw['id']!r} name", _text(raw)),
            prefix=_prefix(f"item {raw['id']!r}", raw.get("prefix") or item_line.prefix),
            kind=raw["kind"],
            promised_days=int(raw.get("promised_days", 0)),
            minutes=float(raw["minutes"]),
            weight=float(raw.get("weight", 1.0)),
            window_kinds=tuple(raw["window_kinds"]),
            materials=tuple(
                Material(_printed(f"item {raw['id']!r} material {k}", _text(m)),
                         bool(m.get("required", True)))
                for k, m in enumerate(raw.get("materials", ()), 1)),
            conditions=_text(raw["conditions"]) if raw.get("conditions") else Text("", ""),
            related=tuple(raw.get("related", ())),
            keywords=tuple(raw.get("keywords", ())),
            department=str(raw.get("department") or ""),
        )
        if item.id in items:
            raise CatalogError(f"duplicate item id {item.id!r}")
        if item.kind not in ("instant", "promised"):
            raise CatalogError(f"item {item.id!r}: kind must be instant or promised")
        if item.minutes <= 0:
            raise CatalogError(f"item {item.id!r}: minutes must be positive")
        unknown = set(item.window_kinds) - set(kinds)
        if unknown or not item.window_kinds:
            raise CatalogError(f"item {item.id!r}: unknown window kinds {sorted(unknown)}")
        items[item.id] = item
    departments = _departments(data, lines)
    for item in items.values():
        missing = [r for r in item.related if r not in items]
        if missing:
            raise CatalogError(f"item {item.id!r}: related items {missing} do not exist")
        if item.approver not in departments:
            raise CatalogError(f"item {item.id!r} names unknown department {item.approver!r}")
    return Catalog(_printed("centre_name", _text(data["centre_name"])), kinds, lines, items,
                   departments)


def _departments(data: dict[str, Any], lines: dict[str, Line]) -> dict[str, Text]:
    """The back-office departments (科室): the catalog's `departments` list (id and names)
    when it has one, else one per line (条线), which is how most centres are organised."""
    if "departments" not in data:
        return {line.id: line.name for line in lines.values()}
    out: dict[str, Text] = {}
    for raw in data["departments"]:
        if raw["id"] in out:
            raise CatalogError(f"duplicate department id {raw['id']!r}")
        out[str(raw["id"])] = _text(raw)
    return out
