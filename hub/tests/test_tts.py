"""Hall announcements: the words, and real speech from espeak-ng."""

from __future__ import annotations

import asyncio
import shutil
import wave
from concurrent.futures import ThreadPoolExecutor
from io import BytesIO

import pytest

from onewindow.hub.web.tts import Voice, display_zh, number_zh, numeral_zh, spoken


def run(coro):
    """asyncio.run in a thread of its own: the browser tests' Playwright (sync API) keeps an
    event loop running in the main thread for the rest of the session."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result(timeout=60)


def test_numbers_read_digit_by_digit():
    assert number_zh("A017") == "A零一七"
    assert number_zh("B100") == "B一零零"
    assert number_zh("L901") == "L九零一"


def test_window_numbers_as_chinese_numerals():
    assert [numeral_zh(n) for n in (1, 3, 10, 12, 20, 30, 45)] == [
        "一", "三", "十", "十二", "二十", "三十", "四十五"]


def test_the_words():
    assert display_zh("A017", 3) == "请A017号到3号窗口办理业务"
    assert spoken("A017", 3, "zh") == "请A零一七号，到三号窗口办理业务"
    assert spoken("A017", 3, "en") == "Number A 0 1 7, please go to window 3."


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
def test_espeak_makes_a_mandarin_wav_and_caches_it():
    async def go():
        v = Voice()
        a = await v.wav(spoken("A017", 3, "zh"), "zh")
        b = await v.wav(spoken("A017", 3, "zh"), "zh")
        en = await v.wav(spoken("A017", 3, "en"), "en")
        both = await asyncio.gather(*(v.wav(spoken("B002", 1, "zh"), "zh") for _ in range(5)))
        return v, a, b, en, both

    v, a, b, en, both = run(go())
    assert a is b and v.made == 3  # the second one came from the cache; 5 at once made 1
    assert len({id(x) for x in both}) == 1
    with wave.open(BytesIO(a)) as w:
        seconds = w.getnframes() / w.getframerate()
    assert 2.0 < seconds < 10.0, seconds  # a whole sentence, not a beep
    assert en.startswith(b"RIFF") and en != a


def test_a_missing_engine_is_an_error_not_a_hang():
    with pytest.raises((OSError, RuntimeError)):
        run(Voice(engine="/nonexistent/espeak-ng").wav("请", "zh"))
