"""Diversion on the public pages (issue 20): the hall screen, the kiosk's home and the phone
page show nearby centres' waits in the page's language when the hub is in a city; nothing
at all (and /city answers 404 no_city) when it is not."""

import datetime as dt
import warnings
from types import SimpleNamespace

from onewindow.hub.app import HubApp
from onewindow.hub.catalog import load_catalog
from onewindow.hub.core import commands as c
from onewindow.hub.core import diversion as dv
from onewindow.hub.core.centre import Centre
from onewindow.hub.core.centre_config import CentreConfig, WindowSpec
from onewindow.hub.devices import DeviceSpec, Registry
from onewindow.hub.store.accounts import Accounts
from onewindow.hub.store.files import FileStore
from onewindow.hub.web.app import create_app
from onewindow.hub.web.port import MemoryPort
from onewindow.hub.web.site import Site

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

NOW = dt.datetime(2026, 11, 23, 10, tzinfo=dt.timezone(dt.timedelta(hours=8))).timestamp()


class Features:
    """What the pages ask of hub/city/features.py's CityFeatures."""

    def __init__(self, centre: Centre) -> None:
        self.centre, self.me = centre, "here"
        self.settings = SimpleNamespace(neighbours=(dv.Neighbour("near", 1.5),))

    def own(self) -> dv.Waits:
        """Every line has a free time here but social, fully booked."""
        return dv.Waits("here", NOW, {line: dv.LineWait(0, 0.0, None if line == "social"
                                                        else NOW + 3600)
                                      for line in self.centre.catalog.lines})

    def nearest_free(self, line: str) -> dv.FreeSlot | None:
        return dv.FreeSlot("near", 1.5, NOW + 1800, {"zh": "近邻中心", "en": "Near Street"},
                           "http://near.example/book")

    def nearby(self) -> list[dv.Nearby]:
        return [dv.Nearby("near", 1.5, {"zh": "近邻中心", "zh_tw": "近鄰中心", "en": "Near Street"},
                          "http://near.example", 2, 3.0, True)]


def client(tmp_path, city: bool) -> tuple[TestClient, str]:
    centre = Centre(load_catalog(), CentreConfig("here", (WindowSpec(1),)))
    ticket = centre.apply(c.TakeTicket("GEN-099"), NOW)[0].ticket
    hub = HubApp(centre, Registry([DeviceSpec("kiosk-1", "kiosk")]), "b1",
                 "http://hub.example/t/")
    site = Site(hub, MemoryPort(hub, lambda: NOW), clock=lambda: NOW)
    site.accounts = Accounts(f"sqlite:///{tmp_path}/hub.db")  # type: ignore[attr-defined]
    app = create_app(hub, FileStore(tmp_path), port=site.port, site=site,
                     clock=lambda: NOW)
    if city:
        site.city = Features(centre)  # type: ignore[attr-defined]
    return TestClient(app), ticket


def test_hall_kiosk_and_phone_show_nearby_centres_in_the_pages_language(tmp_path) -> None:
    http, ticket = client(tmp_path, city=True)
    hall = http.get("/hall?lang=en").text
    assert 'data-centre="near"' in hall and "Near Street" in hall and "Shorter wait" in hall
    kiosk = http.get("/kiosk?device=kiosk-1&lang=zh-TW").text
    assert "附近中心當前等候" in kiosk and "近鄰中心" in kiosk and "約3分鐘" in kiosk
    phone = http.get(f"/t/{ticket}?lang=zh-CN").text
    assert "附近中心当前等候" in phone and "近邻中心" in phone and "约3分钟" in phone
    assert http.get("/city/nearby?lang=en").json()["centres"][0]["wait"] == "about 3 min"


def test_the_booking_page_offers_the_nearest_centre_for_a_line_booked_full(tmp_path) -> None:
    http, _ = client(tmp_path, city=True)
    page = http.get("/book?lang=en").text
    assert "Fully booked here: free times nearby" in page
    assert 'data-line="social" data-centre="near"' in page
    assert 'href="http://near.example/book"' in page and "11-23 10:30" in page
    assert page.count("<li data-line=") == 1  # only the line booked full here


def test_a_centre_without_the_city_shows_nothing_of_it(tmp_path) -> None:
    http, ticket = client(tmp_path, city=False)
    for page in ("/hall", "/kiosk?device=kiosk-1", f"/t/{ticket}", "/book"):
        r = http.get(page)
        assert r.status_code == 200 and "city-nearby" not in r.text
        assert "city-book" not in r.text
    r = http.get("/city/nearby")
    assert r.status_code == 404 and r.json()["code"] == "no_city"


def test_the_city_pages_strings_come_from_the_hubs_catalogs() -> None:
    """hub/city/dashboard.py's strings: English msgids, zh-CN and zh-TW from city.po."""
    from onewindow.hub.city import dashboard

    for key, msgid in dashboard.MSG.items():
        zh, tw, en = (dashboard.t(lang, key) for lang in ("zh-CN", "zh-TW", "en"))
        assert en == msgid and zh != msgid and tw != msgid, key
    assert [dashboard.t(lang, "report") for lang in ("zh-CN", "zh-TW", "en", "fr")] == [
        "全市月报", "全市月報", "City monthly report", "全市月报"]
    assert dashboard.t("zh_TW", "quality") == "閉環品質"
