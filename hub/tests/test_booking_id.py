"""Issue 16: a phone booking may carry the resident's ID number, so that tapping the ID card
at a kiosk checks it in. The hub hashes the typed number into the token the card gives
(node.card.resident_token under the nodes' card key, [stations] card_key_file) and keeps
only that; a bad number or a centre without the card key is refused with nothing booked.
End to end with the real node and a card tap: node/tests/test_node_booking_checkin.py."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from onewindow.hub.core import commands as c
from onewindow.hub.web import booking, resident_id
from onewindow.hub.web.ratelimit import BookingLimits, Rate
from onewindow.node.card import resident_token

from .test_booking_http import (
    at,
    env,  # noqa: F401 (the fixture `e` is)
    journal_len,
    slot,
    state,
)

CARD_KEY = b"centre-secret-for-tests-0123456789"
ID = "310101199001011234"  # check character right


@pytest.fixture
def e(env):  # noqa: F811 (test_booking_http's in-process hub with a journal)
    return env


def with_card_key(e, key: bytes | None) -> None:
    """The booking routes rebuilt with [stations] card_key_file's key (or none)."""
    stations = SimpleNamespace(card_key=lambda: key)
    e.site.config = SimpleNamespace(booking_limits=BookingLimits(  # type: ignore[attr-defined]
        Rate(1000, 1000.0), Rate(1000, 1000.0)), stations=stations)
    e.app.router.routes[-len(booking.routes(e.site)):] = booking.routes(e.site)


def test_the_typed_id_number_becomes_the_cards_token_and_nothing_else_is_kept(e):
    with_card_key(e, CARD_KEY)
    assert 'id="id-number"' in e.client.get("/book").text
    r = e.client.post("/book", json={"item": "SOC-001", "slot": slot(14),
                                       "id_number": " 3101 0119 9001 0112 34 "})
    assert r.status_code == 200, r.text
    b = e.site.hub.centre.bookings["B0001"]
    assert b.resident == resident_token(CARD_KEY, ID)
    everything = json.dumps(state(e)) + json.dumps([r.body for r in e.journal.read()])
    assert ID not in everything and "01011234" not in everything
    # at the kiosk, the card's token checks it in
    e.site.hub.operate(c.OpenWindow(1), e.clock[0])
    e.clock[0] = at(14, 2)
    e.site.hub.operate(c.CheckIn(resident=resident_token(CARD_KEY, ID), source="kiosk-1"),
                         e.clock[0])
    assert e.site.hub.centre.bookings["B0001"].state == "checked_in"


@pytest.mark.parametrize("typed", [ID[:-1] + "9", "12345", "31010119900101123X", "x" * 50,
                                   123])
def test_a_bad_id_number_is_refused_in_the_residents_language_with_nothing_booked(e, typed):
    with_card_key(e, CARD_KEY)
    before, n = state(e), journal_len(e)
    r = e.client.post("/book?lang=zh_TW", json={"item": "SOC-001", "slot": slot(14),
                                                  "id_number": typed,
                                                  "phone": "13812345678"})
    assert r.status_code == 400 and r.json()["code"] == "bad_id"
    assert r.json()["msg"] == resident_id.MESSAGES["bad_id"][1]
    assert state(e) == before and journal_len(e) == n


def test_without_the_card_key_the_field_is_not_offered_and_a_number_is_refused(e):
    with_card_key(e, None)
    assert 'id="id-number"' not in e.client.get("/book").text
    before = state(e)
    r = e.client.post("/book", json={"item": "SOC-001", "slot": slot(14), "id_number": ID})
    assert r.status_code == 409 and r.json()["code"] == "no_card_key"
    assert state(e) == before


def test_other_documents_and_the_check_letter_x():
    assert resident_id.valid("11010519491231002X") and resident_id.valid("E12345678")
    assert not resident_id.valid("123456789") and not resident_id.valid("110105194912310021")
    assert resident_id.token(CARD_KEY, "11010519491231002x") == \
        resident_token(CARD_KEY, "11010519491231002X")
