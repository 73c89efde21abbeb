"""Hall announcements: the words, and speech made on the hub with espeak-ng.

"请A017号到3号窗口办理业务" is shown; it is spoken the way Chinese announcers read it, the
ticket number digit by digit (A017 -> "A零一七") and the window as a Chinese numeral
(3 -> 三, 12 -> 十二). English (optional on the hall screen): "Number A 0 1 7, please go to
window 3". espeak-ng (`-v cmn` Mandarin, `-v en`) writes a WAV to stdout; clips are cached
by text, so a recall or a second hall screen costs nothing. Only texts the hub made from its
own calls are ever spoken: the web endpoint takes a call id, never text.
"""

from __future__ import annotations

import asyncio
import shutil
from collections import OrderedDict

DIGITS_ZH = "零一二三四五六七八九"
ESPEAK = shutil.which("espeak-ng") or "espeak-ng"
VOICES = {"zh": "cmn", "en": "en"}
CACHE = 64  # clips; a hall shows 8 calls


def number_zh(number: str) -> str:
    """A017 -> A零一七: letters as they are, each digit as its own Chinese digit."""
    return "".join(DIGITS_ZH[int(ch)] if ch.isdigit() else ch for ch in number)


def numeral_zh(n: int) -> str:
    """1-99 as said aloud: 3 -> 三, 10 -> 十, 12 -> 十二, 30 -> 三十, 45 -> 四十五."""
    if not 0 <= n < 100:
        return number_zh(str(n))
    tens, ones = divmod(n, 10)
    if tens == 0:
        return DIGITS_ZH[ones]
    head = "" if tens == 1 else DIGITS_ZH[tens]
    return head + "十" + (DIGITS_ZH[ones] if ones else "")


def display_zh(number: str, window: int) -> str:
    return f"请{number}号到{window}号窗口办理业务"


def display_en(number: str, window: int) -> str:
    return f"Number {number}, please go to window {window}"


def spoken(number: str, window: int, lang: str) -> str:
    """The text handed to the speech engine."""
    if lang == "en":
        letters = " ".join(number)  # "A 0 1 7": spelled out, not "A seventeen"
        return f"Number {letters}, please go to window {window}."
    return f"请{number_zh(number)}号，到{numeral_zh(window)}号窗口办理业务"


class Voice:
    """WAV clips from espeak-ng, cached by (language, text)."""

    def __init__(self, engine: str = ESPEAK, speed: int = 140) -> None:
        self.engine = engine
        self.speed = speed
        self._cache: OrderedDict[tuple[str, str], bytes] = OrderedDict()
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        self.made = 0  # clips synthesised (not from the cache)

    async def wav(self, text: str, lang: str = "zh") -> bytes:
        key = (lang, text)
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            return hit
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            hit = self._cache.get(key)
            if hit is None:
                hit = await self._synthesise(text, VOICES.get(lang, "cmn"))
                self.made += 1
                self._cache[key] = hit
                while len(self._cache) > CACHE:
                    self._cache.popitem(last=False)
        self._locks.pop(key, None)
        return hit

    async def _synthesise(self, text: str, voice: str) -> bytes:
        proc = await asyncio.create_subprocess_exec(
            self.engine, "-v", voice, "-s", str(self.speed), "--stdout", "--", text,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 20)
        if proc.returncode != 0 or not out.startswith(b"RIFF"):
            raise RuntimeError(f"espeak-ng failed ({proc.returncode}): "
                               f"{err.decode(errors='replace').strip()}")
        return fix_sizes(out)


def fix_sizes(wav: bytes) -> bytes:
    """espeak-ng streams to stdout, so its RIFF and data sizes say "unknown" (0x7fffffff);
    browsers then cannot tell the clip's length. Write the real ones."""
    at = wav.find(b"data", 12)
    if not wav.startswith(b"RIFF") or at < 0:
        return wav
    body = len(wav) - (at + 8)
    return (wav[:4] + (len(wav) - 8).to_bytes(4, "little") + wav[8:at + 4]
            + body.to_bytes(4, "little") + wav[at + 8:])
