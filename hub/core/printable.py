"""Which characters a Chinese thermal printer can print: ASCII and GBK, nothing else.

Most thermal printers sold in China run a GBK firmware: in Chinese (Kanji) mode a byte
0x81-0xFE starts a two-byte GBK code and the printer's font holds the GBK repertoire.
A character outside GBK has no two-byte code: a four-byte GB18030 sequence (𠀋 U+2000B)
prints as boxes and stray digits, and a character GB18030-2005 moved to a two-byte code
that GBK left undefined (䶮 U+4DAE, FE9F) prints as a box. Private-use characters have
no glyph in the printer's font either. Pure: no I/O.
"""

from __future__ import annotations

import unicodedata

SUBSTITUTE = "？"  # U+FF1F, GBK A3BF: visible, and obviously not what was meant
ASCII_SUBSTITUTE = "?"


def printable(ch: str) -> bool:
    """True when the printer prints ``ch`` as itself: printable ASCII or two-byte GBK."""
    if " " <= ch <= "~":
        return True
    if unicodedata.category(ch) == "Co":  # private use: no glyph in any printer font
        return False
    try:
        return len(ch.encode("gbk")) == 2
    except UnicodeEncodeError:
        return False


def unprintable(text: str) -> list[str]:
    """The characters of ``text`` the printer cannot print, each once, in order."""
    seen: list[str] = []
    for ch in text:
        if not printable(ch) and ch not in seen:
            seen.append(ch)
    return seen


def describe(ch: str) -> str:
    """'𠀋 (U+2000B)': the character and its code point, for messages."""
    return f"{ch} (U+{ord(ch):04X})"


def not_ascii_foldable(text: str) -> list[str]:
    """Characters of Latin text that do not fold to printable ASCII (accents fold away:
    é -> e; whitespace collapses to spaces), each once, in order."""
    seen: list[str] = []
    for ch in unicodedata.normalize("NFKD", " ".join(text.split())):
        if not (" " <= ch <= "~" or unicodedata.combining(ch)) and ch not in seen:
            seen.append(ch)
    return seen


def substitute(text: str) -> str:
    """``text`` with every unprintable character replaced by ？ (U+FF1F)."""
    return "".join(ch if printable(ch) else SUBSTITUTE for ch in text)
