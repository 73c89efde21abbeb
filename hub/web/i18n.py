"""Page text in zh-CN (default), zh-TW (Traditional) and English, from gettext catalogs edited
with Babel.

Source strings (msgids) are English; `locale/zh_CN/LC_MESSAGES/*.po` hold the Simplified
Chinese and `locale/zh_TW/LC_MESSAGES/*.po` the Traditional (one file beside each zh_CN file,
same name; for Taiwan and Hong Kong alike, with 窗口 kept for a service window). Every .po
file of a language is read at start-up and compiled in memory with Babel, so there are no
compiled .mo files to forget in the repository. `pybabel extract -F babel.cfg` finds new
strings in templates and Python.

A page's language: ?lang= wins, then the cookie, then the browser's Accept-Language, then
zh-CN. Each accepts a language tag in any common spelling (zh_TW, zh-TW, zh-hk, zh-Hant-TW,
en-GB): see `normalise`.
"""

from __future__ import annotations

import functools
import gettext
import io
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LOCALE_DIR = Path(__file__).parent / "locale"
LANGUAGES = ("zh_CN", "zh_TW", "en")
DEFAULT = "zh_CN"

# Chinese regions whose written standard is Traditional; every other region is Simplified.
TRADITIONAL_REGIONS = frozenset({"tw", "hk", "mo"})
# Accept-Language is read only this far: a header is short, a longer one is not a browser's.
MAX_ACCEPT = 1024


@functools.cache
def translations(lang: str) -> gettext.NullTranslations:
    if lang not in LANGUAGES:
        lang = DEFAULT
    merged: gettext.NullTranslations = gettext.NullTranslations()
    for po in sorted((LOCALE_DIR / lang / "LC_MESSAGES").glob("*.po")):
        with po.open("rb") as f:
            catalog = read_po(f, locale=lang)
        buf = io.BytesIO()
        write_mo(buf, catalog)
        buf.seek(0)
        t = gettext.GNUTranslations(buf)
        t.add_fallback(merged)
        merged = t
    return merged


def normalise(tag: str | None) -> str | None:
    """A language tag as one of LANGUAGES, or None when it names none of them.

    `_` or `-`, any case: zh-Hant* (whatever the region) and zh-TW / zh-HK / zh-MO are zh_TW;
    zh-Hans*, zh-CN, zh-SG, any other zh-* region and plain zh are zh_CN; en and en-* are en.
    """
    if not tag:
        return None
    parts = tag.strip().lower().replace("_", "-").split("-")
    if parts[0] == "en":
        return "en"
    if parts[0] != "zh":
        return None
    rest = parts[1:]
    if "hant" in rest:
        return "zh_TW"
    if "hans" in rest:
        return "zh_CN"
    return "zh_TW" if rest and rest[0] in TRADITIONAL_REGIONS else "zh_CN"


def from_accept_language(header: str | None) -> str | None:
    """The browser's most preferred language that we have, or None.

    RFC 9110 weights: "zh-TW,zh;q=0.9,en;q=0.8". Ties keep the header's order; q=0 means
    "not this one"; an entry with a malformed weight, and the wildcard, are passed over.
    """
    if not header or len(header) > MAX_ACCEPT:
        return None
    ranked: list[tuple[float, int, str]] = []
    for i, entry in enumerate(header.split(",")):
        tag, _, params = entry.partition(";")
        q = 1.0
        if params:
            name, _, value = params.strip().partition("=")
            if name.strip().lower() != "q":
                continue
            try:
                q = float(value)
            except ValueError:
                continue
            if not 0.0 <= q <= 1.0:
                continue
        lang = normalise(tag)
        if lang is not None and q > 0.0:
            ranked.append((-q, i, lang))
    return min(ranked)[2] if ranked else None


def pick(query_lang: str | None, cookie_lang: str | None,
         accept_language: str | None = None) -> str:
    """?lang= wins over the cookie, the cookie over Accept-Language; none of them naming a
    language we have: zh-CN."""
    for tag in (query_lang, cookie_lang):
        lang = normalise(tag)
        if lang is not None:
            return lang
    return from_accept_language(accept_language) or DEFAULT
