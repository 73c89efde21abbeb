"""Page text in zh-CN (default) and English, from gettext catalogs edited with Babel.

Source strings (msgids) are English; `locale/zh_CN/LC_MESSAGES/*.po` hold the Chinese. Every
.po file of a language is read at start-up and compiled in memory with Babel, so there are no
compiled .mo files to forget in the repository. `pybabel extract -F babel.cfg` finds new
strings in templates and Python.
"""

from __future__ import annotations

import functools
import gettext
import io
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LOCALE_DIR = Path(__file__).parent / "locale"
LANGUAGES = ("zh_CN", "en")
DEFAULT = "zh_CN"


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


def pick(query_lang: str | None, cookie_lang: str | None) -> str:
    """?lang= wins over the cookie; anything unknown falls back to zh-CN."""
    for lang in (query_lang, cookie_lang):
        if lang in LANGUAGES:
            return lang
    return DEFAULT
