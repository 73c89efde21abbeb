"""Find catalog items by the words a resident would use at the kiosk.

A resident types (or taps on the on-screen keyboard) Chinese words, pinyin, pinyin initials
or English: 养老, 退休, "yanglao", "yl", "pension". Each item is indexed by its Chinese and
English names, its department line, the catalog's keywords (its synonyms), a few common
colloquial words mapped to catalog terms (SYNONYMS), and the pinyin of all the Chinese text,
full and initials, matched only at syllable boundaries ("yl" finds 养老, not 一路 inside a
longer word's middle syllables unless they align). Pure: no I/O, built once per catalog.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pypinyin import lazy_pinyin

from ..core.catalog import Catalog, Item

# What residents say -> the words the catalog uses. Both directions are searched.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "退休": ("养老", "退休"),
    "养老金": ("养老",),
    "社保": ("社会保险", "社保", "养老保险"),
    "医保": ("医疗保险", "医保"),
    "看病": ("医疗", "医保"),
    "报销": ("报销", "医疗费"),
    "失业": ("失业", "就业"),
    "找工作": ("就业", "求职"),
    "低保": ("最低生活保障", "低保"),
    "补贴": ("补贴", "津贴"),
    "身份证": ("居民身份证", "身份证"),
    "户口": ("户籍", "户口"),
    "生孩子": ("生育",),
    "怀孕": ("生育", "孕"),
    "结婚": ("婚姻", "结婚"),
    "残疾": ("残疾",),
    "老人": ("老年", "养老", "高龄"),
    "当兵": ("退役军人", "兵役"),
    "房子": ("住房", "房"),
    "租房": ("租赁", "公租房", "租房"),
}

_SPLIT = re.compile(r"[\s,，、;；/]+")
_ASCII = re.compile(r"^[a-z0-9' -]+$")


@dataclass(frozen=True, slots=True)
class _Entry:
    item: Item
    zh: str  # name
    words: tuple[str, ...]  # keywords and line name (Chinese)
    en: str  # lower-case English name and line
    full: str  # pinyin of name + keywords, syllables joined, texts separated by "|"
    starts: frozenset[int]  # offsets in `full` where a syllable starts
    initials: str  # first letters of the same syllables, texts separated by "|"


def _keep_chars(s: str) -> Any:
    """pypinyin's fallback for what is not Chinese: each character, lower case (a list,
    which pypinyin accepts though its type hints say str)."""
    return list(s.lower())


def _pinyin(texts: list[str]) -> tuple[str, frozenset[int], str]:
    full, starts, initials = [], set(), []
    pos = 0
    for text in texts:
        for syl in lazy_pinyin(text, errors=_keep_chars):
            syl = syl.lower()
            if not syl.strip() or not syl.isalnum():
                continue
            starts.add(pos)
            full.append(syl)
            pos += len(syl)
            initials.append(syl[0])
        full.append("|")
        initials.append("|")
        pos += 1
    return "".join(full), frozenset(starts), "".join(initials)


class Search:
    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.entries: list[_Entry] = []
        for item in catalog.items.values():
            line = catalog.lines[item.line]
            words = (*item.keywords, line.name.zh)
            full, starts, initials = _pinyin([item.name.zh, *item.keywords])
            self.entries.append(_Entry(
                item, item.name.zh, words,
                f"{item.name.en} {line.name.en} {item.id}".lower(), full, starts, initials))

    def search(self, query: str, limit: int = 30) -> list[Item]:
        """Items matching every word of `query`, best first."""
        terms = [t for t in _SPLIT.split(query.strip().lower()) if t]
        if not terms:
            return []
        scored: list[tuple[float, int, Item]] = []
        for n, e in enumerate(self.entries):
            total = 0.0
            for term in terms:
                s = self._score(e, term)
                if s <= 0:
                    break
                total += s
            else:
                scored.append((-total, n, e.item))
        scored.sort(key=lambda x: (x[0], x[1]))
        return [item for _, _, item in scored[:limit]]

    def _score(self, e: _Entry, term: str) -> float:
        best = 0.0
        variants = (term, *SYNONYMS.get(term, ()))
        for v in variants:
            weight = 1.0 if v == term else 0.8
            if v == e.zh:
                best = max(best, 100 * weight)
            elif v in e.zh:
                best = max(best, (60 - e.zh.index(v) * 0.5) * weight)
            elif any(v == w for w in e.words):
                best = max(best, 50 * weight)
            elif any(v in w for w in e.words):
                best = max(best, 40 * weight)
        if _ASCII.match(term):
            t = term.replace("'", "").replace(" ", "")
            if t and len(t) >= 3 and re.search(rf"\b{re.escape(t)}", e.en):
                best = max(best, 35)
            at = _find_at(e.full, t, e.starts)
            if at is not None:
                best = max(best, 30 - at * 0.05)
            if t.isalpha() and len(t) >= 2:
                i = e.initials.find(t)
                if i >= 0:
                    best = max(best, 25 - i * 0.2)
        return best


def _find_at(full: str, term: str, starts: frozenset[int]) -> int | None:
    """The first offset where `term` occurs in `full` starting at a syllable boundary."""
    if not term:
        return None
    i = full.find(term)
    while i >= 0:
        if i in starts:
            return i
        i = full.find(term, i + 1)
    return None
