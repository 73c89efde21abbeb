"""Catalog text in Traditional Chinese: every line, item, material and condition of the
sample catalog has a `zh_tw` written in Traditional characters, and the public pages in
zh-TW show it (server-rendered, in the JSON their scripts read, in the hall's live state),
with the language taken from ?lang=, the cookie or Accept-Language. In process, as
hub/tests/test_i18n_zh_tw.py serves the pages."""

from __future__ import annotations

import asyncio
import json
import re
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware

from onewindow.hub.app import HubApp
from onewindow.hub.catalog import load_catalog
from onewindow.hub.core import commands as c
from onewindow.hub.core.catalog import Catalog, CatalogError, Text
from onewindow.hub.core.centre import Centre
from onewindow.hub.core.centre_config import CentreConfig, WindowSpec
from onewindow.hub.devices import DeviceSpec, Registry
from onewindow.hub.web import public
from onewindow.hub.web.site import CSRFMiddleware, Site
from onewindow.hub.web.traditional import Traditional, texts

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

SAMPLE = Path(__file__).parents[1] / "catalog" / "sample_catalog.json"

# Simplified forms whose Traditional form is a different character (each occurs
# in the sample catalog's Simplified text). Characters that are also Traditional in some
# sense (了 台 后 里 面 只 余 范 干 周 布 采 系 注 折 托 征 划 准 内 愿 ...) are left out.
SIMPLIFIED_ONLY = set(
    "与专业两严丧个临为义习乡书买争产亲众优会伤体儿关养册军况冻减凭创别办务动励劳区医协"
    "单卫历压参双变号听员国场坏声处备妇婴学对导寿将届属岁岗带帮应开异弃弹当录怀态悬户执"
    "抚护报担拥择挂损换断无时显暂机权条来构标档检残殡毁毕没济满灵灾点爱状独献环现电疗监"
    "盖盗码确碍离种积称税稳筛筹签简类紧纠约级纯纳纷纹练细终绍经绑结统继续综绿缴网职联肾"
    "荐荣药获营补见规视计认训议记访证评诉诊询语误说请诺读调负财账贫购贴贷费赁资赔赡踪车"
    "转轮载较辅辖边达迁过运还进违连适选递遗邮邻银销锁长门问间险随隐难页项须顾预领额饮驶"
    "驻验龄发")


def simplified_in(text: str) -> set[str]:
    return SIMPLIFIED_ONLY & set(text)


def test_the_list_catches_simplified_text():
    catalog = load_catalog()
    assert simplified_in("".join(t.zh for t in texts(catalog))) >= set("号办证务险")


def test_every_text_of_the_sample_catalog_has_traditional():
    raw = json.loads(SAMPLE.read_text(encoding="utf-8"))
    entries = [raw["centre_name"], *raw["lines"]]
    for item in raw["items"]:
        entries += [item, item["conditions"], *item.get("materials", ())]
    assert len(entries) == 1 + 12 + 2 * 194 + 552
    for entry in entries:
        assert entry.get("zh_tw"), entry["zh"]
        assert len(entry["zh_tw"]) == len(entry["zh"]), entry  # converted, not rewritten
        assert not simplified_in(entry["zh_tw"]), (entry["zh_tw"], simplified_in(entry["zh_tw"]))
    catalog = load_catalog()
    assert catalog.name.traditional == "示範街道社區事務受理服務中心"
    assert catalog.lines["social"].name.traditional == "社會保險"
    assert catalog.items["SOC-001"].name.traditional == "城鄉居民養老保險參保登記"
    for text in texts(catalog):
        assert text.zh_tw and not simplified_in(text.traditional), text


def test_terms_checked_by_hand():
    """s2tw's character choices that were wrong in these names, fixed once: 發放 (not 髮放),
    換發 (not 換髮); 帳戶 as Taiwan writes it."""
    words = "".join(t.traditional for t in texts(load_catalog()))
    assert "髮" not in words and "賬" not in words
    assert "養老金發放" in words and "補發換發" in words and "銀行帳戶" in words


def test_zh_tw_falls_back_to_zh_and_is_checked_for_the_printer():
    data = json.loads(SAMPLE.read_text(encoding="utf-8"))
    del data["lines"][0]["zh_tw"]
    catalog = Catalog.from_dict(data)
    assert catalog.lines["social"].name.traditional == "社会保险"  # the Simplified, not ""
    assert Text("简", "x").traditional == "简" and Text("简", "x", "簡").traditional == "簡"
    data["items"][0]["zh_tw"] = "𠀋城鄉"  # outside GBK: the printer cannot print it
    with pytest.raises(CatalogError, match="GBK"):
        Catalog.from_dict(data)


# --- the pages -------------------------------------------------------------------------


@pytest.fixture
def env():
    centre = Centre(load_catalog(), CentreConfig("web", tuple(WindowSpec(n) for n in (1, 2))))
    registry = Registry([DeviceSpec("kiosk-1", "kiosk")])
    site = Site(HubApp(centre, registry, "b1", "http://hub.example:8080/t/"))
    app = Starlette(routes=public.routes(site), middleware=[Middleware(CSRFMiddleware)])
    client = TestClient(app)
    client.get("/kiosk?device=kiosk-1")  # the kiosk cookie, and the CSRF cookie
    client.headers["x-csrf-token"] = client.cookies["ow_csrf"]
    return client, site


def act(site, cmd):
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, site.act(cmd)).result(timeout=60)


def page(client, url, *expected, **kw):
    r = client.get(url, **kw)
    assert r.status_code == 200, url
    assert '<html lang="zh-TW">' in r.text, url
    for words in expected:
        assert words in r.text, (url, words)
    return r.text


def test_kiosk_pages_show_the_catalog_in_traditional(env):
    client, _ = env
    home = page(client, "/kiosk?lang=zh-TW", "社會保險", "醫療保險", "殘疾人服務")
    assert "社会保险" not in home
    listing = page(client, "/kiosk/line/social?lang=zh-TW", "城鄉居民養老保險參保登記")
    assert "城乡居民" not in listing
    item = page(client, "/kiosk/item/SOC-001?lang=zh-TW", "城鄉居民養老保險參保登記",
                "年滿16週歲")
    data = json.loads(re.search(r"const OW_ITEM = (\{.*?\});", item, re.S).group(1))
    assert data["item"]["zh_tw"] == "城鄉居民養老保險參保登記"
    assert data["item"]["line_zh_tw"] == "社會保險"
    assert [m["zh_tw"] for m in data["item"]["materials"]][:2] == ["本人居民身份證", "戶口簿"]
    assert all(r["zh_tw"] and not simplified_in(r["zh_tw"]) for r in data["related"])
    page(client, "/tips?items=SOC-001&lang=zh-TW", "本人居民身份證")
    found = client.get("/kiosk/search.json?q=yanglao").json()["items"]
    assert found and all(i["zh_tw"] and not simplified_in(i["zh_tw"]) for i in found)


def test_accept_language_and_the_remembered_choice(env):
    client, _ = env
    client.cookies.delete("lang")
    page(client, "/kiosk", "社會保險", headers={"Accept-Language": "zh-HK,en;q=0.5"})
    english = client.get("/kiosk", headers={"Accept-Language": "en-GB,en;q=0.9"})
    assert '<html lang="en">' in english.text and "Social insurance" in english.text
    page(client, "/kiosk?lang=zh-Hant-TW", "社會保險")  # any spelling of a tag ...
    assert client.cookies["lang"] == "zh_TW"  # ... remembered as the language it names
    page(client, "/kiosk", "社會保險", headers={"Accept-Language": "en"})  # cookie wins


def test_hall_and_phone_in_traditional(env):
    client, site = env
    act(site, c.TakeTicket("SOC-001", source="kiosk-1"))
    act(site, c.OpenWindow(1))
    act(site, c.CallNext(1))
    act(site, c.TakeTicket("MED-001", source="kiosk-1"))
    hall = page(client, "/hall?lang=zh-TW", "社會保險", "醫療保險")
    assert "社会保险" not in hall
    live = site.live.snapshot("hall")
    social = next(w for w in live["waits"] if w["line"] == "social")
    assert social["zh_tw"] == "社會保險" and social["zh"] == "社会保险"
    ticket = next(t for t in site.hub.centre.tickets.values() if t.item == "MED-001")
    phone = page(client, f"/t/{ticket.id}?lang=zh-TW")
    med = site.hub.centre.catalog.items["MED-001"].name
    assert med.traditional in phone and med.zh not in phone


def test_a_kiosk_take_and_its_refusal_in_traditional(env):
    client, site = env
    client.get("/kiosk?lang=zh-TW")
    t = client.post("/kiosk/take", json={"device": "kiosk-1", "item": "SOC-001",
                                         "have": [], "insist": True}).json()
    assert t["items"][0]["zh_tw"] == "城鄉居民養老保險參保登記"
    # SOC-002 is served at a cashier's window only: none here.
    refused = client.post("/kiosk/take", json={"device": "kiosk-1", "item": "SOC-002",
                                               "have": [], "insist": True})
    assert refused.status_code == 409 and refused.json()["code"] == "not_served_here"
    msg = refused.json()["msg"]
    name = site.hub.centre.catalog.items["SOC-002"].name.traditional
    assert msg == f"本中心無窗口辦理「{name}」，請洽詢工作人員。"
    assert not simplified_in(msg)
    english = client.post("/kiosk/take?lang=en", json={"device": "kiosk-1", "item": "SOC-002",
                                                       "have": [], "insist": True})
    assert english.json()["msg"].startswith("No window here handles ")


def test_the_lookup_only_adds(env):
    _, site = env
    tw = Traditional(site.hub.centre.catalog)
    snap = {"waits": [{"zh": "社会保险", "en": "x"}, {"zh": "不在目录", "en": "y"}]}
    out = tw.annotate(snap)
    assert out["waits"][0]["zh_tw"] == "社會保險" and out["waits"][1]["zh_tw"] == "不在目录"
    assert "zh_tw" not in snap["waits"][0]  # the snapshot itself is left as it was
