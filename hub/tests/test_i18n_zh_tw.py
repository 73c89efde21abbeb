"""Traditional Chinese (zh-TW / zh-HK): a complete catalog beside every zh-CN one, written in
Traditional characters, chosen by ?lang=, the cookie or Accept-Language, and the public pages
served in it (in process, as hub/tests/test_public_api.py does)."""

from __future__ import annotations

import asyncio
import json
import re
import warnings
from concurrent.futures import ThreadPoolExecutor

import pytest
from babel.messages.pofile import read_po
from starlette.applications import Starlette
from starlette.middleware import Middleware

from onewindow.hub.app import HubApp
from onewindow.hub.catalog import load_catalog
from onewindow.hub.core import commands as c
from onewindow.hub.core.centre import Centre
from onewindow.hub.core.centre_config import CentreConfig, WindowSpec
from onewindow.hub.devices import DeviceSpec, Registry
from onewindow.hub.web import i18n, public
from onewindow.hub.web.site import CSRFMiddleware, Site

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

# Common characters that exist only in Simplified writing: none may reach a zh-TW reader.
SIMPLIFIED_ONLY = set("号办预请们这时间钟门过说还么为务应证单认动态拟录级")
PLACEHOLDER = re.compile(r"%\([a-z_]+\)[sd]|\{[a-z_]+\}")

ZH_CN = i18n.LOCALE_DIR / "zh_CN" / "LC_MESSAGES"
ZH_TW = i18n.LOCALE_DIR / "zh_TW" / "LC_MESSAGES"


def catalog(path):
    with path.open("rb") as f:
        return read_po(f)


def texts(message):
    s = message.string
    return list(s) if isinstance(s, (tuple, list)) else [s]


def simplified_in(text: str) -> set[str]:
    return SIMPLIFIED_ONLY & set(text)


def test_every_zh_cn_catalog_has_a_complete_zh_tw_sibling():
    cn_files = sorted(p.name for p in ZH_CN.glob("*.po"))
    assert "public.po" in cn_files
    assert sorted(p.name for p in ZH_TW.glob("*.po")) == cn_files
    for name in cn_files:
        cn, tw = catalog(ZH_CN / name), catalog(ZH_TW / name)
        assert tw.locale is not None and tw.locale.territory == "TW", name
        for m in cn:
            if not m.id or not any(texts(m)):
                continue
            t = tw.get(m.id, m.context)
            assert t is not None, f"{name}: no zh_TW entry for {m.id!r}"
            assert all(texts(t)) and not t.fuzzy, f"{name}: {m.id!r} untranslated"
            for a, b in zip(texts(m), texts(t), strict=True):
                assert sorted(PLACEHOLDER.findall(a)) == sorted(PLACEHOLDER.findall(b)), (
                    f"{name}: {m.id!r} placeholders differ: {a!r} / {b!r}")


def test_no_zh_tw_translation_uses_simplified_only_characters():
    seen = 0
    for po in sorted(ZH_TW.glob("*.po")):
        for m in catalog(po):
            for s in texts(m) if m.id else []:
                seen += 1
                assert not simplified_in(s), f"{po.name}: {m.id!r} -> {s!r}"
    assert seen >= 200  # every catalog was read, not an empty folder
    # The check itself sees Simplified text: the zh_CN catalog is full of it.
    cn = "".join(s for m in catalog(ZH_CN / "public.po") if m.id for s in texts(m))
    assert {"号", "办", "请", "预"} <= simplified_in(cn)


def test_the_catalog_is_traditional_and_keeps_the_hall_s_words():
    t = i18n.translations("zh_TW")
    assert t.gettext("Please go to window %(w)s") == "請到%(w)s號窗口"  # 窗口, not 視窗
    assert t.gettext("What would you like to do today?") == "您今天要辦什麼事？"
    assert t.gettext("Appointment") == "預約"
    # Simplified stays the default, and a message missing from zh_TW falls back to English.
    assert i18n.translations("fr").gettext("Appointment") == "预约"
    assert t.gettext("no such message") == "no such message"


@pytest.mark.parametrize("tag", ["zh_TW", "zh-TW", "zh-tw", "zh-HK", "zh_HK", "zh-MO",
                                 "zh-Hant", "zh-Hant-TW", "zh-Hant-HK", "zh-hant-cn"])
def test_traditional_tags(tag):
    assert i18n.normalise(tag) == "zh_TW"
    assert i18n.pick(tag, None) == "zh_TW"
    assert i18n.pick(None, None, tag) == "zh_TW"


@pytest.mark.parametrize("tag", ["zh_CN", "zh-CN", "zh", "zh-SG", "zh-Hans", "zh-Hans-HK"])
def test_simplified_tags(tag):
    assert i18n.normalise(tag) == "zh_CN"


def test_pick_order_and_defaults():
    assert i18n.pick("zh-TW", "en", "en") == "zh_TW"  # ?lang= first
    assert i18n.pick(None, "zh_TW", "en") == "zh_TW"  # then the cookie
    assert i18n.pick("fr", "bogus", "zh-HK") == "zh_TW"  # then Accept-Language
    assert i18n.pick(None, None, None) == "zh_CN"
    assert i18n.pick("fr", "de-DE", "fr-FR, *;q=0.5") == "zh_CN"
    assert i18n.pick("en-GB", None) == "en"


@pytest.mark.parametrize(("header", "lang"), [
    ("zh-TW,zh;q=0.9,en;q=0.8", "zh_TW"),
    ("zh-HK, en;q=0.5", "zh_TW"),
    ("zh-Hant;q=0.8, en;q=0.7", "zh_TW"),
    ("en;q=0.5, zh-TW;q=0.9", "zh_TW"),  # by weight, not position
    ("zh-CN,zh;q=0.9,zh-TW;q=0.8", "zh_CN"),
    ("en-US,en;q=0.9,zh-TW;q=0.5", "en"),
    ("fr-FR, zh-TW;q=0", None),  # q=0: not acceptable
    ("zh-TW;q=high, en;q=0.2", "en"),  # a malformed weight drops its entry only
    ("zh-TW;q=2, en;q=0.2", "en"),
    ("zh-TW;level=1, en", "en"),
    ("*", None),
    ("", None),
    ("zh-TW" + ",x" * 600, None),  # far longer than any browser sends
])
def test_accept_language(header, lang):
    assert i18n.from_accept_language(header) == lang


# --- the public pages, served in process -----------------------------------------------


@pytest.fixture
def env():
    centre = Centre(load_catalog(), CentreConfig("web", tuple(WindowSpec(n) for n in (1, 2))))
    registry = Registry([DeviceSpec("kiosk-1", "kiosk")])
    site = Site(HubApp(centre, registry, "b1", "http://hub.example:8080/t/"))
    app = Starlette(routes=public.routes(site), middleware=[Middleware(CSRFMiddleware)])
    return TestClient(app), site


def act(site, cmd):
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, site.act(cmd)).result(timeout=60)


def shown(html: str) -> str:
    """The page's text as a reader meets it: the HTML, and the words its script writes in
    later (`OW_T`, JSON with its non-ASCII escaped by the template's tojson)."""
    m = re.search(r"const OW_T = (\{.*?\});", html, re.S)
    return html + ("\n".join(json.loads(m.group(1)).values()) if m else "")


def traditional_page(client, url, *expected):
    r = client.get(url)
    assert r.status_code == 200, url
    assert '<html lang="zh-TW">' in r.text, url
    text = shown(r.text)
    for words in expected:
        assert words in text, (url, words)
    assert not simplified_in(text), (url, simplified_in(text))
    # The switcher offers all three, the current one marked.
    assert re.search(r'href="\?lang=zh_TW"[^>]*aria-current="true"[^>]*>繁體<', r.text), url
    assert 'href="?lang=zh_CN"' in r.text and ">简体<" in r.text and ">English<" in r.text
    return r.text


@pytest.mark.parametrize("tag", ["zh-TW", "zh-HK", "zh-Hant"])
def test_public_pages_in_traditional(env, tag):
    client, site = env
    traditional_page(client, f"/kiosk?device=kiosk-1&lang={tag}",
                     "您今天要辦什麼事", "搜尋", "或按部門選擇")
    traditional_page(client, f"/kiosk/item/SOC-001?lang={tag}", "辦理條件", "核對材料並取號")
    traditional_page(client, f"/tips?items=SOC-001&lang={tag}", "辦事材料清單", "帶齊必需材料")
    for _ in range(2):
        act(site, c.TakeTicket("SOC-001", source="kiosk-1"))
    act(site, c.OpenWindow(1))
    act(site, c.CallNext(1))
    first, second = list(site.hub.centre.tickets)
    traditional_page(client, f"/hall?lang={tag}", "叫號屏", "請到1號窗口", "最近叫號",
                     "等候時間預告")
    traditional_page(client, f"/t/{second}?lang={tag}", "我的號票", "您的號碼", "前面還有",
                     "請到{w}號窗口辦理")
    traditional_page(client, f"/t/{first}?lang={tag}", "A001")
    gone = client.get(f"/t/20200101-A001?lang={tag}")
    assert gone.status_code == 404 and "沒有找到這張號票" in gone.text
    assert not simplified_in(gone.text)


def test_the_switcher_s_choice_is_remembered(env):
    client, _ = env
    traditional_page(client, "/kiosk?device=kiosk-1&lang=zh_TW", "您今天要辦什麼事")
    assert client.cookies["lang"] == "zh_TW"
    traditional_page(client, "/kiosk", "您今天要辦什麼事")  # the cookie, no ?lang=
    simplified = client.get("/kiosk?lang=zh_CN")
    assert '<html lang="zh-CN">' in simplified.text and "您今天要办什么事" in simplified.text
    assert re.search(r'href="\?lang=zh_CN"[^>]*aria-current="true"[^>]*>简体<', simplified.text)
