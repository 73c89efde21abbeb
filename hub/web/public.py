"""Public pages: hall screen, kiosk, the resident's phone page. Read-only but for taking a
ticket at the kiosk (and printing a tips slip there); nothing personal on any of them.

    GET  /kiosk[?device=kiosk-1]        the kiosk's home: department lines, search box
    GET  /kiosk/line/{line}             items of one department line
    GET  /kiosk/search?q=               search results (names, synonyms, pinyin, English)
    GET  /kiosk/search.json?q=          the same as JSON, for search-as-you-type
    GET  /kiosk/item/{item}             conditions, materials (pre-review), related items
    POST /kiosk/review                  {device, items, have} -> {ok, missing, tips_url, qr}
    POST /kiosk/tips/print              {device, items, have} -> tips slip on the device
    POST /kiosk/take                    {device, item, extra_items, have, insist}
    GET  /tips?items=A,B[&miss=A.0,B.1] what to bring (the tips slip's QR opens this)
    GET  /hall[?voice=en]               the hall screen (live channel "hall")
    GET  /hall/voice/{call}.wav?lang=   the spoken announcement of one recent call
    GET  /t/{ticket_id}                 the resident's phone page (live channel "ticket")
"""

from __future__ import annotations

from typing import Any

from starlette.routing import BaseRoute

from .hall import Hall
from .kiosk import Kiosk
from .phone import Phone
from .site import Site
from .traditional import Traditional


def tr(text: Any, lang: str, traditional: Traditional | None = None) -> str:
    """A catalog text (Text, or a dict with zh/en and perhaps zh_tw) in the page's
    language: zh_TW takes the Traditional (from the dict, else looked up in `traditional`,
    else the Simplified); English falls back to Chinese when a text has none."""
    if isinstance(text, dict):
        zh, en = str(text.get("zh", "")), str(text.get("en", ""))
        tw = str(text.get("zh_tw") or (traditional.of(zh) if traditional else zh))
    else:
        zh, en, tw = text.zh, text.en, text.traditional
    if lang == "zh_TW":
        return tw
    return zh if lang == "zh_CN" or not en else en


def routes(site: Site) -> list[BaseRoute]:
    traditional = Traditional(site.hub.centre.catalog)
    site.env.filters["tr"] = lambda text, lang: tr(text, lang, traditional)
    hall, kiosk, phone = Hall(site), Kiosk(site), Phone(site)
    # The hall's live waits carry the line names' Traditional too (hall.js shows them).
    def hall_snapshot(arg: str = "") -> Any:
        return traditional.annotate(hall.snapshot(arg))

    site.live.channel("hall", hall_snapshot)
    site.live.channel("ticket", phone.snapshot)
    return [*kiosk.routes(), *hall.routes(), *phone.routes()]
