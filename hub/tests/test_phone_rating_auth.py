"""Only a ticket's holder rates its service from the phone page (issue 16).

The ticket's link carries a token signed under the centre's code key (core/signing.py, the
mechanism booking codes use): printed in the ticket's QR code, given with the kiosk's
link. The page without it shows the ticket read-only; POST /t/{id}/rate without it, with
another ticket's token or one signed under another key is refused with 403 and changes
nothing; tries are limited per client address (429 with Retry-After).
"""

from __future__ import annotations

import json
import warnings

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware

from onewindow.hub.app import HubApp
from onewindow.hub.catalog import load_catalog
from onewindow.hub.core import booking, signing
from onewindow.hub.core import commands as c
from onewindow.hub.core.centre import Centre
from onewindow.hub.core.centre_config import CentreConfig, WindowSpec
from onewindow.hub.devices import DeviceSpec, Registry
from onewindow.hub.web import public
from onewindow.hub.web.phone import RATE_LIMIT
from onewindow.hub.web.site import CSRFMiddleware, Site
from onewindow.node.scanner import TICKET
from onewindow.protocol import ow_protocol as proto

from .test_ratings import T0, hub

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

KEY = booking.derive_key(b"the centre's secret, 32 bytes...", "web")
OTHER_KEY = booking.derive_key(b"another centre's secret ........", "web")
ID_CARD, HUKOU = "本人居民身份证", "户口簿"  # SOC-001's required materials


class Env:
    def __init__(self, key: bytes | None = KEY) -> None:
        self.now = T0
        centre = Centre(load_catalog(), CentreConfig("web", (WindowSpec(1), WindowSpec(2))))
        registry = Registry([DeviceSpec("kiosk-1", "kiosk"), DeviceSpec("kp-1", "keypad", 1)])
        self.hub = HubApp(centre, registry, "b1", "http://hub.example:8080/t/")
        self.hub.booking_key = key
        self.site = Site(self.hub, None, lambda: self.now)
        self.app = Starlette(routes=public.routes(self.site),
                             middleware=[Middleware(CSRFMiddleware)])

    def client(self, address: str = "10.0.0.7") -> TestClient:
        client = TestClient(self.app, client=(address, 50000))
        client.get("/kiosk?device=kiosk-1")  # the device cookie and the CSRF cookie
        client.headers["X-CSRF-Token"] = client.cookies["ow_csrf"]
        return client

    def served(self, client: TestClient) -> tuple[str, str]:
        """A ticket taken at the kiosk and served at window 1: (id, the kiosk's link)."""
        r = client.post("/kiosk/take", json={"device": "kiosk-1", "item": "SOC-001",
                                             "have": [ID_CARD, HUKOU]})
        assert r.status_code == 200, r.text
        tid, url = r.json()["id"], r.json()["url"]
        if self.hub.centre.windows[1].clerk is None:
            self.hub.centre.apply(c.OpenWindow(1, clerk="wang"), self.now)
        for cmd in (c.CallNext(1), c.Start(1), c.Complete(1)):
            self.hub.centre.apply(cmd, self.now)
        self.now += 60
        return tid, url


@pytest.fixture
def env() -> Env:
    return Env()


def _unchanged(env: Env, before: dict, pos: int) -> None:
    assert env.hub.centre.to_dict() == before and env.hub.pos == pos
    assert env.hub.centre.ratings == {}


def test_the_kiosk_link_carries_the_ticket_token_and_the_page_is_read_only_without_it(env):
    client = env.client()
    tid, url = env.served(client)
    token = signing.ticket_token(KEY, "web", tid)
    assert url == f"http://hub.example:8080/t/{tid}?k={token}"
    assert len(token) == signing.TICKET_TOKEN and token.isalnum() and token.isupper()

    def shown(query: str) -> dict:
        page = client.get(f"/t/{tid}{query}")
        assert page.status_code == 200
        start = page.text.index("const OW_TICKET = ") + len("const OW_TICKET = ")
        return json.JSONDecoder().raw_decode(page.text, start)[0]

    holder = shown(f"?k={token}")
    assert holder["holder"] is True and holder["can_rate"] is True
    for query in ("", "?k=", f"?k={token[:-1]}A", f"?k={token.lower()}",
                  f"?k={signing.ticket_token(OTHER_KEY, 'web', tid)}"):
        view = shown(query)  # the ticket, its state: read-only
        assert (view["number"], view["state"]) == (tid[-4:], "done"), query
        assert view["holder"] is False and view["can_rate"] is False, query
    # the live feed (shared by every viewer) says what the service allows, not who asks
    assert env.site.live.snapshot("ticket", tid)["can_rate"] is True


def test_rating_needs_the_ticket_s_own_token_and_a_refusal_changes_nothing(env):
    client = env.client()
    tid, _ = env.served(client)
    other, _ = env.served(client)
    before, pos = env.hub.centre.to_dict(), env.hub.pos
    for query, body in (
            ("", {"score": 1}),  # no token: anyone who guessed the id
            ("?k=", {"score": 1}),
            (f"?k={signing.ticket_token(KEY, 'web', other)}", {"score": 1}),  # another's
            (f"?k={signing.ticket_token(OTHER_KEY, 'web', tid)}", {"score": 1}),
            (f"?k={signing.ticket_token(KEY, 'elsewhere', tid)}", {"score": 1}),
            ("", {"score": 1, "k": signing.ticket_token(KEY, "web", tid)[:-1]}),
            ("", {"score": 1, "k": 12345}),
            ("", {"score": 1, "k": ["x"]})):
        r = client.post(f"/t/{tid}/rate{query}", json=body)
        assert r.status_code == 403 and r.json()["code"] == "bad_token", (query, body)
        assert "二维码" in r.json()["msg"] and "二維碼" in r.json()["msg"]
        _unchanged(env, before, pos)
    # a ticket id that is not today's answers the same: ids cannot be probed
    r = client.post("/t/20991231-Z999/rate", json={"score": 1})
    assert r.status_code == 403 and r.json()["code"] == "bad_token"
    _unchanged(env, before, pos)

    token = signing.ticket_token(KEY, "web", tid)
    r = client.post(f"/t/{tid}/rate?k={token}", json={"score": 2, "comment": "等太久"})
    assert r.status_code == 200 and r.json()["rated"] is True, r.text
    [rating] = env.hub.centre.ratings.values()
    assert (rating.ticket, rating.score, rating.window) == (tid, 2, 1)
    # the token in the JSON body works the same (phone.js sends it there); from another
    # phone, since this one used its tries (the limit: the last test)
    r = env.client("10.0.0.8").post(f"/t/{other}/rate",
                    json={"score": 5, "k": signing.ticket_token(KEY, "web", other)})
    assert r.status_code == 200, r.text
    assert sorted((r.ticket, r.score) for r in env.hub.centre.ratings.values()) == \
        [(tid, 2), (other, 5)]


def test_a_hub_without_a_code_key_prints_no_token_and_rates_nothing_from_phones():
    env = Env(key=None)
    client = env.client()
    tid, url = env.served(client)
    assert url == f"http://hub.example:8080/t/{tid}"
    before, pos = env.hub.centre.to_dict(), env.hub.pos
    for query in ("", f"?k={signing.ticket_token(KEY, 'web', tid)}"):
        r = client.post(f"/t/{tid}/rate{query}", json={"score": 5})
        assert r.status_code == 403 and r.json()["code"] == "bad_token"
    _unchanged(env, before, pos)


def test_rating_tries_are_limited_per_client_address(env):
    client = env.client("10.0.0.9")
    tid, _ = env.served(client)
    before, pos = env.hub.centre.to_dict(), env.hub.pos
    for _ in range(RATE_LIMIT.burst):  # wrong tokens: refused, each a try
        assert client.post(f"/t/{tid}/rate?k=AAAAAAAAAAAAAAAA",
                           json={"score": 1}).status_code == 403
    token = signing.ticket_token(KEY, "web", tid)
    r = client.post(f"/t/{tid}/rate?k={token}", json={"score": 5})
    assert r.status_code == 429 and r.json()["code"] == "rate_limited"
    assert int(r.headers["Retry-After"]) == round(60 / RATE_LIMIT.per_minute)
    _unchanged(env, before, pos)  # even the right token waits its turn
    # another address is not slowed by this one
    assert env.client("10.0.0.10").post(
        f"/t/{tid}/rate?k=AAAAAAAAAAAAAAAA", json={"score": 1}).status_code == 403
    env.now += 60 / RATE_LIMIT.per_minute  # one try back
    r = client.post(f"/t/{tid}/rate?k={token}", json={"score": 5})
    assert r.status_code == 200, r.text
    assert env.hub.centre.ratings[tid].score == 5


def _printed(key: bytes | None) -> tuple[HubApp, dict]:
    """A box's take: (the hub, the print command it sends the box)."""
    app = hub()
    app.booking_key = key
    step = app.handle(proto.device_topic("t1", "box-1", "evt"),
                      proto.encode("evt", proto.event("box-1", 1, "take", item="SOC-1")), T0)
    [printed] = [proto.decode("cmd", p.payload) for p in step.publishes
                 if p.topic == proto.device_topic("t1", "box-1", "cmd")]
    return app, printed


def test_the_printed_ticket_s_qr_carries_the_token_and_the_window_node_still_reads_it():
    app, printed = _printed(KEY)
    tid = app.centre.by_number["A001"].id
    assert printed["qr"] == f"{app.status_url}{tid}?k={signing.ticket_token(KEY, 't1', tid)}"
    assert not any("?k=" in line for line in printed["lines"])  # the link is in the QR only
    # the clerk's node scans the resident's QR code to start service: the id is read
    m = TICKET.search(printed["qr"])
    assert m is not None and m.group(1) == tid
    assert TICKET.search(f"http://hub/t/{tid}?k=not-base32!") is None
    # a hub without a key prints the bare link, as before, and the same lines
    bare, plain = _printed(None)
    assert plain["qr"] == f"{bare.status_url}{tid}" and plain["lines"] == printed["lines"]


def test_booking_codes_and_ticket_tokens_share_one_signing_and_never_match():
    code = "B0012"
    assert booking.short_code(KEY, "web", code) == \
        f"{code}-{signing.sign(KEY, 'booking', 'web', code)[:6]}"
    assert booking.verify(KEY, "web", booking.qr_text(KEY, "web", code)) == code
    # a ticket token is not a booking signature of the same name, nor the reverse
    name = "20261123-A017"
    assert signing.ticket_token(KEY, "web", name) != \
        signing.sign(KEY, "booking", "web", name)[:signing.TICKET_TOKEN]
    assert not signing.ticket_token_ok(
        KEY, "web", name, signing.sign(KEY, "booking", "web", name)[:signing.TICKET_TOKEN])
    assert signing.ticket_token_ok(KEY, "web", name, signing.ticket_token(KEY, "web", name))
